package realnet

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
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
	// writeChunkBytes is the most a writer goroutine's write moves under
	// one deadline (chunkWriter): WriteTimeout then bounds how long a
	// client may take nothing, not how long many MB of replies take to
	// cross to a client that reads them slowly.
	writeChunkBytes = 64 << 10
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
	// eofProbeDelay is how long a reader that drained its socket waits
	// before it reads once more to look for the client's end of stream
	// (see onReadable). A client that sends again sooner costs nothing.
	eofProbeDelay = 20 * time.Millisecond
	// rereadAfterBusy: see onReadable.
	rereadAfterBusy = 200 * time.Microsecond
)

// lingerClose ends the server's side, drains the client's side for a
// moment, then closes.
func lingerClose(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		// TLS's closing alert, which CloseWrite and Close send, waits
		// up to 5 s of its own for a client that does not read: bound it.
		t := time.AfterFunc(lingerTimeout, func() { tc.NetConn().Close() })
		defer t.Stop()
	}
	if hc, ok := nc.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.CopyN(io.Discard, nc, lingerBytesMax)
	}
	nc.Close()
}

// slot is one owed response. The reader queues slots in request order and
// they are sent in that order, so responses leave in request order whatever
// order the node answers in. A slot is filled once, under conn.mu.
//
// A slot of a request posted to the node also carries what its reply needs,
// so that a request costs one allocation here rather than one per closure.
type slot struct {
	resp   core.Response
	filled bool
	// kind says how the reply is written: JSON, or which RESP reply; raw
	// is a reply made without the node (respRaw), or INFO's sections.
	kind respKind
	raw  []byte

	c       *conn
	req     *core.Request
	decoded time.Duration // when the request was decoded, for the metrics
	// buf holds req when it was decoded into the slot: one allocation for
	// both, as every request needs one of each.
	buf core.RequestBuf
	// gen counts the slot's uses (see conn.free): a reply made for an
	// earlier use finds another gen and is dropped.
	gen uint32
	// held is the size of the request's frame (its line, or its RESP
	// command), which the slot is charged against the connection's
	// bytes owed (conn.queuedBytes) until its reply is taken to be sent.
	held int
}

func filledSlot(resp core.Response) *slot { return &slot{resp: resp, filled: true} }

// replyFunc is the core.ReplyFunc of s's request, for this use of s.
func (c *conn) replyFunc(s *slot) core.ReplyFunc {
	gen := s.gen
	return func(resp core.Response) { c.reply(s, gen, resp) }
}

// reply answers use gen of s. It runs on the node's goroutine.
func (c *conn) reply(s *slot, gen uint32, resp core.Response) {
	h := c.h
	op, decoded, ok := c.fill(s, gen, resp)
	if !ok {
		// The contract says exactly once; a second reply must not block
		// the loop, reorder the stream or answer the request that uses
		// the slot now, so it is dropped.
		h.logf("node replied twice to one request; dropped the second reply")
		return
	}
	h.requestsInFlight.Add(-1)
	h.requestsAnswered.Add(1)
	if h.metrics != nil {
		code := ""
		if resp.Error != nil {
			code = resp.Error.Code
		}
		h.answered(op, code, monoNow()-decoded)
	}
}

// conn is one client connection: a reader goroutine that frames, decodes
// and posts requests, and a writer goroutine that sends what the loop could
// not send itself.
//
// The path of a request is built for batches, since every hand-off and
// syscall is paid per batch rather than per request:
//
//   - The reader posts every complete request of one read to the node as
//     one event, which handles them in order.
//   - The loop sends a connection's replies of one turn with one write, at
//     the end of the turn (Host.flushReplies), from the loop goroutine when
//     the socket takes them without blocking (sendNow).
//   - The reader runs inside the netpoller's read callback (onReadable):
//     after a read that drained the socket it parks until more arrives,
//     rather than reading again only to be told EAGAIN.
//   - The writer goroutine sleeps until the loop could not send (the
//     socket was full, or the writer was busy with it), and only then.
type conn struct {
	h  *Host
	nc net.Conn
	// spareBatch is a requestBatch that has run, for commit to post again.
	spareBatch atomic.Pointer[requestBatch]

	mu         sync.Mutex
	queue      []*slot // owed responses, in request order
	unfilled   int     // slots of the queue that wait for the node
	readerGone bool    // the reader stopped: no more slots will be queued
	// free holds slots whose replies have been encoded for sending, for
	// the reader to use again (newSlot): a request's slot is most of what
	// it allocates (448 of ~500 bytes for a GET), and the collector runs
	// as often as that garbage fills its budget.
	free []*slot
	// ready has room for one token: "the head may be filled, or the reader
	// is gone". Senders never block, and the writer rechecks under mu.
	ready chan struct{}
	// At most ConnInflightMax responses are owed at once (queued and not
	// yet taken to be sent), and while the requests they answer add up to
	// inflightBytesMax (queuedBytes, their frames' sizes), no more is
	// read; the reader then waits for room, which pushes back on a
	// pipelining client. roomWait says the reader waits, and room carries
	// the one token that wakes it.
	roomWait    bool
	room        chan struct{}
	queuedBytes int

	// wmu is held by whoever writes to the socket: the writer goroutine,
	// from taking responses off the queue until it has flushed them, or
	// the loop, which sends replies itself when the socket is free (see
	// sendNow). pending holds bytes the loop could not send without
	// blocking; the writer sends them first.
	wmu     sync.Mutex
	pending []byte
	raw     syscall.RawConn // nil where the conn has no file descriptor
	loopBuf []byte          // the loop's encoding buffer, under wmu
	loopTmp []*slot
	sent    int                   // sendNow: bytes of loopBuf written
	writeFn func(fd uintptr) bool // sendNow's raw write, made once

	// dirty is set while the conn is on the host's list of connections
	// that got replies in the current turn; only the holder of the
	// node's role touches it.
	dirty bool

	// The reader's state, touched by the reader goroutine only: proto is
	// the connection's protocol, found from its first bytes (sniff).
	rd    readState
	proto protocol
	resp  respState
	auth  authState

	stop     chan struct{} // the loop has exited: send what is ready and close
	stopOnce sync.Once
	dead     chan struct{} // the writer is exiting: nobody takes slots any more
	// ending is set before stop or dead is closed: commit posts nothing
	// after either. A select on the two was 0.6% of the samples at GET c50.
	ending atomic.Bool
	// readerDone is set by the writer when it finds the reader gone with
	// nothing owed: nothing else reads the socket, so it may linger on it.
	readerDone bool

	// tls is the pipe under a TLS connection that an event loop serves
	// (tlspipe.go), nil for any other; set at accept.
	tls *tlsPipe

	// reads and writes count the socket's read and write calls, for the
	// tests that hold the host to one of each per batch.
	reads, writes atomic.Int64

	// lp is the event loop that serves the connection (eloop), nil for a
	// connection with a reader and a writer goroutine of its own. Its
	// state, and fd's, is described in eloop.go.
	lp *eloop
	ls loopState
	// awaited is the gathering epoch in which the node answered all
	// this connection owed, until it sends again; 0: not awaited.
	awaited atomic.Uint64
}

// readState is what the reader keeps between reads.
type readState struct {
	buf []byte
	// buf[start:end] is read but not yet framed; buf[start:scanned] is
	// known to hold no newline, so a long line is not rescanned on every
	// read.
	start, end, scanned int
	discarding          bool // inside an over-long line, dropping up to its newline
	// waitingSince is when the reader first waited on the socket for the
	// rest of the current partial line. Time spent blocked on the
	// in-flight limit is the server's doing and does not count against
	// the client.
	waitingSince time.Time
	// idleSince is when the reader last read data with no partial request
	// left; probing says the read deadline is the end-of-stream probe's
	// (eofProbeDelay), not the idle timeout's.
	idleSince time.Time
	probing   bool
	// roomAt is when a reader goroutine last found room after waiting
	// for it (waitRoom): the time of the read that came before the wait
	// must not start the idle or line timeout, or a client that
	// pipelines and reads its replies slowly for an idle timeout, its
	// requests waiting in the socket, is closed with them unread.
	roomAt time.Time
	// slots are the slots framed since the last commit, in order, and
	// posted those of them that go to the node; avail is how many more
	// the reader may queue before it must look at the queue again, and
	// availBytes how many bytes of frames. frameBytes is the size of
	// the frame being handled, which add charges to its slot.
	slots      []*slot
	posted     []*slot
	avail      int
	availBytes int
	frameBytes int
	// spare are free slots the reader took (newSlot).
	spare []*slot
	// err ends the read callback: the socket's error, or errGoingAway.
	err    error
	readFn func(fd uintptr) bool // onReadable, made once
}

// errGoingAway ends reading because the connection or the host is going
// away; nothing more is answered.
var errGoingAway = errors.New("connection going away")

// errCloseAfterReply ends reading after a RESP protocol error, QUIT or the
// last wrong password a connection may send (auth.go): the replies owed
// still go out, then the connection closes.
var errCloseAfterReply = errors.New("closing after the reply")

// protocol is what a connection speaks, told from its first bytes.
type protocol uint8

const (
	protoUnknown protocol = iota // no complete first line yet
	protoJSON
	protoRESP
	protoHTTP // an HTTP request: refused whole (see looksHTTP)
)

func newConn(h *Host, nc net.Conn) *conn {
	c := &conn{
		h:     h,
		nc:    nc,
		ready: make(chan struct{}, 1),
		room:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		dead:  make(chan struct{}),
	}
	c.rd.avail = h.cfg.ConnInflightMax
	c.rd.availBytes = h.cfg.inflightBytesMax()
	c.auth.by = time.Now().Add(h.cfg.AuthTimeout) // used only while a password is asked
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.writeFn = c.rawWrite
			c.rd.readFn = c.onReadable
		}
	}
	return c
}

func (c *conn) wake() {
	if c.lp != nil {
		c.lp.kick(c)
		return
	}
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// fill answers s; called on the node's goroutine, it never blocks. It
// reports false if s was already filled.
//
// The reply leaves with the connection's other replies of the turn, in one
// write: at once if it was the last one the connection waited for (no
// other reply can come before the connection's next batch, which then
// cannot miss a reply that sat here to the end of the turn), or else at
// the end of the turn (Host.flushReplies). Sending the last one at once
// rather than after the turn's Flush lets a client that waits for it send
// its next request that much sooner.
func (c *conn) fill(s *slot, gen uint32, resp core.Response) (op string, decoded time.Duration, ok bool) {
	c.mu.Lock()
	if s.filled || s.gen != gen {
		c.mu.Unlock()
		return "", 0, false
	}
	// What the metrics need is read now: once filled, the slot may be
	// sent and reused (conn.free) before this returns.
	op, decoded = s.req.Op, s.decoded
	resp.ID = s.req.ID
	s.resp, s.filled = resp, true
	c.unfilled--
	// The head may be s, or a refused line queued before it.
	headReady := len(c.queue) > 0 && c.queue[0].filled
	last := c.unfilled == 0
	c.mu.Unlock()
	switch {
	case !headReady:
	case last:
		c.h.gather.answered(c.h, c)
		if c.h.metrics != nil {
			// Counted before the client can see it: a client that
			// reads its reply and then the metrics finds it there.
			c.h.reportTurn()
		}
		c.sendOrWake()
	case !c.dirty:
		c.dirty = true
		c.h.dirty = append(c.h.dirty, c)
	}
	return op, decoded, true
}

// sendOrWake sends what is ready, from the goroutine that holds the node's
// role or from the reader, or else wakes the writer to do it.
func (c *conn) sendOrWake() {
	if !c.sendNow() {
		c.wake()
	}
}

// sendNow sends the ready responses at the head of the queue when nobody
// else is writing and the socket takes them without blocking. Handing them
// to the writer goroutine costs a wake-up, tens of microseconds on a VM, on
// the path of every reply; a lone client waits for exactly that. It never
// blocks: the socket is tried once, and what it does not take goes to the
// writer. It reports false when the writer has to act.
func (c *conn) sendNow() bool {
	if (c.raw == nil && c.lp == nil) || !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	if len(c.pending) > 0 || (c.lp != nil && c.ls.fd < 0) || c.tlsOutLeft() {
		// A closed loop connection's descriptor number may belong to
		// another connection by now: never write to it.
		return false
	}
	for {
		buf, k, gone := c.encodeReady(c.loopBuf[:0])
		c.loopBuf, c.sent = buf, 0
		if k == 0 {
			c.loopBuf = keepSendBuf(buf)
			return !gone
		}
		if c.lp != nil {
			c.rawWrite(uintptr(c.ls.fd))
		} else {
			_ = c.raw.Write(c.writeFn)
		}
		c.loopBuf = keepSendBuf(buf)
		if c.sent < len(buf) {
			c.pending = append(c.pending, buf[c.sent:]...)
			return false
		}
		if c.tlsOutLeft() {
			return false // the loop sends the rest when the socket takes it
		}
	}
}

// sendAheadBytesMax bounds the replies one send encodes before it writes
// them (encodeReady): it stops at the first reply that reaches it. The
// replies owed are bounded in number by ConnInflightMax, but a reply may
// be a 1 MB value or a bulk_get of the request line limit; encoded all at
// once, the 1024 GETs of a 1 MB value that a client pipelined and did not
// read held 3 GB, and the node's goroutine, encoding them, kept every
// other client waiting 30-45 s (found by review). What is not encoded
// stays owed in the queue, where the in-flight limit counts it.
const sendAheadBytesMax = writeBufBytes

// sendBufKeepBytesMax bounds the encoding buffer a connection keeps for
// its next send: one large reply must not pin its size for the life of an
// idle connection.
const sendBufKeepBytesMax = writeBufBytes

// keepSendBuf is buf emptied, to be kept for the next send, or nil if it
// grew too large to keep.
func keepSendBuf(buf []byte) []byte {
	if cap(buf) > sendBufKeepBytesMax {
		return nil
	}
	return buf[:0]
}

// encodeReady appends to buf the filled replies at the head of the queue,
// in order, until buf holds sendAheadBytesMax, and takes the k it encoded
// off the queue (making room for the reader, as takeReady does). gone
// reports that the reader has stopped and nothing at all is owed. It is
// called with wmu held: only a holder of wmu takes from the queue's
// front, so the slots seen filled are still there to take.
func (c *conn) encodeReady(buf []byte) (_ []byte, k int, gone bool) {
	c.mu.Lock()
	n := 0
	for n < len(c.queue) && c.queue[n].filled {
		n++
	}
	ready := append(c.loopTmp[:0], c.queue[:n]...)
	c.mu.Unlock()
	// A filled slot is not written again until it is recycled below,
	// by this holder of wmu: it is read here without c.mu.
	for k < len(ready) && len(buf) < sendAheadBytesMax {
		buf = c.appendReply(buf, ready[k])
		k++
	}
	taken, gone := c.takeReadyMax(ready[:0], k) // ready[:k], taken
	c.recycle(taken)
	clear(ready)
	c.loopTmp = ready[:0]
	return buf, k, gone
}

// rawWrite is sendNow's write: as much of loopBuf as the socket takes now.
func (c *conn) rawWrite(fd uintptr) bool {
	if c.tls != nil {
		n, _ := c.sendLoop(c.loopBuf[c.sent:])
		c.sent += n
		return true
	}
	for c.sent < len(c.loopBuf) {
		c.writes.Add(1)
		m, err := sendNonblock(int(fd), c.loopBuf[c.sent:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil || m <= 0 {
			break // EAGAIN, or a failure the writer will meet and report
		}
		c.sent += m
	}
	return true // never wait for the socket here
}

// sendLoop writes b to a loop connection's socket until it is all out or
// the socket is full (ok) or the write fails (!ok); called with wmu held.
// A TLS connection's b is encrypted whole into its pipe once what the pipe
// held before is out, and n counts the bytes encrypted: what the socket
// did not take of them waits in the pipe (tlsOutLeft).
func (c *conn) sendLoop(b []byte) (n int, ok bool) {
	p := c.tls
	if p == nil {
		return c.sendSocket(b)
	}
	if !p.send(c.sendSocket) {
		return 0, false
	}
	if len(b) == 0 || p.outLen() > 0 {
		return 0, true
	}
	if err := p.encrypt(b); err != nil {
		return 0, false
	}
	return len(b), p.send(c.sendSocket)
}

// tlsOutLeft reports whether a loop's TLS connection has encrypted bytes
// that its socket has not taken yet.
func (c *conn) tlsOutLeft() bool { return c.tls != nil && c.tls.outLen() > 0 }

// tlsSent is how many encrypted bytes a loop's TLS connection has sent (0
// for any other connection).
func (c *conn) tlsSent() int64 {
	if c.tls == nil {
		return 0
	}
	return c.tls.sentBytes()
}

// sendSocket is sendLoop's write to the socket, with wmu held.
func (c *conn) sendSocket(b []byte) (n int, ok bool) { return sendSocketNow(c.ls.fd, b, &c.writes) }

// sendSocketNow writes b to a non-blocking socket until it is all out or
// the socket is full (ok) or the write fails (!ok), counting its calls in
// writes where that is not nil.
func sendSocketNow(fd int, b []byte, writes *atomic.Int64) (n int, ok bool) {
	for n < len(b) {
		m, err := sendNonblock(fd, b[n:])
		if writes != nil {
			writes.Add(1)
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return n, true
		case err != nil || m <= 0:
			return n, false
		}
		n += m
	}
	return n, true
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
		c.ending.Store(true)
		close(c.stop)
		if c.lp != nil {
			c.lp.kick(c)
			return
		}
		if c.tls != nil {
			// Its handshake runs (handshakeForLoop): end it, as no
			// reply is owed yet. (c.lp is set under Host.mu, which
			// the caller holds.)
			c.nc.SetDeadline(time.Now())
			return
		}
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

// push queues one slot and commits it (see commit), blocking while the
// in-flight limit is reached. It reports false when the connection is
// going away.
func (c *conn) push(s *slot) bool {
	return c.add(s) && c.commit()
}

// add frames one more slot, to be queued by the next commit. When the
// in-flight limit is reached it commits what it has and waits for room.
// It reports false when the connection is going away.
func (c *conn) add(s *slot) bool {
	if c.rd.avail == 0 && c.lp == nil {
		if !c.commit() || !c.waitRoom() {
			return false
		}
	}
	// A loop connection never waits here: its framing asks room first
	// (haveRoom), and the only slots added without asking are a last reply
	// that ends reading (a protocol error, QUIT, a timeout), which may
	// take the in-flight limit one past.
	if c.rd.avail > 0 {
		c.rd.avail--
	}
	// The frame's bytes: a reply made here (ECHO's) is as large, and a
	// request keeps up to as many (a JSON id, echoed). Once the bytes
	// owed reach their bound, the next frame asks for room first.
	s.held, c.rd.frameBytes = c.rd.frameBytes, 0
	if c.rd.availBytes -= s.held; c.rd.availBytes <= 0 {
		c.rd.avail = 0
	}
	c.rd.slots = append(c.rd.slots, s)
	if s.req != nil {
		c.rd.posted = append(c.rd.posted, s)
	}
	return true
}

// roomState is what room found.
type roomState uint8

const (
	roomYes    roomState = iota // a slot may be added
	roomPaused                  // a loop connection has none: it pauses
	roomGone                    // the connection or the host is going away
)

// haveRoom is asked before each slot a reader frames: a goroutine connection
// waits for room (add's rule); a loop connection, whose loop serves others
// and must not wait, pauses when ConnInflightMax responses are owed: it
// stops framing, leaving the rest in its buffer, and is not read until a
// response goes out (takeReady kicks its loop, which resumes it).
func (c *conn) haveRoom() roomState {
	if c.rd.avail > 0 {
		return roomYes
	}
	if c.lp == nil {
		if !c.commit() || !c.waitRoom() {
			return roomGone
		}
		return roomYes
	}
	if !c.commit() {
		return roomGone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.roomLocked() {
		return roomYes
	}
	c.roomWait = true
	c.ls.paused = true
	return roomPaused
}

// roomLocked reports, with mu held, whether the reader may frame more:
// fewer than ConnInflightMax responses are owed, for requests of fewer
// than inflightBytesMax bytes. If so it sets avail and availBytes to the
// room there is.
func (c *conn) roomLocked() bool {
	max, bytesMax := c.h.cfg.ConnInflightMax, c.h.cfg.inflightBytesMax()
	n := len(c.queue)
	if n >= max || c.queuedBytes >= bytesMax {
		return false
	}
	c.rd.avail, c.rd.availBytes = max-n, bytesMax-c.queuedBytes
	return true
}

// waitRoom waits until there is room (roomLocked), and sets avail and
// availBytes to it. It reports false when the connection is going away.
func (c *conn) waitRoom() bool {
	waited := false
	for {
		// Checked first because a select picks at random among ready
		// cases, and a client flooding the socket must not keep a
		// stopped host busy.
		select {
		case <-c.stop:
			return false
		default:
		}
		c.mu.Lock()
		if c.roomLocked() {
			c.roomWait = false
			c.mu.Unlock()
			if waited {
				c.rd.roomAt = time.Now()
			}
			return true
		}
		c.roomWait = true
		c.mu.Unlock()
		waited = true
		select {
		case <-c.room:
		case <-c.dead:
			return false
		case <-c.stop:
			return false
		}
	}
}

// commit queues the slots framed since the last commit, in order, and posts
// the requests among them to the node as one event. It reports false when
// the connection or the host is going away.
func (c *conn) commit() bool {
	rd := &c.rd
	if len(rd.slots) == 0 {
		return true
	}
	if c.ending.Load() {
		return false
	}
	c.mu.Lock()
	// Read under mu, as the rest: once mu is let go, a send running on
	// another goroutine (a turn's reply) may take a filled head off the
	// queue, encode it and recycle the slot, rewriting it (the race
	// detector caught the read after the unlock in a CI run).
	headReady := len(c.queue) == 0 && rd.slots[0].filled
	c.queue = append(c.queue, rd.slots...)
	here := int64(0) // answered by the host itself
	for _, s := range rd.slots {
		c.queuedBytes += s.held
		if !s.filled {
			c.unfilled++
		} else {
			here++
		}
	}
	c.mu.Unlock()
	if here > 0 {
		c.h.requestsAnswered.Add(here)
	}
	clear(rd.slots)
	rd.slots = rd.slots[:0]
	if headReady {
		// A reply made here (a refused line, a RESP PING) heads the
		// queue: send it now rather than with the node's next reply,
		// which may be long in coming (a cluster write) or never come.
		c.sendOrWake()
	}
	if len(rd.posted) == 0 {
		return true
	}
	// The event owns its slots: the reader's list is reused for the next
	// batch.
	b := c.spareBatch.Swap(nil)
	if b == nil {
		b = &requestBatch{c: c}
		c.h.batchesMade.Add(1)
	}
	b.slots = append(b.slots, rd.posted...)
	clear(rd.posted)
	rd.posted = rd.posted[:0]
	h := c.h
	n := int64(len(b.slots))
	h.requestsInFlight.Add(n)
	var ok bool
	if c.lp != nil {
		h.gather.sent(c, b)
		ok = h.postDeferred(b)
	} else {
		ok = h.postRequests(b)
	}
	if !ok {
		h.requestsInFlight.Add(-n)
	}
	return ok
}

// requestBatch is the event that hands the node the requests of one
// commit. A connection keeps one spare (conn.spareBatch), which each batch
// becomes again once it has run, so that a connection with one batch in
// flight at a time, the common case, posts without allocating.
type requestBatch struct {
	c     *conn
	slots []*slot
}

// run hands the node the batch's requests, then makes the batch its
// connection's spare. It runs once, on whoever runs the node.
func (b *requestBatch) run() {
	node := b.c.h.node
	for _, s := range b.slots {
		node.HandleRequest(s.req, b.c.replyFunc(s))
	}
	clear(b.slots)
	b.slots = b.slots[:0]
	if cap(b.slots) <= requestBatchSpareMax {
		b.c.spareBatch.CompareAndSwap(nil, b)
	}
}

// requestBatchSpareMax bounds the slots a spare batch keeps room for: a
// pipelining client's burst, not the largest batch a connection ever sent.
const requestBatchSpareMax = 256

// read frames requests and posts them, answers too_large for an over-long
// line and skips the rest of it, and closes the connection after an idle
// period or a stalled partial line.
func (c *conn) read() {
	defer c.h.wg.Done()
	defer c.readerStopped() // the writer sends what is owed, then closes
	rd := &c.rd
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			c.readEnded(err)
			return
		}
	}
	rd.buf = make([]byte, readBufBytes)
	rd.idleSince = time.Now()
	c.setReadDeadline(false)
	var err error
	if c.raw != nil {
		// The read loop runs inside a raw read: see onReadable.
		for {
			if err = c.raw.Read(rd.readFn); err == nil {
				err = rd.err
				break
			}
			var ne net.Error
			if !rd.probing || !errors.As(err, &ne) || !ne.Timeout() {
				break
			}
			// Quiet since the probe's deadline: a new raw read reads
			// first, which sees an end of stream that came with the
			// last data, then waits for the idle timeout.
			c.setReadDeadline(false)
		}
	} else {
		for {
			var n int
			n, err = c.nc.Read(rd.buf[rd.end:])
			// A TLS read may return the last data with the error of the
			// close that followed it.
			if n == 0 && err != nil {
				break
			}
			if !c.consume(n, time.Now()) {
				if err = rd.err; err == nil {
					err = errGoingAway
				}
				break
			}
			if err != nil {
				break
			}
			c.setReadDeadline(false)
		}
	}
	c.readEnded(err)
}

// onReadable is the read callback of the connection's raw socket. It reads,
// frames and posts until a read leaves the socket drained (it returned
// less than it could have) with no partial request, then returns false, and
// the netpoller parks the goroutine until more arrives and calls it again.
// Calling net.Conn.Read instead would read once more, get EAGAIN and only
// then park: a second syscall for every request of a client that waits for
// its answers. Staying inside one raw read matters: a raw read that starts
// anew forgets the readiness the netpoller saw meanwhile, so its first call
// must read.
//
// One exception: a reader that spent more than rereadAfterBusy on the
// batch it read, running the node itself, and whose answer left meanwhile,
// reads again. Its client, waiting for that answer, has most likely sent
// the next request already, and finding it saves the goroutine a park and
// a wake-up. Measured with one client of durable SETs (five interleaved
// runs on the noisy 2-core VM), this read found a request 70–95% of the
// time, and server CPU per op was about 13% lower (medians 117 against
// 135 µs). Under load the reader posts and goes back to reading at once,
// and the rule does not apply (GET with 50 clients: unchanged).
//
// A drained read can miss one thing: a client's end of stream (or a reset)
// that came with its last data, in the same readiness event, is seen only
// by another read, and no later event will come for it. A client that half-
// closes after its requests waits for the server to close, so the reader
// looks again: at once when a request is partial (only the end of stream
// can end it), and otherwise after eofProbeDelay of quiet, the first wait's
// deadline, which a client that keeps sending never meets.
//
// It returns true, ending the raw read, on the socket's error or EOF, or
// when the connection goes away (rd.err says which). Nothing it waits for
// waits for the socket to close (the writer signals dead before it closes
// the socket), since a close waits for this read to end.
func (c *conn) onReadable(fd uintptr) bool {
	rd := &c.rd
	for {
		space := rd.buf[rd.end:]
		n, err := syscall.Read(int(fd), space)
		c.reads.Add(1)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			rd.err = os.NewSyscallError("read", err)
			return true
		case n == 0:
			rd.err = io.EOF
			return true
		}
		drained := n < len(space)
		writes, readAt := c.writes.Load(), monoNow()
		if !c.consume(n, time.Now()) {
			if rd.err == nil {
				rd.err = errGoingAway
			}
			return true
		}
		// A reader that ran the node itself for a while (a lone durable
		// write: its fsync) and sent the answer meanwhile reads again: the
		// client has most likely sent its next request by then.
		busy := c.writes.Load() != writes && monoNow()-readAt > rereadAfterBusy
		park := drained && !c.partial() && !busy
		c.setReadDeadline(park)
		if park {
			return false
		}
	}
}

// consume frames the n bytes just read into the buffer, commits what it
// framed and makes room in the buffer for the next read. now is the time
// of the read, or a little earlier (an event loop's pass: a clock read
// per connection's read was 0.5% of the samples at GET c50). It reports false
// when reading ends: the connection is going away, or (rd.err) closes once
// its replies are out.
func (c *conn) consume(n int, now time.Time) bool {
	rd := &c.rd
	rd.end += n
	if c.proto == protoUnknown {
		c.sniff()
	}
	if c.proto == protoHTTP {
		return c.closeAfter(c.h.httpRefused())
	}
	var ok bool
	if c.proto == protoRESP {
		ok = c.frameRESP()
	} else {
		// JSON, or not known yet: then the first line is incomplete,
		// and the buffer is managed as for a JSON line.
		ok = c.frameJSON()
	}
	if !ok {
		return false
	}
	if now.Before(rd.roomAt) {
		now = rd.roomAt // the reader waited for room since the read
	}
	if c.ls.paused {
		// Waiting on the in-flight limit is the server's doing: no
		// deadline runs (see setReadDeadline).
		rd.waitingSince = time.Time{}
	} else if !c.partial() {
		rd.idleSince = now
	} else if rd.waitingSince.IsZero() {
		rd.waitingSince = now
	}
	return c.commit()
}

// sniff tells the connection's protocol from its first bytes: an array
// ("*") is RESP; a first line whose first word names a RESP command is
// RESP inline (typed into telnet); anything else is JSON, so that every
// JSON line, malformed ones included, is answered as before. It leaves the
// protocol unknown while the first line is incomplete.
func (c *conn) sniff() {
	rd := &c.rd
	b := rd.buf[rd.start:rd.end]
	if len(b) == 0 {
		return
	}
	if b[0] == '*' {
		c.startRESP()
		return
	}
	// rd.scanned: a long first line is not scanned again at every read.
	i := bytes.IndexByte(rd.buf[rd.scanned:rd.end], '\n')
	if i < 0 {
		rd.scanned = rd.end
		if len(b) > c.h.cfg.RequestBytesMax {
			c.proto = protoJSON // over-long: JSON's too_large, as before
		}
		return
	}
	i += rd.scanned - rd.start
	if looksHTTP(b[:i]) {
		c.proto = protoHTTP
		return
	}
	line := bytes.TrimLeft(b[:i], " \t")
	if j := bytes.IndexAny(line, " \t\r"); j >= 0 {
		line = line[:j]
	}
	if isRESPCommand(line) {
		c.startRESP()
		return
	}
	c.proto = protoJSON
}

// looksHTTP reports whether line, a connection's first, is an HTTP
// request line ("POST / HTTP/1.1"). A web page can make a browser send
// such a request to any port, a server's on 127.0.0.1 too (a form, or
// fetch with mode no-cors and a text/plain body), and its body's lines
// would run as requests, its header lines merely refused: any page a user
// of the machine visits could write and delete keys. So the connection is
// refused whole, before any of its lines runs, as Redis refuses one that
// sends POST or Host:. A method, a target and a version are asked for,
// each as HTTP spells them: "SET k HTTP/1.1" is a RESP command.
// (The line is cut at its spaces by hand: a hostile first line of millions
// of words is not split into as many slices.)
func looksHTTP(line []byte) bool {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	method, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return false
	}
	switch string(method) {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
	default:
		return false
	}
	target, v, ok := bytes.Cut(rest, []byte{' '})
	return ok && len(target) > 0 && bytes.IndexByte(v, ' ') < 0 &&
		len(v) > 5 && string(v[:5]) == "HTTP/" && v[5] >= '0' && v[5] <= '9'
}

// httpRefusal is the answer to an HTTP request (looksHTTP), in HTTP, so
// that a person who points curl or a browser at the port reads why.
const httpRefusal = "dkv: this port speaks dkv's protocol (JSON lines, and RESP for Redis clients), not HTTP; nothing of this request ran (docs/PROTOCOL.md)\n"

// httpRefused is the slot of the answer to an HTTP request, after which
// the connection closes.
func (h *Host) httpRefused() *slot {
	if h.metrics != nil {
		h.metrics.Refused(core.CodeBadRequest)
	}
	return &slot{filled: true, kind: respRaw, raw: []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
		strconv.Itoa(len(httpRefusal)) + "\r\nConnection: close\r\n\r\n" + httpRefusal)}
}

func (c *conn) startRESP() {
	c.proto = protoRESP
	c.resp.dec = newRESPDecoder(c.requestBytesMax(), respArgsMax(c.h.cfg.BulkEntriesMax))
	c.resp.id = c.h.connIDs.Add(1)
}

// frameRESP frames the RESP commands in the buffer and adds their slots,
// then makes room for the next read. A protocol error is answered and ends
// reading, as QUIT does: the connection closes once its replies are out.
func (c *conn) frameRESP() bool {
	rd := &c.rd
	dec := c.resp.dec
	for rd.start < rd.end {
		if r := c.haveRoom(); r != roomYes {
			return r == roomPaused // the rest waits in the buffer
		}
		dec.setCommandBytesMax(c.requestBytesMax(), c.authRequired())
		size, argv, err := dec.next(rd.buf[rd.start:rd.end])
		if err != nil {
			return c.closeAfter(c.h.respRefused(err))
		}
		if size == 0 {
			break
		}
		rd.start += size
		rd.waitingSince = time.Time{}
		if len(argv) == 0 {
			continue // an empty command: Redis skips it unanswered
		}
		rd.frameBytes = size
		s, quit := c.respCommand(argv)
		if quit {
			return c.closeAfter(s)
		}
		if !c.add(s) {
			return false
		}
	}
	switch {
	case rd.start == rd.end:
		rd.start, rd.end = 0, 0
		if len(rd.buf) > readBufBytes {
			rd.buf = make([]byte, readBufBytes)
		}
	case rd.end == len(rd.buf) && rd.start > 0:
		rd.end = copy(rd.buf, rd.buf[rd.start:rd.end])
		rd.start = 0
	case rd.end == len(rd.buf):
		// One command fills the buffer: grow it. The decoder refuses a
		// command over the limit before its bytes are waited for, so
		// this stops at the limit and a little framing.
		bufMax := c.requestBytesMax() + respHeaderBytesMax
		if len(rd.buf) >= bufMax {
			return c.closeAfter(c.h.respRefused(respProtocolError("too big request")))
		}
		grown := make([]byte, min(2*len(rd.buf), bufMax))
		copy(grown, rd.buf[:rd.end])
		rd.buf = grown
	}
	return true
}

// closeAfter adds s, the connection's last reply, and ends reading.
func (c *conn) closeAfter(s *slot) bool {
	if c.add(s) && c.commit() {
		c.rd.err = errCloseAfterReply
	}
	return false
}

// frameJSON frames the JSON lines in the buffer and adds their slots, then
// makes room for the next read.
func (c *conn) frameJSON() bool {
	rd := &c.rd
	lineMax := c.requestBytesMax()
	for c.proto == protoJSON {
		i := bytes.IndexByte(rd.buf[rd.scanned:rd.end], '\n')
		if i < 0 {
			rd.scanned = rd.end
			break
		}
		if !rd.discarding {
			if r := c.haveRoom(); r != roomYes {
				return r == roomPaused // the rest waits in the buffer
			}
		}
		lineEnd := rd.scanned + i
		rd.waitingSince = time.Time{}
		switch {
		case rd.discarding:
			rd.discarding = false
		case lineEnd-rd.start > lineMax:
			if !c.add(c.h.refusedLine(c.tooLarge(lineMax))) {
				return false
			}
		default:
			rd.frameBytes = lineEnd + 1 - rd.start
			if !c.handleLine(rd.buf[rd.start:lineEnd]) {
				return false
			}
		}
		rd.start = lineEnd + 1
		rd.scanned = rd.start
		lineMax = c.requestBytesMax() // raised once an auth succeeds
	}

	switch {
	case rd.discarding || rd.start == rd.end:
		rd.start, rd.end, rd.scanned = 0, 0, 0
		if len(rd.buf) > readBufBytes {
			rd.buf = make([]byte, readBufBytes)
		}
	case rd.end-rd.start > lineMax:
		// Answer now rather than after the newline: the client may be
		// waiting for a response before it sends more.
		if r := c.haveRoom(); r != roomYes {
			return r == roomPaused
		}
		if !c.add(c.h.refusedLine(c.tooLarge(lineMax))) {
			return false
		}
		rd.discarding = true
		rd.start, rd.end, rd.scanned = 0, 0, 0
	case rd.end == len(rd.buf) && rd.start > 0:
		n := copy(rd.buf, rd.buf[rd.start:rd.end])
		rd.scanned -= rd.start
		rd.start, rd.end = 0, n
	case rd.end == len(rd.buf):
		// One line fills the buffer: grow it, but only to one byte past
		// the limit, enough to see it is over.
		grown := make([]byte, min(2*len(rd.buf), lineMax+1))
		copy(grown, rd.buf[:rd.end])
		rd.buf = grown
	}
	return true
}

// partial reports whether the reader holds part of a request.
func (c *conn) partial() bool { return c.rd.discarding || c.rd.end > c.rd.start }

// setReadDeadline bounds the wait for the next read: the line timeout from
// when the current partial line first waited, or the idle timeout from the
// last data, or with probe the end-of-stream probe's delay (onReadable).
func (c *conn) setReadDeadline(probe bool) {
	rd := &c.rd
	var deadline time.Time
	switch {
	case c.partial():
		deadline = rd.waitingSince.Add(c.h.cfg.LineTimeout)
		probe = false
	case probe && eofProbeDelay < c.h.cfg.IdleTimeout:
		deadline = rd.idleSince.Add(eofProbeDelay)
	default:
		deadline = rd.idleSince.Add(c.h.cfg.IdleTimeout)
		probe = false
	}
	rd.probing = probe
	c.nc.SetReadDeadline(c.authDeadline(deadline))
}

// readEnded answers what the end of reading leaves owed: a timeout for a
// stalled partial line, or the last request of a client that closed its
// side after it without a newline.
func (c *conn) readEnded(err error) {
	rd := &c.rd
	var ne net.Error
	switch {
	case errors.Is(err, errGoingAway), errors.Is(err, errCloseAfterReply):
		return
	case errors.As(err, &ne) && ne.Timeout() && c.authExpired():
		return // closed without a word, as an idle connection is
	case errors.As(err, &ne) && ne.Timeout() && c.partial():
		resp := core.ErrorResponse(core.CodeTimeout,
			"request line incomplete after %v; closing the connection", c.h.cfg.LineTimeout)
		if c.proto == protoRESP {
			resp.Error.Message = fmt.Sprintf("command incomplete after %v; closing the connection", c.h.cfg.LineTimeout)
			c.push(c.h.respRefused(resp.Error))
		} else {
			c.push(c.h.refusedLine(resp))
		}
	case errors.Is(err, io.EOF) && c.proto != protoRESP && !rd.discarding && rd.end > rd.start:
		// A last request without its newline: the client closed its
		// side after sending it, and still waits for the reply.
		rd.frameBytes = rd.end - rd.start
		if c.handleLine(rd.buf[rd.start:rd.end]) {
			c.commit()
		}
	}
}

func tooLarge(lineMax int) core.Response {
	return core.ErrorResponse(core.CodeTooLarge,
		"request line is longer than %d bytes; it was skipped up to its newline", lineMax)
}

// tooLarge answers c's line over lineMax, saying when the bound is the one
// before authentication.
func (c *conn) tooLarge(lineMax int) core.Response {
	if c.authRequired() && lineMax < c.h.cfg.RequestBytesMax {
		return core.ErrorResponse(core.CodeTooLarge,
			"request line is longer than %d bytes, the bound before a connection authenticates; it was skipped up to its newline: send auth first", lineMax)
	}
	return tooLarge(lineMax)
}

// handleLine decodes one line and adds it to the batch. It reports false
// when the connection is going away. Decoding happens here, on the
// connection's goroutine, so the loop spends its time on the node only.
func (c *conn) handleLine(line []byte) bool {
	// Tolerate CRLF, so that telnet and hand-typed requests work.
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		return c.add(c.h.refusedLine(core.ErrorResponse(core.CodeBadRequest,
			"empty line; send one JSON request object per line")))
	}
	// The decoded request copies what it keeps from line, which the
	// reader's buffer will overwrite. The node's bulk-entries limit is
	// applied as the line is decoded, so that a line of millions of keys
	// is refused at the first one past it, not once all are allocated.
	s := c.newSlot()
	req, bad := core.Codec{BulkEntriesMax: c.h.cfg.BulkEntriesMax}.DecodeRequestInto(line, &s.buf)
	if bad != nil {
		return c.add(c.h.refusedLine(*bad))
	}
	if req.Op == core.OpAuth || c.authRequired() {
		if s, closing := c.jsonAuth(req); s != nil {
			if closing {
				return c.closeAfter(s)
			}
			return c.add(s)
		}
	}
	return c.add(c.requestSlot(s, req))
}

// requestSlot makes s, new, the slot of req, decoded, for the node.
func (c *conn) requestSlot(s *slot, req *core.Request) *slot {
	if prepare := c.h.prepare; prepare != nil {
		prepare(req)
	}
	c.rd.frameBytes += replyBytesAhead(req, c.h.cfg.BulkEntriesMax)
	s.c, s.req = c, req
	if c.h.metrics != nil {
		s.decoded = monoNow()
	}
	return s
}

// replyBytesAhead is what the reply to req may hold beyond the bytes of its
// request, counted against the connection's bytes owed (inflightBytesMax)
// as its frame is: a scan page holds an entry for each of its keys, up to
// bulkEntriesMax of them (the strings are the store's), however short the
// request. Unread, 1000 pages of 10,000 keys held 630 MB (found by
// review). Other replies hold about what their requests name (a bulk_get
// a value per key) or little.
func replyBytesAhead(req *core.Request, bulkEntriesMax int) int {
	if req.Op != core.OpScan {
		return 0
	}
	n := req.Limit
	if n == 0 {
		n = core.ScanLimitDefault
	}
	return int(min(n, uint64(bulkEntriesMax))) * scanEntryBytes
}

// scanEntryBytes is what a scan page's entry holds in its reply: its
// item (a key's and a value's string headers, a deadline) and its share of
// the page's slices, 45 bytes measured (TestUnreadScanPagesAreNotAllHeld).
const scanEntryBytes = 48

// newSlot returns a slot for the reader: a free one (see conn.free), or a
// new one.
func (c *conn) newSlot() *slot {
	rd := &c.rd
	if len(rd.spare) == 0 {
		c.mu.Lock()
		rd.spare, c.free = c.free, rd.spare[:0]
		c.mu.Unlock()
	}
	n := len(rd.spare)
	if n == 0 {
		return new(slot)
	}
	s := rd.spare[n-1]
	rd.spare[n-1] = nil
	rd.spare = rd.spare[:n-1]
	return s
}

// recycle takes back slots whose replies are encoded for sending: nothing
// reads them any more but a reply made twice, which fill refuses by the
// slot's new gen. Slots past freeSlotsMax are left to the collector.
func (c *conn) recycle(batch []*slot) {
	c.mu.Lock()
	for _, s := range batch {
		if len(c.free) >= freeSlotsMax {
			break
		}
		*s = slot{gen: s.gen + 1}
		c.free = append(c.free, s)
	}
	c.mu.Unlock()
}

// freeSlotsMax bounds a connection's free slots: as many as a pipelining
// client's batch of 16 several times over, a few tens of KiB at most.
const freeSlotsMax = 64

// write sends responses in request order, flushing whenever the next one is
// not ready yet, and closes the connection when the reader is done and every
// owed response has gone out, or when writing fails.
func (c *conn) write() {
	defer c.h.wg.Done()
	defer c.h.forget(c)
	defer func() {
		// dead first: a reader waiting for room must stop waiting
		// before the close, which waits for the reader's raw read.
		c.ending.Store(true)
		close(c.dead)
		if c.readerDone {
			lingerClose(c.nc)
		} else {
			closeNow(c.nc)
		}
	}()
	bw := bufio.NewWriterSize(chunkWriter{c}, writeBufBytes)
	var line []byte
	var batch []*slot
	for {
		c.wmu.Lock()
		ok, gone := c.sendReady(bw, &line, &batch)
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
			// c.stop is closed: writeTimeout is the short one now.
			c.wmu.Lock()
			c.sendReady(bw, &line, &batch)
			c.wmu.Unlock()
			return
		}
	}
}

// sendReady sends what the loop left pending, then the ready responses at
// the head of the queue until none is ready, and flushes, all through
// chunkWriter (bw writes to one). It is called with wmu held. It reports
// whether writing worked, and whether the reader is gone with nothing
// more owed.
func (c *conn) sendReady(bw *bufio.Writer, line *[]byte, batch *[]*slot) (ok, gone bool) {
	if len(c.pending) > 0 {
		if _, err := (chunkWriter{c}).Write(c.pending); err != nil {
			return false, false
		}
		c.pending = keepSendBuf(c.pending)
	}
	// Replies are taken all at once here, but encoded one at a time
	// through bw, whose writes block: no more than one is held encoded.
	defer func() { *line = keepSendBuf(*line) }()
	for {
		*batch, gone = c.takeReady((*batch)[:0])
		if len(*batch) == 0 {
			break
		}
		for _, s := range *batch {
			*line = c.appendReply((*line)[:0], s)
			if _, err := bw.Write(*line); err != nil {
				return false, false
			}
		}
		c.recycle(*batch)
		clear(*batch)
	}
	return bw.Flush() == nil, gone
}

// takeReady moves the filled slots at the head of the queue into batch,
// which makes room for the reader. gone reports that the reader has
// stopped and nothing at all is owed.
func (c *conn) takeReady(batch []*slot) (_ []*slot, gone bool) {
	return c.takeReadyMax(batch, -1)
}

// takeReadyMax is takeReady of at most max slots (max < 0: no limit).
func (c *conn) takeReadyMax(batch []*slot, max int) (_ []*slot, gone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(c.queue) && c.queue[n].filled && n != max {
		n++
	}
	for _, s := range c.queue[:n] {
		c.queuedBytes -= s.held
	}
	batch = append(batch, c.queue[:n]...)
	c.queue = dropFront(c.queue, n)
	if c.queuedBytes < 0 || (len(c.queue) == 0 && c.queuedBytes != 0) {
		// A count that drifted would pause the reader for good (or
		// never): every queued slot's bytes are counted once.
		panic(fmt.Sprintf("realnet: %d bytes owed with %d replies queued", c.queuedBytes, len(c.queue)))
	}
	if c.roomWait && n > 0 {
		c.roomWait = false
		if c.lp != nil {
			defer c.lp.kick(c) // after mu: the loop resumes the reader
			return batch, c.readerGone && len(c.queue) == 0
		}
		select {
		case c.room <- struct{}{}:
		default:
		}
	}
	return batch, c.readerGone && len(c.queue) == 0
}

// chunkWriter is how a connection's writer goroutine writes (on the
// goroutine host: every TLS connection, --event-loops 0, systems without
// event loops): in chunks of at most writeChunkBytes, each under a deadline
// of its own, so that a write fails only when the client has taken nothing
// of a chunk for WriteTimeout (or the shutdown's short wait), as an event
// loop restarts its deadline on every progress (eloop.flush). One deadline
// over all the replies owed, which may be many MB, closed a client that
// was reading them, only slowly. A write of a chunk or less is one
// deadline and one write, as before.
type chunkWriter struct{ c *conn }

func (w chunkWriter) Write(b []byte) (int, error) {
	c := w.c
	n := 0
	for n < len(b) {
		c.restartWriteDeadline()
		c.writes.Add(1)
		m, err := c.nc.Write(b[n:min(len(b), n+writeChunkBytes)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// restartWriteDeadline gives the next write writeTimeout from now. A
// shutdown (which closes c.stop, then sets the short deadline itself to
// end a blocked write) may come between the choice of the timeout and its
// setting, and the long deadline set after its short one would hold the
// server's exit for WriteTimeout: the timeout is chosen again after.
func (c *conn) restartWriteDeadline() {
	timeout := c.writeTimeout()
	c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if timeout != shutdownWriteTimeout && c.writeTimeout() == shutdownWriteTimeout {
		c.nc.SetWriteDeadline(time.Now().Add(shutdownWriteTimeout))
	}
}
