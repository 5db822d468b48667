package client

import (
	"crypto/tls"
	"fmt"
	"time"

	"dkv/core"
)

// Option configures a KVClient or a ClusterKVClient.
type Option func(*options)

type options struct {
	dialTimeout      time.Duration
	requestTimeout   time.Duration
	inFlightMax      int
	dialRetriesMax   int
	responseBytesMax int
	requestBytesMax  int
	password         string      // "": the server asks none
	tls              *tls.Config // nil: plain TCP

	// ClusterKVClient only.
	attemptTimeout     time.Duration
	clusterAttemptsMax int
}

func defaultOptions() options {
	return options{
		dialTimeout:    5 * time.Second,
		requestTimeout: 10 * time.Second,
		inFlightMax:    1024,
		dialRetriesMax: 3,
		// Generous: a status or a get of a 1 MiB value is far below it, and
		// a later search response may carry many values.
		responseBytesMax: 64 << 20,
		// The server's default --max-request-bytes; failing here is cheaper
		// and clearer than a too_large round trip.
		requestBytesMax: 16 << 20,
		// Long enough for a write committed under load, short enough to
		// leave a hung node for another well within the request timeout.
		attemptTimeout: 2 * time.Second,
		// With the retry backoff (10 ms doubling to 250 ms, jittered), 20
		// attempts span 2 to 4 s: several elections.
		clusterAttemptsMax: 20,
	}
}

// WithDialTimeout bounds each attempt to open a connection (default 5s):
// its TCP connect, TLS handshake and the answer to its password
// (WithPassword) together.
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
// (default 3). It applies to dials only: a KVClient never repeats a sent
// write. For DialCluster it is how many more rounds it makes over the
// addresses when none accepts a connection; a ClusterKVClient's calls are
// bounded by WithMaxAttempts instead.
func WithRetries(n int) Option { return func(o *options) { o.dialRetriesMax = n } }

// WithMaxResponseBytes bounds one response line (default 64 MiB).
func WithMaxResponseBytes(n int) Option { return func(o *options) { o.responseBytesMax = n } }

// WithMaxRequestBytes bounds one request line, newline excluded (default
// 16 MiB, the server's default). Raise it with the server's
// --max-request-bytes.
func WithMaxRequestBytes(n int) Option { return func(o *options) { o.requestBytesMax = n } }

// WithAttemptTimeout bounds one attempt of a ClusterKVClient call at one
// node, its dial included (default 2s): a node that has not answered by then
// is left for another, and a write is retried there with the same sequence
// number. The call as a whole is bounded by its context or, without a
// deadline, by the request timeout. It bounds DialCluster's connection to
// each node too. KVClient ignores it.
func WithAttemptTimeout(d time.Duration) Option { return func(o *options) { o.attemptTimeout = d } }

// WithMaxAttempts bounds the attempts of one ClusterKVClient call, redirects
// included (default 20). KVClient ignores it.
func WithMaxAttempts(n int) Option { return func(o *options) { o.clusterAttemptsMax = n } }

// WithPassword is the server's password (its --auth-file): every
// connection the client opens sends it before anything else. A wrong one
// fails the dial, and the calls that needed it, with an error that matches
// ErrAuth.
func WithPassword(p string) Option { return func(o *options) { o.password = p } }

// WithTLS connects over TLS, for a server started with --tls-cert.
// cfg.RootCAs holds the authority that signed the server's certificate
// (nil: the system's authorities); cfg.Certificates, the client's own
// certificate, where the server asks one (--tls-client-ca). Unless
// cfg.ServerName is set, each server's certificate must name the host of
// the address dialled. A handshake refused for a certificate, or a server
// that does not speak TLS, fails the dial at once with an error that
// matches ErrTLS, and so does a call on a connection whose server refused
// the client's certificate (TLS 1.3 says so after the handshake): the
// server read nothing of it. A KVClient does not retry it; a
// ClusterKVClient tries its other nodes, whose certificates are their own,
// and ends the call when a node refuses it a second time.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

func (o *options) validate() error {
	switch {
	case o.dialTimeout <= 0:
		return fmt.Errorf("dial timeout must be positive, got %v", o.dialTimeout)
	case o.requestTimeout <= 0:
		return fmt.Errorf("request timeout must be positive, got %v", o.requestTimeout)
	case o.inFlightMax < 1:
		return fmt.Errorf("max in-flight must be at least 1, got %d", o.inFlightMax)
	case o.dialRetriesMax < 0:
		return fmt.Errorf("retries must not be negative, got %d", o.dialRetriesMax)
	case o.responseBytesMax < 1:
		return fmt.Errorf("max response bytes must be at least 1, got %d", o.responseBytesMax)
	case o.requestBytesMax < 1:
		return fmt.Errorf("max request bytes must be at least 1, got %d", o.requestBytesMax)
	case o.attemptTimeout <= 0:
		return fmt.Errorf("attempt timeout must be positive, got %v", o.attemptTimeout)
	case o.clusterAttemptsMax < 1:
		return fmt.Errorf("max attempts must be at least 1, got %d", o.clusterAttemptsMax)
	case len(o.password) > core.AuthSecretBytesMax:
		return fmt.Errorf("password is %d bytes; a server's is at most %d", len(o.password), core.AuthSecretBytesMax)
	}
	return nil
}
