package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"dkv/core"
)

// A call moves queued → sent (the writer took it) or queued → abandoned (its
// caller gave up first). The compare-and-swap between the two is what tells a
// caller whether its request may have reached the server.
const (
	callQueued int32 = iota
	callSent
	callAbandoned
)

// call is one request on its way through a conn.
type call struct {
	id    []byte // the id we sent, to check the server's echo
	line  []byte // the encoded request, newline included
	state atomic.Int32
	// began is when the caller started the operation, before any dial.
	began time.Time
	// sentAt is set by the writer before it publishes callSent.
	sentAt time.Duration
	// done receives exactly one result once the call is sent: from the
	// reader, or from fail. Buffered, so an abandoned call's response is
	// dropped here without blocking the reader.
	done chan result
}

type result struct {
	resp *core.Response
	err  error
}

// conn is one pipelined connection. Callers enqueue calls; one writer
// goroutine writes them in queue order and appends them to pending in that
// same order; one reader goroutine pops pending for each response line. Once
// broken it stays broken: the client replaces it with a new conn.
type conn struct {
	nc    net.Conn
	addr  string
	opts  *options
	start time.Time

	// slots holds one token per call between enqueue and the moment it
	// leaves the pipeline (its response read, or skipped by the writer), so
	// writeq and pending together never exceed inFlightMax.
	slots  chan struct{}
	writeq chan *call
	done   chan struct{} // closed by fail

	mu      sync.Mutex
	pending []*call // sent and unanswered, in send order
	err     error   // why the conn broke; set once

	// lastResponseAt is when the last response line arrived, as a duration
	// since start (monotonic).
	lastResponseAt atomic.Int64
}

func newConn(nc net.Conn, addr string, opts *options) *conn {
	cn := &conn{
		nc:     nc,
		addr:   addr,
		opts:   opts,
		start:  time.Now(),
		slots:  make(chan struct{}, opts.inFlightMax),
		writeq: make(chan *call, opts.inFlightMax),
		done:   make(chan struct{}),
	}
	go cn.writeLoop()
	go cn.readLoop()
	return cn
}

func (cn *conn) since() time.Duration { return time.Since(cn.start) }

func (cn *conn) broken() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

func (cn *conn) failure() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// fail breaks the connection: every sent call gets err, queued calls see done
// and learn they were never sent. Only the first failure counts.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	orphans := cn.failLocked(err)
	cn.mu.Unlock()
	cn.deliver(orphans, err)
}

// failLocked is fail's part under cn.mu. It returns the sent calls, which
// the caller must deliver err to once it has released cn.mu.
func (cn *conn) failLocked(err error) []*call {
	if cn.err != nil {
		return nil
	}
	cn.err = err
	orphans := cn.pending
	cn.pending = nil
	close(cn.done)
	cn.nc.Close()
	return orphans
}

func (cn *conn) deliver(orphans []*call, err error) {
	for _, cl := range orphans {
		cl.done <- result{err: err}
	}
}

func (cn *conn) lost(err error) error { return &connError{addr: cn.addr, err: err} }

// roundTrip sends cl and waits for its response. sent reports whether the
// request may have reached the server; when it is false, the server surely
// never saw it.
func (cn *conn) roundTrip(ctx context.Context, cl *call) (resp *core.Response, sent bool, err error) {
	select {
	case cn.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-cn.done:
		return nil, false, cn.failure()
	}
	// Every call in writeq holds a slot and writeq has a place per slot, so
	// this send never blocks.
	cn.writeq <- cl
	select {
	case r := <-cl.done:
		return r.resp, true, r.err
	case <-cn.done:
		if cl.state.CompareAndSwap(callQueued, callAbandoned) {
			return nil, false, cn.failure()
		}
		// The writer sent it before the conn broke, so fail or the reader
		// has delivered (or is delivering) its result.
		r := <-cl.done
		return r.resp, true, r.err
	case <-ctx.Done():
		if cl.state.CompareAndSwap(callQueued, callAbandoned) {
			return nil, false, ctx.Err()
		}
		// The response will still come, and the reader will pop this call
		// for it and drop it into done, where nobody reads it. That keeps
		// the FIFO in step with the stream.
		cn.checkStall(cl)
		return nil, true, ctx.Err()
	}
}

// checkStall breaks the connection when a caller gave up after at least a
// request timeout and the server has answered nothing since the call was
// sent. Without this, a server that accepts but never answers would
// eventually hold every slot with abandoned calls and the client would
// never recover. Callers with shorter deadlines of their own do not count:
// their impatience says nothing about the server.
func (cn *conn) checkStall(cl *call) {
	if time.Since(cl.began) >= cn.opts.requestTimeout && time.Duration(cn.lastResponseAt.Load()) < cl.sentAt {
		silent := cn.since() - cl.sentAt
		cn.fail(cn.lost(fmt.Errorf("no response for %v with requests outstanding", silent.Round(time.Millisecond))))
	}
}

func (cn *conn) writeLoop() {
	bw := bufio.NewWriterSize(cn.nc, 64<<10)
	for {
		var cl *call
		select {
		case cl = <-cn.writeq:
		case <-cn.done:
			return
		}
		cn.mu.Lock()
		if cn.err != nil {
			// Leave cl queued: its caller sees done and knows it never left.
			cn.mu.Unlock()
			return
		}
		cl.sentAt = cn.since()
		if cl.state.CompareAndSwap(callQueued, callSent) {
			// Appending under the same lock as the check of err is what
			// lets fail hand a result to every sent call.
			cn.pending = append(cn.pending, cl)
			cn.mu.Unlock()
			// A server that does not read what we send for a whole
			// request timeout is stuck; better to break than to block
			// every caller.
			cn.nc.SetWriteDeadline(time.Now().Add(cn.opts.requestTimeout))
			if _, err := bw.Write(cl.line); err != nil {
				cn.fail(cn.lost(err))
				return
			}
		} else {
			// Abandoned before it left: it never reaches the server.
			cn.mu.Unlock()
			<-cn.slots
		}
		// Flush only when nothing else is queued, so that a burst of
		// pipelined calls shares one write. This runs after a skipped
		// call too, which may have been the last of a burst.
		if len(cn.writeq) == 0 && bw.Buffered() > 0 {
			cn.nc.SetWriteDeadline(time.Now().Add(cn.opts.requestTimeout))
			if err := bw.Flush(); err != nil {
				cn.fail(cn.lost(err))
				return
			}
		}
	}
}

func (cn *conn) readLoop() {
	br := bufio.NewReaderSize(cn.nc, 64<<10)
	for {
		line, tooLarge, err := readLine(br, cn.opts.responseBytesMax)
		if err != nil {
			cn.fail(cn.lost(err))
			return
		}
		cn.lastResponseAt.Store(int64(cn.since()))
		cn.mu.Lock()
		if len(cn.pending) == 0 {
			// Fail under the same lock that saw nothing pending, so that
			// no call can be sent on this conn in between.
			err := cn.lost(unsolicited(line, tooLarge))
			orphans := cn.failLocked(err)
			cn.mu.Unlock()
			cn.deliver(orphans, err)
			return
		}
		cl := cn.pending[0]
		cn.pending[0] = nil
		cn.pending = cn.pending[1:]
		cn.mu.Unlock()
		<-cn.slots

		if tooLarge {
			// The line is skipped whole, so the stream stays in step.
			cl.done <- result{err: fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, cn.opts.responseBytesMax)}
			continue
		}
		resp, err := core.DecodeResponse(line)
		if err == nil {
			err = checkEcho(cl.id, resp)
		} else {
			err = fmt.Errorf("%w: undecodable response: %v", ErrProtocol, err)
		}
		if err != nil {
			// Break the conn before telling the caller, so that a retry
			// cannot land on this conn again.
			err = cn.lost(err)
			cn.fail(err)
			cl.done <- result{err: err}
			return
		}
		cl.done <- result{resp: resp}
	}
}

// unsolicited explains a line that arrived with nothing outstanding. A
// server refusing a connection (too_many_connections) says why in one error
// line and closes it, and that reason beats "protocol violation".
func unsolicited(line []byte, tooLarge bool) error {
	if !tooLarge {
		if resp, err := core.DecodeResponse(line); err == nil && !resp.OK && resp.Error != nil && len(resp.ID) == 0 {
			return serverError(resp)
		}
	}
	return fmt.Errorf("%w: a response arrived with no request outstanding", ErrProtocol)
}

// checkEcho verifies that resp answers the request with the given id. An
// error response without an id is accepted: the server could not parse the
// line (an oversized one, say) and so could not echo it.
func checkEcho(id []byte, resp *core.Response) error {
	got := bytes.TrimSpace(resp.ID)
	if bytes.Equal(got, id) || (len(got) == 0 && !resp.OK) {
		return nil
	}
	if len(got) == 0 {
		return fmt.Errorf("%w: response carries no id, expected %s", ErrProtocol, id)
	}
	return fmt.Errorf("%w: response id %s does not match request id %s", ErrProtocol, got, id)
}

// readLine reads one line, newline removed. A line longer than bytesMax is
// consumed whole and reported as tooLarge, so the next read starts on the
// next line.
func readLine(br *bufio.Reader, bytesMax int) (line []byte, tooLarge bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, false, err
		}
		if !tooLarge {
			// Copy: ReadSlice's bytes are overwritten by the next read, and
			// the response's id may alias them.
			line = append(line, frag...)
			if len(line) > bytesMax+1 {
				tooLarge, line = true, nil
			}
		}
		if err == nil {
			break
		}
	}
	if tooLarge {
		return nil, true, nil
	}
	line = line[:len(line)-1]
	if len(line) > bytesMax {
		return nil, true, nil
	}
	return line, false, nil
}
