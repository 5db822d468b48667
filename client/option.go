package client

import (
	"fmt"
	"time"
)

// Option configures a KVClient.
type Option func(*options)

type options struct {
	dialTimeout      time.Duration
	requestTimeout   time.Duration
	inFlightMax      int
	dialRetries      int
	responseBytesMax int
	requestBytesMax  int
}

func defaultOptions() options {
	return options{
		dialTimeout:    5 * time.Second,
		requestTimeout: 10 * time.Second,
		inFlightMax:    1024,
		dialRetries:    3,
		// Generous: a status or a get of a 1 MiB value is far below it, and
		// a later search response may carry many values.
		responseBytesMax: 64 << 20,
		// The server's default --max-request-bytes; failing here is cheaper
		// and clearer than a too_large round trip.
		requestBytesMax: 16 << 20,
	}
}

// WithDialTimeout bounds each attempt to open a connection (default 5s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithRequestTimeout is the timeout of a call whose context has no deadline
// (default 10s). It also bounds how long the client waits for the server to
// read what it writes (a write in progress carries other callers' requests
// too, so a caller's own deadline does not cut it short, and a server that
// does not read for this long breaks the connection), and a connection that
// answers nothing for this long while a timed-out request is outstanding is
// considered dead.
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.requestTimeout = d } }

// WithMaxInFlight bounds the requests outstanding on the connection (default
// 1024). Further calls wait for a slot, within their context.
func WithMaxInFlight(n int) Option { return func(o *options) { o.inFlightMax = n } }

// WithRetries is how many times a failed dial is retried, with backoff
// (default 3). It applies to dials only: a sent write is never repeated.
func WithRetries(n int) Option { return func(o *options) { o.dialRetries = n } }

// WithMaxResponseBytes bounds one response line (default 64 MiB).
func WithMaxResponseBytes(n int) Option { return func(o *options) { o.responseBytesMax = n } }

// WithMaxRequestBytes bounds one request line, newline excluded (default
// 16 MiB, the server's default). Raise it with the server's
// --max-request-bytes.
func WithMaxRequestBytes(n int) Option { return func(o *options) { o.requestBytesMax = n } }

func (o *options) validate() error {
	switch {
	case o.dialTimeout <= 0:
		return fmt.Errorf("dial timeout must be positive, got %v", o.dialTimeout)
	case o.requestTimeout <= 0:
		return fmt.Errorf("request timeout must be positive, got %v", o.requestTimeout)
	case o.inFlightMax < 1:
		return fmt.Errorf("max in-flight must be at least 1, got %d", o.inFlightMax)
	case o.dialRetries < 0:
		return fmt.Errorf("retries must not be negative, got %d", o.dialRetries)
	case o.responseBytesMax < 1:
		return fmt.Errorf("max response bytes must be at least 1, got %d", o.responseBytesMax)
	case o.requestBytesMax < 1:
		return fmt.Errorf("max request bytes must be at least 1, got %d", o.requestBytesMax)
	}
	return nil
}
