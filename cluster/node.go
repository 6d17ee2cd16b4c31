package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Load is what a node reports about itself at every heartbeat.
type Load struct {
	Rooms         int     `json:"rooms"`
	Participants  int     `json:"participants"`
	PacketsPerSec float64 `json:"pps"`
	CPU           float64 `json:"cpu"` // cores busy, e.g. 1.5; see CPUMeter
}

// Node is one relayd process of the cluster.
type Node struct {
	ID      string
	URL     string // HTTP base URL other nodes and clients use (Options.Advertise)
	Load    Load
	Started time.Time // when the node opened the cluster
	Seen    time.Time // its last heartbeat, by its own clock
}

// record is the wire form of a Node: the fields of {p}node:{id} and the JSON
// value in the {p}nodes registry. Times are unix milliseconds.
type record struct {
	URL     string `json:"url"`
	Started int64  `json:"started"`
	Seen    int64  `json:"seen"`
	Load
}

func (n Node) record() record {
	return record{URL: n.URL, Started: n.Started.UnixMilli(), Seen: n.Seen.UnixMilli(), Load: n.Load}
}

func (r record) node(id string) Node {
	return Node{ID: id, URL: r.URL, Load: r.Load,
		Started: time.UnixMilli(r.Started), Seen: time.UnixMilli(r.Seen)}
}

// fields is the HSET argument list of {p}node:{id}; parseFields reads it back.
func (r record) fields() []any {
	return []any{
		"url", r.URL,
		"started", strconv.FormatInt(r.Started, 10),
		"seen", strconv.FormatInt(r.Seen, 10),
		"rooms", strconv.Itoa(r.Rooms),
		"participants", strconv.Itoa(r.Participants),
		"pps", strconv.FormatFloat(r.PacketsPerSec, 'f', -1, 64),
		"cpu", strconv.FormatFloat(r.CPU, 'f', -1, 64),
	}
}

func (r record) json() string {
	b, _ := json.Marshal(r) // a struct of strings and numbers always marshals
	return string(b)
}

func parseRecordJSON(id, s string) (Node, error) {
	var r record
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Node{ID: id}, fmt.Errorf("cluster: node %s: bad record: %w", id, err)
	}
	return r.node(id), nil
}

// parseFields turns a flat HGETALL reply from a script into a Node.
// Unknown fields are ignored so that a newer node can add fields.
func parseFields(id string, flat []any) Node {
	var r record
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		switch k {
		case "url":
			r.URL = v
		case "started":
			r.Started, _ = strconv.ParseInt(v, 10, 64)
		case "seen":
			r.Seen, _ = strconv.ParseInt(v, 10, 64)
		case "rooms":
			r.Rooms, _ = strconv.Atoi(v)
		case "participants":
			r.Participants, _ = strconv.Atoi(v)
		case "pps":
			r.PacketsPerSec, _ = strconv.ParseFloat(v, 64)
		case "cpu":
			r.CPU, _ = strconv.ParseFloat(v, 64)
		}
	}
	return r.node(id)
}

// scanScript returns {id, HGETALL of its alive key (empty when dead)} for
// every registered node, in one atomic read.
var scanScript = redis.NewScript(`
local p = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  out[#out + 1] = {id, redis.call('HGETALL', p .. 'node:' .. id)}
end
return out
`)

// scan returns the alive nodes and the ids of registered dead ones.
func (c *Cluster) scan(ctx context.Context) (alive map[string]Node, dead []string, err error) {
	res, err := scanScript.Run(ctx, c.client, []string{c.k.nodes()}, c.k.p).Slice()
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: scan nodes: %w", err)
	}
	alive = make(map[string]Node, len(res))
	for _, e := range res {
		pair, _ := e.([]any)
		if len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		flat, _ := pair[1].([]any)
		if len(flat) == 0 {
			dead = append(dead, id)
			continue
		}
		alive[id] = parseFields(id, flat)
	}
	return alive, dead, nil
}

// Nodes returns the alive nodes, sorted by ID.
func (c *Cluster) Nodes(ctx context.Context) ([]Node, error) {
	alive, _, err := c.scan(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(alive))
	for _, n := range alive {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Node returns the alive node id; ok is false when it is unknown or dead.
func (c *Cluster) Node(ctx context.Context, id string) (Node, bool, error) {
	flat, err := c.client.HGetAll(ctx, c.k.node(id)).Result()
	if err != nil {
		return Node{}, false, fmt.Errorf("cluster: node %s: %w", id, err)
	}
	if len(flat) == 0 {
		return Node{}, false, nil
	}
	pairs := make([]any, 0, 2*len(flat))
	for k, v := range flat {
		pairs = append(pairs, k, v)
	}
	return parseFields(id, pairs), true, nil
}

// nodeReply parses the {id, HGETALL} pair the room scripts return.
func nodeReply(v any) (Node, error) {
	pair, _ := v.([]any)
	if len(pair) != 2 {
		return Node{}, fmt.Errorf("cluster: unexpected script reply %v", v)
	}
	id, _ := pair[0].(string)
	flat, _ := pair[1].([]any)
	return parseFields(id, flat), nil
}
