package webhooks

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
//
// 10 s per request: a receiver that has not answered by then is treated as
// down, and its lane retries later, instead of holding a worker.
// Backoff from 500 ms doubling to 1 min: a receiver restarting gets its
// events within seconds, one down for an hour gets a request a minute per
// room, not a flood.
const (
	defaultTimeout    = 10 * time.Second
	defaultMinBackoff = 500 * time.Millisecond
	defaultMaxBackoff = time.Minute
)

// defaultLeaseTTL is how long a cluster node's claim on a lane lasts
// unrenewed: longer than a request (defaultTimeout), so a slow receiver
// never costs the lease between two renewals (every third of it), and
// short enough that a dead node's lanes move on within seconds.
const defaultLeaseTTL = 15 * time.Second

// Config configures a Dispatcher.
type Config struct {
	URLs                   []string         // destinations (--webhook-url, repeatable): every event goes to each
	Secret                 []byte           // HMAC-SHA256 key (the server's secret)
	Dir                    string           // the outbox lives in <Dir>/webhooks.db
	Client                 *http.Client     // default: a 10 s timeout; redirects are never followed
	MinBackoff, MaxBackoff time.Duration    // default 500ms, 1m (exponential with jitter)
	Logger                 *slog.Logger     // default slog.Default()
	Now                    func() time.Time // event and request timestamps; default time.Now

	// Redis, when set, holds the outbox instead of <Dir>/webhooks.db
	// (cluster mode): every node Emits into it and runs a Dispatcher
	// over it, and each (URL, room) lane is sent by one node at a time,
	// the holder of its lease. The client is the caller's: Close leaves
	// it open. Every node must be given the same URLs.
	Redis       redis.UniversalClient
	RedisPrefix string        // key prefix, e.g. "relayd:"
	LeaseTTL    time.Duration // with Redis: a lane lease's lifetime unrenewed; default 15s
}

// withDefaults checks c and fills in the defaults.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("webhooks: URL %q: want http(s)://host/...", u))
		}
	}
	if len(c.URLs) > 0 && len(c.Secret) == 0 {
		errs = append(errs, errors.New("webhooks: a secret is required to sign events"))
	}
	if c.Dir == "" && c.Redis == nil {
		errs = append(errs, errors.New("webhooks: Dir (or Redis) is required"))
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = defaultLeaseTTL
	}
	c.LeaseTTL = max(c.LeaseTTL, 3*time.Millisecond) // renewals come every third of it
	if c.MinBackoff <= 0 {
		c.MinBackoff = defaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	var client http.Client
	if c.Client != nil {
		client = *c.Client // a copy: its CheckRedirect may be set below
	} else {
		client.Timeout = defaultTimeout
	}
	if client.CheckRedirect == nil {
		// A followed 301/302 turns the POST into a GET without the
		// body, whose 2xx would count as delivered: a redirect is
		// just a failed attempt.
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	c.Client = &client
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	// Duplicate URLs would deliver everything twice.
	seen := map[string]bool{}
	urls := c.URLs[:0:0]
	for _, u := range c.URLs {
		if !seen[u] {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	c.URLs = urls
	return c, errors.Join(errs...)
}
