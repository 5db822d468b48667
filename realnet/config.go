package realnet

import (
	"crypto/tls"
	"fmt"
	"time"

	"dkv/core"
)

// HostConfig bounds what a Host accepts. Start from DefaultHostConfig.
type HostConfig struct {
	// ID is the node's id in its cluster or mesh; 0 for a single node.
	ID core.NodeID
	// Network carries the node's messages to its peers (a *Peers, whose
	// deliver func is Host.Deliver); nil for a single node.
	Network core.Network
	// RequestBytesMax bounds one request line, newline excluded. A longer
	// line gets a too_large error and is skipped up to its newline.
	RequestBytesMax int
	// BulkEntriesMax is the node's bulk-items limit (core.Limits), which
	// bounds a RESP command's array (an MSET is two elements an item)
	// before the host reads or allocates it.
	BulkEntriesMax int
	// ConnsMax bounds open client connections; one more gets a
	// too_many_connections error line and is closed.
	ConnsMax int
	// EventLoops is how many event loops serve the client connections
	// (Linux only; see eloop_linux.go): 0 gives each connection a reader
	// and a writer goroutine instead.
	EventLoops int
	// ConnInflightMax bounds requests read from one connection but not yet
	// answered. When it is reached the connection is not read until a
	// response goes out, which pushes back on a pipelining client. The
	// bytes of those requests are bounded too, by RequestBytesMax
	// (inflightBytesMax).
	ConnInflightMax int
	// EventQueueMax is the capacity of the loop's event queue. Connection
	// readers block when it is full.
	EventQueueMax int
	// EventsPerTurnMax bounds the events one turn takes before it flushes,
	// so one busy turn cannot hold back every reply for long.
	EventsPerTurnMax int
	// GatherWaitMax bounds how long a waiting event loop holds a turn
	// back for the clients a sync's replies just answered, counted from
	// the replies (gather.go); it waits at most an fsync's recent
	// duration too. 0: it never waits.
	GatherWaitMax time.Duration
	// LineTimeout is how long a partial line may wait for the rest of it
	// before the connection gets a timeout error and is closed.
	LineTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection whose client stops reading its
	// responses for this long.
	WriteTimeout time.Duration
	// Logf writes one operator-facing line; nil means the standard logger.
	Logf func(format string, args ...any)
	// Prepare, when set, runs on each decoded request on the goroutine
	// that read it, before the node sees it: the indexes' work that needs
	// only the request (core.Indexes.Prepare), done in parallel where the
	// requests are read in parallel. With one event loop (the default on
	// Linux) it is not called: see Host.prepare.
	Prepare func(*core.Request)
	// AuthSecret, when set, is the client port's password: a connection
	// is served nothing but auth (JSON's auth op; RESP's AUTH, HELLO …
	// AUTH and QUIT) until it has sent it (auth.go). At most
	// core.AuthSecretBytesMax bytes.
	AuthSecret string
	// AuthTimeout closes a connection that has not sent the password this
	// long after it was accepted (with AuthSecret only).
	AuthTimeout time.Duration
	// TLS, when set, makes the client port speak TLS only (tls.go): a
	// connection is served after its handshake, which runs on a goroutine
	// of its own, by an event loop through a pipe (tlspipe.go), or by a
	// reader and a writer goroutine where EventLoops is 0. A client that
	// speaks plain text is answered an error saying so and closed.
	TLS *tls.Config
}

// inflightBytesMax bounds the bytes of the requests read from one
// connection whose replies are owed (their frames: a JSON line, a RESP
// command), as ConnInflightMax bounds their number: a reply may be as
// large as its request (RESP's ECHO, a JSON id echoed), and 1024 of them
// at the request limit would be 16 GiB of one connection's. Past it the
// connection is not read until replies go out; one request at the limit
// always fits, as the queue is empty by then. It is a MiB at least, so
// that where requests are small ConnInflightMax binds first and a
// pipelining client's batches are as long as before.
func (c HostConfig) inflightBytesMax() int { return max(c.RequestBytesMax, inflightBytesMin) }

// inflightBytesMin is the least inflightBytesMax: 1024 requests of 1 KiB.
const inflightBytesMin = 1 << 20

// DefaultHostConfig is what a server uses unless told otherwise.
func DefaultHostConfig() HostConfig {
	return HostConfig{
		RequestBytesMax:  core.DefaultLimits().RequestBytesMax,
		BulkEntriesMax:   core.DefaultLimits().BulkEntriesMax,
		ConnsMax:         1024,
		EventLoops:       defaultEventLoops(),
		ConnInflightMax:  1024,
		EventQueueMax:    8192,
		EventsPerTurnMax: 4096,
		GatherWaitMax:    time.Millisecond,
		LineTimeout:      10 * time.Second,
		IdleTimeout:      5 * time.Minute,
		WriteTimeout:     time.Minute,
		// A client sends the password as it connects; a stranger holds a
		// connection slot this long at most.
		AuthTimeout: 10 * time.Second,
	}
}

func (c HostConfig) validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"RequestBytesMax", int64(c.RequestBytesMax)},
		{"BulkEntriesMax", int64(c.BulkEntriesMax)},
		{"ConnsMax", int64(c.ConnsMax)},
		{"ConnInflightMax", int64(c.ConnInflightMax)},
		{"EventQueueMax", int64(c.EventQueueMax)},
		{"EventsPerTurnMax", int64(c.EventsPerTurnMax)},
		{"LineTimeout", int64(c.LineTimeout)},
		{"IdleTimeout", int64(c.IdleTimeout)},
		{"WriteTimeout", int64(c.WriteTimeout)},
		{"AuthTimeout", int64(c.AuthTimeout)},
	} {
		if f.v <= 0 {
			return fmt.Errorf("host config: %s must be positive, not %d", f.name, f.v)
		}
	}
	if c.GatherWaitMax < 0 || c.GatherWaitMax > GatherWaitMaxLimit {
		return fmt.Errorf("host config: GatherWaitMax must be in 0..%v, not %v", GatherWaitMaxLimit, c.GatherWaitMax)
	}
	if len(c.AuthSecret) > core.AuthSecretBytesMax {
		return fmt.Errorf("host config: AuthSecret is %d bytes; the limit is %d", len(c.AuthSecret), core.AuthSecretBytesMax)
	}
	if c.EventLoops < 0 || c.EventLoops > EventLoopsMax {
		return fmt.Errorf("host config: EventLoops must be 0..%d, not %d", EventLoopsMax, c.EventLoops)
	}
	if c.EventLoops > 0 && !EventLoopsSupported {
		return fmt.Errorf("host config: EventLoops %d: event loops need Linux (epoll); use 0", c.EventLoops)
	}
	return nil
}

// EventLoopsMax bounds HostConfig.EventLoops: a loop per processor is the
// point, and more than this many is a mistake.
const EventLoopsMax = 256

// GatherWaitMaxLimit bounds HostConfig.GatherWaitMax: a turn held back
// longer would hold every request in it as long.
const GatherWaitMaxLimit = 100 * time.Millisecond
