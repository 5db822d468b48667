package realnet

import (
	"context"
	"errors"
	"time"

	"dkv/core"
)

// Metrics hears what a Host measures on its own goroutines: requests,
// connections and fsyncs. Its methods are called on hot paths, from many
// goroutines at once: they must be cheap and must never block. A Host
// without Metrics does not read the clock for them at all.
type Metrics interface {
	// Requests reports the requests the node answered in one turn, once
	// per turn that answered any, on the node's goroutine. The slice is
	// reused once Requests returns.
	//
	// One call per turn rather than one per request: the node's role
	// moves between goroutines and so between CPUs, and the metrics'
	// memory with it; a call per request paid for moving those cache
	// lines again and again (about 0.7 µs of server CPU per durable Set
	// on a 2-core VM, 3%), a call per turn pays once for the turn's
	// requests.
	Requests(turn []RequestSample)
	// Refused reports a line the host answered without the node (it did
	// not decode, was too long or too slow, or came without the password)
	// with its error code, on the connection's goroutine.
	Refused(code string)
	// Conn reports a client connection registered (+1) or gone (-1).
	Conn(delta int)
	// ConnRefused reports a connection refused at the ConnsMax limit.
	ConnRefused()
	// TLSHandshakeFailed reports a client connection whose TLS handshake
	// failed for another reason than plain text, which Refused reports
	// with core.CodeTLSRequired.
	TLSHandshakeFailed()
	// Fsync reports one fsync of a data-directory file (file is its name)
	// and how long it took; err is its outcome.
	Fsync(file string, elapsed time.Duration, err error)
	// Turn reports one turn of the node, on the node's goroutine: how
	// long it ran, from its first event to its replies handed to the
	// sockets, and the events it ran (a read's batch of client requests
	// counts its requests; a timer, an fsync's completion or a peer's
	// message one each). The node runs one turn at a time, so the
	// durations summed over a second are the share of it the node was
	// busy: near all of it, the node's own work sets the pace, not the
	// disk or the clients.
	Turn(elapsed time.Duration, events int)
	// Gathered reports one wait of a waiting event loop for the clients a
	// sync's replies just answered (gather.go), on the loop's goroutine:
	// how it ended (GatherAllSent, GatherTooSlow or GatherDeadline) and
	// how long it held the turn back.
	Gathered(outcome string, waited time.Duration)
}

// PeerMetrics hears what Peers measures, on its goroutines: its methods
// must be cheap and must never block.
type PeerMetrics interface {
	// PeerTLSHandshakeFailed reports a peer connection, dialled or
	// accepted, whose TLS handshake failed (a certificate refused either
	// way, plain text where TLS was due, a timeout), but for one that
	// Close cut short.
	PeerTLSHandshakeFailed()
}

// SetMetrics makes the transport report to m. It must be called before
// Start.
func (p *Peers) SetMetrics(m PeerMetrics) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		panic("realnet: Peers.SetMetrics after Start")
	}
	p.metrics = m
}

// tlsHandshakeFailed reports err to the metrics if it is a failed TLS
// handshake of a transport that is not closing.
func (p *Peers) tlsHandshakeFailed(err error) {
	if p.metrics != nil && errors.Is(err, errTLSHandshake) && p.ctx.Err() == nil {
		p.metrics.PeerTLSHandshakeFailed()
	}
}

// RequestSample is one answered request.
type RequestSample struct {
	Op      string        // as the request named it
	Code    string        // the answer's error code; "" for a success
	Elapsed time.Duration // from the request's decoding to its answer
}

// monoEpoch and monoNow time what Metrics hears: a reading of the
// monotonic clock alone costs about half of a time.Now, which reads the
// calendar clock too, and a request pays for two.
var monoEpoch = time.Now()

func monoNow() time.Duration { return time.Since(monoEpoch) }

// SetMetrics makes the host report to m. It must be called before Run.
func (h *Host) SetMetrics(m Metrics) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		panic("realnet: SetMetrics after Run")
	}
	h.metrics = m
}

// ErrNotServing is Inspect's answer before the node has recovered and
// after the host has stopped.
var ErrNotServing = errors.New("realnet: the node is not serving")

// Inspect runs f with the node on the node's goroutine, between two events
// of a turn, and waits for it to return or ctx to end. It is how another
// goroutine reads node state (a metrics scrape, say) without racing the
// node: f is an event like any other. It fails with ErrNotServing before
// the node has recovered or once the host has stopped, and with ctx's
// error if f has not run by then; f may still run later, so it must write
// only what it owns.
func (h *Host) Inspect(ctx context.Context, f func(core.Node)) error {
	select {
	case <-h.ready:
	default:
		return ErrNotServing
	}
	done := make(chan struct{})
	posted := make(chan bool, 1)
	// Posting waits while the event queue is full, and may run the node's
	// turns here when nobody else does; the caller's wait is bounded by
	// ctx either way.
	go func() {
		posted <- h.post(func() {
			f(h.node)
			close(done)
		})
	}()
	for {
		select {
		case <-done:
			return nil
		case ok := <-posted:
			if !ok {
				return ErrNotServing
			}
			posted = nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// refusedLine is the slot of a line answered without the node (it did not
// decode, or was too long or too slow).
func (h *Host) refusedLine(resp core.Response) *slot {
	if h.metrics != nil {
		h.metrics.Refused(resp.Error.Code)
	}
	return filledSlot(resp)
}

// answered notes a request the node answered, for the turn's Requests
// call. It runs on the node's goroutine, in a reply.
func (h *Host) answered(op, code string, elapsed time.Duration) {
	h.samples = append(h.samples, RequestSample{Op: op, Code: code, Elapsed: elapsed})
}

// reportTurn hands the turn's answered requests to the metrics.
func (h *Host) reportTurn() {
	if len(h.samples) == 0 {
		return
	}
	h.metrics.Requests(h.samples)
	clear(h.samples)
	h.samples = h.samples[:0]
}
