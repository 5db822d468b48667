package realnet

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
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

// slot carries one response. The reader queues slots in request order and
// the writer waits on them in that order, so responses leave in request order
// whatever order the node answers in. Capacity 1 means the node's reply never
// blocks the loop.
type slot chan core.Response

func filledSlot(resp core.Response) slot {
	s := make(slot, 1)
	s <- resp
	return s
}

// conn is one client connection: a reader goroutine that frames, decodes
// and posts requests, and a writer goroutine that sends responses.
type conn struct {
	h  *Host
	nc net.Conn
	// slots holds the responses owed, in request order; with the one the
	// writer is waiting on, at most ConnInflightMax. The reader closes it
	// when it stops reading.
	slots    chan slot
	stop     chan struct{} // the loop has exited: send what is ready and close
	stopOnce sync.Once
	dead     chan struct{} // the writer has exited: nobody takes slots any more
	// readerDone is set by the writer when it finds slots closed: nothing
	// else reads the socket, so the writer may linger on it.
	readerDone bool
}

func newConn(h *Host, nc net.Conn) *conn {
	return &conn{
		h:  h,
		nc: nc,
		// The writer holds one slot out of the channel while it waits
		// for it, so the channel holds the rest of the limit.
		slots: make(chan slot, h.cfg.ConnInflightMax-1),
		stop:  make(chan struct{}),
		dead:  make(chan struct{}),
	}
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
func (c *conn) push(s slot) bool {
	// Checked first because a select picks at random among ready cases,
	// and a client flooding the socket must not keep a stopped host busy.
	select {
	case <-c.stop:
		return false
	default:
	}
	select {
	case c.slots <- s:
		return true
	case <-c.dead:
		return false
	case <-c.stop:
		return false
	}
}

// read frames lines, answering too_large for an over-long one and skipping
// the rest of it, and closes the connection after an idle period or a stalled
// partial line.
func (c *conn) read() {
	defer c.h.wg.Done()
	defer close(c.slots) // the writer sends what is owed, then closes
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
				if !c.push(filledSlot(tooLarge(lineMax))) {
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
			if !c.push(filledSlot(tooLarge(lineMax))) {
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
			c.push(filledSlot(core.ErrorResponse(core.CodeTimeout,
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
		return c.push(filledSlot(core.ErrorResponse(core.CodeBadRequest,
			"empty line; send one JSON request object per line")))
	}
	// The decoded request copies what it keeps from line, which the
	// reader's buffer will overwrite.
	req, bad := core.DecodeRequest(line)
	if bad != nil {
		return c.push(filledSlot(*bad))
	}
	s := make(slot, 1)
	if !c.push(s) {
		return false
	}
	node := c.h.node
	logf := c.h.logf
	reply := func(resp core.Response) {
		resp.ID = req.ID
		select {
		case s <- resp:
		default:
			// The contract says exactly once; a second reply must not
			// block the loop or reorder the stream, so it is dropped.
			logf("node replied twice to one %q request; dropped the second reply", req.Op)
		}
	}
	return c.h.post(func() { node.HandleRequest(req, reply) })
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
	for {
		s, ok := c.nextSlot(bw)
		if !ok {
			return
		}
		resp, ok := c.await(s, bw)
		if !ok {
			return
		}
		line = core.AppendResponse(line[:0], &resp)
		if len(line) > bw.Available() {
			// This write reaches the socket; bound how long it may
			// wait for a client that does not read.
			c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout()))
		}
		if _, err := bw.Write(line); err != nil {
			return
		}
	}
}

// nextSlot returns the next owed slot, or false when there is none and will
// be none. On shutdown it sends whatever is ready first.
func (c *conn) nextSlot(bw *bufio.Writer) (slot, bool) {
	select {
	case s, ok := <-c.slots:
		if !ok {
			c.readerDone = c.flush(bw, c.writeTimeout())
		}
		return s, ok
	default:
	}
	if !c.flush(bw, c.writeTimeout()) {
		return nil, false
	}
	select {
	case s, ok := <-c.slots:
		if !ok {
			c.readerDone = c.flush(bw, c.writeTimeout())
		}
		return s, ok
	case <-c.stop:
		c.sendReady(bw, nil)
		return nil, false
	}
}

// await waits for the node to fill s.
func (c *conn) await(s slot, bw *bufio.Writer) (core.Response, bool) {
	select {
	case resp := <-s:
		return resp, true
	default:
	}
	if !c.flush(bw, c.writeTimeout()) {
		return core.Response{}, false
	}
	select {
	case resp := <-s:
		return resp, true
	case <-c.stop:
		c.sendReady(bw, s)
		return core.Response{}, false
	}
}

// sendReady runs once the loop has exited, so no slot will be filled any
// more: it sends the filled slots at the head of the queue, starting with
// head if not nil, up to the first empty one, whose request will never be
// answered. Those responses are real (a write was fsync'd before its reply),
// so they are worth a short wait.
func (c *conn) sendReady(bw *bufio.Writer, head slot) {
	var line []byte
	for {
		s := head
		head = nil
		if s == nil {
			select {
			case s = <-c.slots:
			default:
			}
			if s == nil { // queue empty, or closed by the reader
				break
			}
		}
		var resp core.Response
		select {
		case resp = <-s:
		default:
			c.flush(bw, shutdownWriteTimeout)
			return
		}
		line = core.AppendResponse(line[:0], &resp)
		c.nc.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
		if _, err := bw.Write(line); err != nil {
			return
		}
	}
	c.flush(bw, shutdownWriteTimeout)
}

func (c *conn) flush(bw *bufio.Writer, timeout time.Duration) bool {
	if bw.Buffered() == 0 {
		return true
	}
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	return bw.Flush() == nil
}
