package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// drainLimit is how much of a response body is read so that the connection
// can be reused; a receiver has nothing to say beyond its status code.
const drainLimit = 64 << 10

// post makes one delivery attempt of an event (body, exactly as stored) to
// url. nil means a 2xx answer.
func (d *Dispatcher) post(ctx context.Context, url string, j job) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(j.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "relayd-webhooks")
	req.Header.Set(HeaderEvent, j.typ)
	req.Header.Set(HeaderDelivery, j.id)
	req.Header.Set(HeaderSignature, Signature(d.cfg.Secret, j.body))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(d.cfg.Now().Unix(), 10))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
