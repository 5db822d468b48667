package realnet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"dkv/core"
)

const (
	// readBufBytes is a connection's read buffer. It grows, up to the request
	// line limit, only while one line does not fit, and shrinks back after,
	// so a thousand idle connections cost a thousand small buffers.
	readBufBytes = 64 << 10
	// writeBufBytes batches responses into few writes under pipelining.
	writeBufBytes = 64 << 10
	// shutdownWriteTimeout bounds how long shutdown waits for a client to
	// take the responses that were ready when the loop stopped.
	shutdownWriteTimeout = time.Second
	// lingerTimeout and lingerBytesMax bound how much of what a client still
	// sends is read and dropped after the server's last line. Closing a
	// socket with unread input makes the kernel send a reset: a client still
	// writing then fails its write and often gives up before reading that
	// last line (a timeout or too_many_connections error), and some
	// kernels drop received data on a reset.
	lingerTimeout  = 500 * time.Millisecond
	lingerBytesMax = 1 << 20
)

// lingerClose ends the server's side, drains the client's side for a
// moment, then closes.
func lingerClose(nc net.Conn) {
	if hc, ok := nc.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.CopyN(io.Discard, nc, lingerBytesMax)
	}
	nc.Close()
}

// slot is one owed response. The reader queues slots in request order and
// the writer sends them in that order, so responses leave in request order
// whatever order the node answers in. A slot is filled once, under conn.mu.
type slot struct {
	resp   core.Response
	filled bool
}

func filledSlot(resp core.Response) *slot { return &slot{resp: resp, filled: true} }

// conn is one client connection: a reader goroutine that frames, decodes
// and posts requests, and a writer goroutine that sends responses.
//
// The writer sleeps until the slot at the head of the queue is filled, and
// only then: queueing a request does not wake it. With one request at a time
// on a connection, that is one wake-up per request instead of two.
type conn struct {
	h  *Host
	nc net.Conn

	mu         sync.Mutex
	queue      []*slot // owed responses, in request order
	readerGone bool    // the reader stopped: no more slots will be queued
	// ready has room for one token: "the head may be filled, or the reader
	// is gone". Senders never block, and the writer rechecks under mu.
	ready chan struct{}
	// room holds a token per queued slot, so at most ConnInflightMax
	// responses are owed at once and the reader waits for the writer.
	room chan struct{}

	// wmu is held by whoever writes to the socket: the writer goroutine,
	// from taking responses off the queue until it has flushed them, or
	// the loop, which sends a reply itself when the socket is free (see
	// sendNow). pending holds bytes the loop could not send without
	// blocking; the writer sends them first.
	wmu     sync.Mutex
	pending []byte
	raw     syscall.RawConn // nil where the conn has no file descriptor
	loopBuf []byte          // the loop's encoding buffer, under wmu
	loopTmp []*slot

	stop     chan struct{} // the loop has exited: send what is ready and close
	stopOnce sync.Once
	dead     chan struct{} // the writer has exited: nobody takes slots any more
	// readerDone is set by the writer when it finds the reader gone with
	// nothing owed: nothing else reads the socket, so it may linger on it.
	readerDone bool
}

func newConn(h *Host, nc net.Conn) *conn {
	c := &conn{
		h:     h,
		nc:    nc,
		ready: make(chan struct{}, 1),
		room:  make(chan struct{}, h.cfg.ConnInflightMax),
		stop:  make(chan struct{}),
		dead:  make(chan struct{}),
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	return c
}

func (c *conn) wake() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// fill answers s; called on the loop goroutine, it never blocks. It reports
// false if s was already filled.
func (c *conn) fill(s *slot, resp core.Response) bool {
	c.mu.Lock()
	if s.filled {
		c.mu.Unlock()
		return false
	}
	s.resp, s.filled = resp, true
	head := len(c.queue) > 0 && c.queue[0] == s
	c.mu.Unlock()
	if head && !c.sendNow() {
		c.wake()
	}
	return true
}

// sendNow sends the ready responses at the head of the queue from the loop
// goroutine, when nobody else is writing and the socket takes them without
// blocking. Handing them to the writer goroutine costs a wake-up, tens of
// microseconds on a VM, on the path of every reply; a lone client waits
// for exactly that. It never blocks the loop: the socket is tried once,
// and what it does not take goes to the writer. It reports false when the
// writer has to act.
func (c *conn) sendNow() bool {
	if c.raw == nil || !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	if len(c.pending) > 0 {
		return false
	}
	batch, gone := c.takeReady(c.loopTmp[:0])
	buf := c.loopBuf[:0]
	for _, s := range batch {
		buf = core.AppendResponse(buf, &s.resp)
		<-c.room
	}
	clear(batch)
	c.loopTmp, c.loopBuf = batch[:0], buf[:0]
	n := 0
	_ = c.raw.Write(func(fd uintptr) bool {
		for n < len(buf) {
			m, err := syscall.Write(int(fd), buf[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				break // EAGAIN, or a failure the writer will meet and report
			}
			n += m
		}
		return true // never wait for the socket on the loop
	})
	if n < len(buf) {
		c.pending = append(c.pending, buf[n:]...)
		return false
	}
	return !gone
}

// readerStopped tells the writer that nothing more will be queued.
func (c *conn) readerStopped() {
	c.mu.Lock()
	c.readerGone = true
	c.mu.Unlock()
	c.wake()
}

// shutdown tells the writer that no more replies will come. A write that is
// blocked on a client that does not read gets the short shutdown deadline,
// so a stuck client cannot hold up the server's exit.
func (c *conn) shutdown() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.nc.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
	})
}

// writeTimeout is how long the next write may block.
func (c *conn) writeTimeout() time.Duration {
	select {
	case <-c.stop:
		return shutdownWriteTimeout
	default:
		return c.h.cfg.WriteTimeout
	}
}

// push queues a slot for the writer, blocking while the in-flight limit is
// reached. It reports false when the connection is going away.
func (c *conn) push(s *slot) bool {
	// Checked first because a select picks at random among ready cases,
	// and a client flooding the socket must not keep a stopped host busy.
	select {
	case <-c.stop:
		return false
	default:
	}
	select {
	case c.room <- struct{}{}:
	case <-c.dead:
		return false
	case <-c.stop:
		return false
	}
	c.mu.Lock()
	c.queue = append(c.queue, s)
	head := len(c.queue) == 1 && s.filled
	c.mu.Unlock()
	if head {
		c.wake()
	}
	return true
}

// read frames lines, answering too_large for an over-long one and skipping
// the rest of it, and closes the connection after an idle period or a stalled
// partial line.
func (c *conn) read() {
	defer c.h.wg.Done()
	defer c.readerStopped() // the writer sends what is owed, then closes
	lineMax := c.h.cfg.RequestBytesMax
	buf := make([]byte, readBufBytes)
	// buf[start:end] is read but not yet framed; buf[start:scanned] is known
	// to hold no newline, so a long line is not rescanned on every read.
	start, end, scanned := 0, 0, 0
	discarding := false // inside an over-long line, dropping up to its newline
	// waitingSince is when the reader first waited on the socket for the
	// rest of the current partial line. Time spent blocked on the in-flight
	// limit is the server's doing and does not count against the client.
	var waitingSince time.Time
	for {
		for {
			i := bytes.IndexByte(buf[scanned:end], '\n')
			if i < 0 {
				scanned = end
				break
			}
			lineEnd := scanned + i
			waitingSince = time.Time{}
			switch {
			case discarding:
				discarding = false
			case lineEnd-start > lineMax:
				if !c.push(c.h.refusedLine(tooLarge(lineMax))) {
					return
				}
			default:
				if !c.handleLine(buf[start:lineEnd]) {
					return
				}
			}
			start = lineEnd + 1
			scanned = start
		}

		switch {
		case discarding || start == end:
			start, end, scanned = 0, 0, 0
			if len(buf) > readBufBytes {
				buf = make([]byte, readBufBytes)
			}
		case end-start > lineMax:
			// Answer now rather than after the newline: the client
			// may be waiting for a response before it sends more.
			if !c.push(c.h.refusedLine(tooLarge(lineMax))) {
				return
			}
			discarding = true
			start, end, scanned = 0, 0, 0
		case end == len(buf) && start > 0:
			n := copy(buf, buf[start:end])
			scanned -= start
			start, end = 0, n
		case end == len(buf):
			// One line fills the buffer: grow it, but only to one
			// byte past the limit, enough to see it is over.
			grown := make([]byte, min(2*len(buf), lineMax+1))
			copy(grown, buf[:end])
			buf = grown
		}

		partial := discarding || end > start
		now := time.Now()
		if partial {
			if waitingSince.IsZero() {
				waitingSince = now
			}
			c.nc.SetReadDeadline(waitingSince.Add(c.h.cfg.LineTimeout))
		} else {
			c.nc.SetReadDeadline(now.Add(c.h.cfg.IdleTimeout))
		}
		// A net.Conn read returns data or an error, never both, so an
		// error here leaves nothing unframed behind it.
		n, err := c.nc.Read(buf[end:])
		end += n
		if err == nil {
			continue
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout() && partial:
			c.push(c.h.refusedLine(core.ErrorResponse(core.CodeTimeout,
				"request line incomplete after %v; closing the connection", c.h.cfg.LineTimeout)))
		case errors.Is(err, io.EOF) && !discarding && end > start:
			// A last request without its newline: the client closed
			// its side after sending it, and still waits for the reply.
			c.handleLine(buf[start:end])
		}
		return
	}
}

func tooLarge(lineMax int) core.Response {
	return core.ErrorResponse(core.CodeTooLarge,
		"request line is longer than %d bytes; it was skipped up to its newline", lineMax)
}

// handleLine decodes one line and posts it to the loop. It reports false
// when the connection is going away. Decoding happens here, on the
// connection's goroutine, so the loop spends its time on the node only.
func (c *conn) handleLine(line []byte) bool {
	// Tolerate CRLF, so that telnet and hand-typed requests work.
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		return c.push(c.h.refusedLine(core.ErrorResponse(core.CodeBadRequest,
			"empty line; send one JSON request object per line")))
	}
	// The decoded request copies what it keeps from line, which the
	// reader's buffer will overwrite.
	req, bad := core.DecodeRequest(line)
	if bad != nil {
		return c.push(c.h.refusedLine(*bad))
	}
	metrics := c.h.metrics
	if prepare := c.h.cfg.Prepare; prepare != nil {
		prepare(req)
	}
	s := &slot{}
	if !c.push(s) {
		return false
	}
	node := c.h.node
	logf := c.h.logf
	inFlight := &c.h.requestsInFlight
	inFlight.Add(1)
	var decoded time.Duration
	if metrics != nil {
		decoded = monoNow()
	}
	reply := func(resp core.Response) {
		resp.ID = req.ID
		var code string
		var elapsed time.Duration
		if metrics != nil {
			elapsed = monoNow() - decoded
			if resp.Error != nil {
				code = resp.Error.Code
			}
		}
		if c.fill(s, resp) {
			inFlight.Add(-1)
			if metrics != nil {
				c.h.answered(req.Op, code, elapsed)
			}
		} else {
			// The contract says exactly once; a second reply must not
			// block the loop or reorder the stream, so it is dropped.
			logf("node replied twice to one %q request; dropped the second reply", req.Op)
		}
	}
	if !c.h.postRequest(func() { node.HandleRequest(req, reply) }) {
		inFlight.Add(-1)
		return false
	}
	return true
}

// write sends responses in request order, flushing whenever the next one is
// not ready yet, and closes the connection when the reader is done and every
// owed response has gone out, or when writing fails.
func (c *conn) write() {
	defer c.h.wg.Done()
	defer c.h.forget(c)
	defer close(c.dead)
	defer func() {
		if c.readerDone {
			lingerClose(c.nc)
		} else {
			c.nc.Close()
		}
	}()
	bw := bufio.NewWriterSize(c.nc, writeBufBytes)
	var line []byte
	var batch []*slot
	for {
		c.wmu.Lock()
		ok, gone := c.sendReady(bw, &line, &batch, c.writeTimeout)
		if ok {
			// sendNow's writes go through the same deadline: once it
			// passed, every one would fail without trying and fall back
			// to this goroutine.
			c.nc.SetWriteDeadline(time.Time{})
		}
		c.wmu.Unlock()
		if !ok {
			return
		}
		if gone {
			c.readerDone = true
			return
		}
		select {
		case <-c.ready:
		case <-c.stop:
			// The loop has exited: nothing more will be filled. Send
			// what is ready (a write's reply means it was fsync'd, so it
			// is worth a short wait), up to the first unanswered slot.
			c.wmu.Lock()
			c.sendReady(bw, &line, &batch, func() time.Duration { return shutdownWriteTimeout })
			c.wmu.Unlock()
			return
		}
	}
}

// sendReady sends what the loop left pending, then the ready responses at
// the head of the queue until none is ready, and flushes. It is called with
// wmu held. It reports whether writing worked, and whether the reader is
// gone with nothing more owed.
func (c *conn) sendReady(bw *bufio.Writer, line *[]byte, batch *[]*slot, timeout func() time.Duration) (ok, gone bool) {
	if len(c.pending) > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(timeout()))
		if _, err := c.nc.Write(c.pending); err != nil {
			return false, false
		}
		c.pending = c.pending[:0]
	}
	for {
		*batch, gone = c.takeReady((*batch)[:0])
		if len(*batch) == 0 {
			break
		}
		for _, s := range *batch {
			*line = core.AppendResponse((*line)[:0], &s.resp)
			if len(*line) > bw.Available() {
				// This write reaches the socket; bound how long it may
				// wait for a client that does not read.
				c.nc.SetWriteDeadline(time.Now().Add(timeout()))
			}
			if _, err := bw.Write(*line); err != nil {
				return false, false
			}
			<-c.room
		}
	}
	return c.flush(bw, timeout()), gone
}

// takeReady moves the filled slots at the head of the queue into batch. gone
// reports that the reader has stopped and nothing at all is owed.
func (c *conn) takeReady(batch []*slot) (_ []*slot, gone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(c.queue) && c.queue[n].filled {
		n++
	}
	batch = append(batch, c.queue[:n]...)
	clear(c.queue[:n])
	c.queue = c.queue[n:]
	return batch, c.readerGone && len(c.queue) == 0
}

func (c *conn) flush(bw *bufio.Writer, timeout time.Duration) bool {
	if bw.Buffered() == 0 {
		return true
	}
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	return bw.Flush() == nil
}
