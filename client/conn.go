package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"dkv/core"
)

// call is one request on its way through a conn.
type call struct {
	id   []byte // the id we sent, to check the server's echo
	line []byte // the encoded request, newline included
	// began is when the caller started the operation, before any dial.
	began time.Time

	// Under conn.mu:
	sentAt    time.Duration // when the call joined pending, since conn.start
	take      uint64        // the conn's takes when its line joined out
	res       *result       // set once: its response, or why the conn broke
	abandoned bool          // its caller gave up; the response is dropped

	// wake has room for one token, meaning "look again": a result has
	// arrived, or the read role may be free for this call to take.
	wake chan struct{}
}

type result struct {
	resp *core.Response
	err  error
	// unsent: the conn broke with the call's line still in out, never
	// handed to the socket, so the server surely never saw it.
	unsent bool
}

func (cl *call) signal() {
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// conn is one pipelined connection with no goroutines of its own: callers
// write and read the socket themselves. Every hand-off between goroutines
// costs a wake-up, tens of microseconds on a busy VM, and a lone caller
// doing its own write and read pays none.
//
// Writes are combined: a caller appends its line to out and, unless another
// caller is already writing, writes out itself until it is empty, so a
// burst of concurrent calls shares few writes. Reads have one holder at a
// time, the read role: the first waiting caller takes it and reads
// responses, handing each to its call in pending (FIFO, the server answers
// in order), until its own arrives; then it passes the role to the next
// caller still waiting. Once broken a conn stays broken: the client
// replaces it with a new one.
type conn struct {
	nc  net.Conn
	raw syscall.RawConn // nil where the conn has no file descriptor
	// peekRaw is a TLS conn's TCP connection, for idleError's look only.
	peekRaw syscall.RawConn
	addr    string
	opts    *options
	start   time.Time

	// slots holds one token per call from before it is written until its
	// response is read (or the conn breaks), so at most inFlightMax calls
	// are outstanding.
	slots chan struct{}
	done  chan struct{} // closed by fail

	mu      sync.Mutex
	pending []*call // written or being written, unanswered, in send order
	out     []byte  // lines of pending calls not yet written
	spare   []byte  // the other write buffer, swapped with out
	// takes counts the takes of out to be written: a call whose line
	// joined out after the last take has not been handed to the socket.
	takes   uint64
	writing bool  // a caller is writing out, and will until it is empty
	reading bool  // a caller holds the read role
	err     error // why the conn broke; set once
	// peekBuf is where idleError looks at unsolicited bytes: a refusal
	// such as too_many_connections fits easily.
	peekBuf [512]byte

	// The reader's state, used only by the holder of the read role. A
	// line cut by a deadline stays in part for the next holder.
	br           *bufio.Reader
	part         []byte
	partTooLarge bool

	// lastResponseAt is when the last response line arrived, as a duration
	// since start (monotonic).
	lastResponseAt atomic.Int64
}

// writeBufBytesMax is the largest write buffer kept between bursts; a
// bigger one (a burst of large BulkSets) is dropped once written.
const writeBufBytesMax = 1 << 20

func newConn(nc net.Conn, addr string, opts *options) *conn {
	cn := &conn{
		nc:    nc,
		addr:  addr,
		opts:  opts,
		start: time.Now(),
		slots: make(chan struct{}, opts.inFlightMax),
		done:  make(chan struct{}),
		br:    bufio.NewReaderSize(nc, 64<<10),
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			cn.raw = raw
		}
	}
	if tc, ok := nc.(*tls.Conn); ok {
		// The TCP connection under TLS, to look at and never to write
		// to: what is written must go through TLS.
		if sc, ok := tc.NetConn().(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				cn.peekRaw = raw
			}
		}
	}
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

// fail breaks the connection: every pending call gets err. Only the first
// failure counts.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	cn.failLocked(err)
	cn.mu.Unlock()
}

func (cn *conn) failLocked(err error) {
	if cn.err != nil {
		return
	}
	cn.err = err
	for _, cl := range cn.pending {
		cl.res = &result{err: err, unsent: cl.take == cn.takes}
		cl.signal()
	}
	cn.pending = nil
	cn.out = nil
	close(cn.done)
	// Closing unblocks a caller in a read or a write on the socket. A TLS
	// connection's TCP connection is closed under it: TLS's closing
	// alert would wait up to 5 s for a server that does not read.
	if tc, ok := cn.nc.(*tls.Conn); ok {
		tc.NetConn().Close()
	} else {
		cn.nc.Close()
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
	// A select with a free slot and an ended context picks either: a
	// call whose context has ended must not be sent (found by review:
	// half of the writes given an ended context went out, and applied).
	if err := ctx.Err(); err != nil {
		<-cn.slots
		return nil, false, err
	}
	cn.mu.Lock()
	if cn.err == nil && len(cn.pending) == 0 {
		// Nobody has read this socket since the last response: find out
		// now, before writing, whether the server has hung up on it.
		if err := cn.idleError(); err != nil {
			cn.failLocked(cn.lost(err))
		}
	}
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		<-cn.slots
		return nil, false, err
	}
	cl.sentAt = cn.since()
	cl.take = cn.takes
	cn.pending = append(cn.pending, cl)
	cn.out = append(cn.out, cl.line...)
	if !cn.writing {
		cn.writing = true
		cn.flushLocked()
	}
	return cn.await(ctx, cl)
}

// flushLocked writes out until it is empty, releasing mu for each write so
// that other callers can queue their lines for the next one. It is called
// with mu held and writing set, and returns the same way, with writing clear
// unless a goroutine has taken the rest over.
//
// The caller never waits on the socket here. If the socket will not take
// everything at once, the server is slow to read, or is itself waiting for
// us to read its responses; so a goroutine finishes the write while the
// caller goes on to read. Waiting here could deadlock both sides.
func (cn *conn) flushLocked() {
	for len(cn.out) > 0 && cn.err == nil {
		buf := cn.takeOutLocked()
		cn.mu.Unlock()
		n, err := tryWrite(cn.raw, buf)
		if err == nil && n < len(buf) {
			go cn.writeRest(buf, n)
			cn.mu.Lock()
			return
		}
		cn.mu.Lock()
		cn.wroteLocked(buf, err)
	}
	cn.writing = false
}

// writeRest finishes the write of buf from n, then flushes out until it is
// empty, waiting on the socket as long as it must. A write that does not
// finish within the request timeout breaks the conn: part of a line may
// have gone out, and nothing can be sent after it.
func (cn *conn) writeRest(buf []byte, n int) {
	cn.nc.SetWriteDeadline(time.Now().Add(cn.opts.requestTimeout))
	_, err := cn.nc.Write(buf[n:])
	cn.mu.Lock()
	cn.wroteLocked(buf, err)
	for len(cn.out) > 0 && cn.err == nil {
		buf := cn.takeOutLocked()
		cn.mu.Unlock()
		cn.nc.SetWriteDeadline(time.Now().Add(cn.opts.requestTimeout))
		_, err := cn.nc.Write(buf)
		cn.mu.Lock()
		cn.wroteLocked(buf, err)
	}
	// tryWrite goes through the same deadline: clear it, or the next
	// write after it passes would fail without trying.
	cn.nc.SetWriteDeadline(time.Time{})
	cn.writing = false
	cn.mu.Unlock()
}

// takeOutLocked returns the lines to write and swaps in the spare buffer.
func (cn *conn) takeOutLocked() []byte {
	cn.takes++
	buf := cn.out
	cn.out = cn.spare[:0]
	cn.spare = nil
	return buf
}

// wroteLocked keeps buf, written, as the spare, and breaks the conn if the
// write failed.
func (cn *conn) wroteLocked(buf []byte, err error) {
	if cap(buf) <= writeBufBytesMax {
		cn.spare = buf[:0]
	}
	if err != nil {
		cn.failLocked(cn.lost(err))
	}
}

// await waits, with mu held, for cl's result, taking the read role whenever
// it is free. It returns with mu released.
func (cn *conn) await(ctx context.Context, cl *call) (*core.Response, bool, error) {
	for {
		if cl.res != nil {
			r := cl.res
			cn.mu.Unlock()
			return r.resp, !r.unsent, r.err
		}
		if !cn.reading {
			cn.reading = true
			cn.mu.Unlock()
			cn.read(ctx, cl)
			cn.mu.Lock()
			if cl.res == nil && ctx.Err() != nil {
				return cn.abandonLocked(ctx, cl)
			}
			continue
		}
		cn.mu.Unlock()
		select {
		case <-cl.wake:
		case <-ctx.Done():
		}
		cn.mu.Lock()
		if cl.res == nil && ctx.Err() != nil {
			return cn.abandonLocked(ctx, cl)
		}
	}
}

// abandonLocked gives up on cl, whose context ended before its response
// arrived; the response will be read and dropped when it comes. It returns
// with mu released.
func (cn *conn) abandonLocked(ctx context.Context, cl *call) (*core.Response, bool, error) {
	cl.abandoned = true
	if !cn.reading {
		// cl may have been woken to take the read role: pass it on.
		cn.passReadLocked()
	}
	// The oldest request unanswered, which cl may be.
	oldestSentAt := cl.sentAt
	if len(cn.pending) > 0 {
		oldestSentAt = cn.pending[0].sentAt
	}
	cn.mu.Unlock()
	cn.checkStall(cl, oldestSentAt)
	return nil, true, ctx.Err()
}

// passReadLocked hands the free read role to the oldest caller still
// waiting. If every pending call was abandoned, a goroutine drains their
// responses: left unread, they would fill the socket and hold the slots,
// and the next caller could wait for either forever.
func (cn *conn) passReadLocked() {
	for _, cl := range cn.pending {
		if !cl.abandoned {
			cl.signal()
			return
		}
	}
	if len(cn.pending) > 0 && cn.err == nil {
		cn.reading = true
		go cn.read(context.Background(), nil)
	}
}

// read holds the read role: it reads responses and hands each to its call.
// A caller (cl not nil) reads until cl has its own, the conn breaks, or ctx
// ends; the drainer (cl nil) reads until nothing is pending, and breaks the
// conn if the server is silent for a request timeout meanwhile. Either way
// it gives the role up before it returns.
func (cn *conn) read(ctx context.Context, cl *call) {
	var deadline time.Time
	if cl != nil {
		deadline, _ = ctx.Deadline()
		// A cancel without a deadline must interrupt the read too. The
		// interruption may land after this read is over: a reader that
		// times out before its own deadline, with its context alive,
		// just reads on.
		stop := context.AfterFunc(ctx, func() { cn.nc.SetReadDeadline(time.Now()) })
		defer stop()
	} else {
		deadline = time.Now().Add(cn.opts.requestTimeout)
	}
	cn.nc.SetReadDeadline(deadline)
	for {
		line, tooLarge, err := cn.readLine()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !cn.broken() {
				if ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
					cn.nc.SetReadDeadline(deadline)
					continue
				}
				if cl != nil {
					// The deadline passed: the context is done or about
					// to be, and the caller abandons cl.
					<-ctx.Done()
					cn.mu.Lock()
					cn.reading = false
					cn.passReadLocked()
					cn.mu.Unlock()
					return
				}
				err = fmt.Errorf("no response for %v with requests outstanding", cn.opts.requestTimeout)
			}
			cn.mu.Lock()
			if cn.lastResponseAt.Load() == 0 && refusedCertificate(err) {
				// With TLS 1.3 a server checks the client's certificate
				// after the client's handshake is over, and says no in
				// place of the first answer: it read nothing, so the
				// requests fail as never sent (not a connError).
				cn.failLocked(fmt.Errorf("%w: %s refused the client's certificate: %w", ErrTLS, cn.addr, err))
			} else {
				cn.failLocked(cn.lost(err))
			}
			cn.reading = false
			cn.mu.Unlock()
			return
		}
		cn.lastResponseAt.Store(int64(cn.since()))
		cn.mu.Lock()
		if cn.err != nil {
			cn.reading = false
			cn.mu.Unlock()
			return
		}
		if len(cn.pending) == 0 {
			// Fail under the same lock that saw nothing pending, so that
			// no call can be sent on this conn in between.
			cn.failLocked(cn.lost(unsolicited(line, tooLarge)))
			cn.reading = false
			cn.mu.Unlock()
			return
		}
		head := cn.pending[0]
		cn.pending[0] = nil
		cn.pending = cn.pending[1:]
		cn.mu.Unlock()
		<-cn.slots

		r := cn.decode(head, line, tooLarge)
		cn.mu.Lock()
		head.res = &r
		if head != cl {
			head.signal()
		}
		if head == cl || (cl == nil && len(cn.pending) == 0) {
			cn.reading = false
			cn.passReadLocked()
			cn.mu.Unlock()
			return
		}
		cn.mu.Unlock()
		if cl == nil {
			deadline = time.Now().Add(cn.opts.requestTimeout)
			cn.nc.SetReadDeadline(deadline)
		}
	}
}

// decode turns the response line of head into its result. A response that
// does not fit the protocol breaks the conn, before head learns of it, so
// that a retry cannot land on this conn again.
func (cn *conn) decode(head *call, line []byte, tooLarge bool) result {
	if tooLarge {
		// The line was skipped whole, so the stream stays in step.
		return result{err: fmt.Errorf("%w: over %d bytes", ErrResponseTooLarge, cn.opts.responseBytesMax)}
	}
	resp, err := core.DecodeResponse(line)
	if err == nil {
		err = checkEcho(head.id, resp)
	} else {
		err = fmt.Errorf("%w: undecodable response: %v", ErrProtocol, err)
	}
	if err != nil {
		err = cn.lost(err)
		cn.fail(err)
		return result{err: err}
	}
	return result{resp: resp}
}

// checkStall breaks the connection when a caller gives up on cl and either
// it gave up after at least a request timeout with nothing answered since
// cl was sent, or the connection has answered nothing for a request
// timeout while requests were outstanding (the oldest sent at
// oldestSentAt). Without this, a server that accepts but never answers,
// or a connection lost silently on the way, would eventually hold every
// slot with abandoned calls and the client would never recover. A
// caller's short deadline alone does not count: its impatience says
// nothing about the server; but the server's silence for a request
// timeout does, however impatient the callers that met it (found by
// review: calls one after another, each given up on within the request
// timeout, kept a silent connection in use for as long as they came).
func (cn *conn) checkStall(cl *call, oldestSentAt time.Duration) {
	last := time.Duration(cn.lastResponseAt.Load())
	now := cn.since()
	var silent time.Duration
	switch {
	case time.Since(cl.began) >= cn.opts.requestTimeout && last < cl.sentAt:
		silent = now - cl.sentAt
	case now-max(last, oldestSentAt) >= cn.opts.requestTimeout:
		silent = now - max(last, oldestSentAt)
	default:
		return
	}
	cn.fail(cn.lost(fmt.Errorf("no response for %v with requests outstanding", silent.Round(time.Millisecond))))
}

// idleError looks, without blocking, at what an idle conn (nothing pending)
// has received: nothing, as it should be, or the end of the stream (the
// server closed it, after its idle timeout say), or a line nobody asked for
// (a too_many_connections refusal). Looking before a write keeps a request
// off a conn that is already dead, so that it is known not to have been
// sent. It is called with mu held.
func (cn *conn) idleError() error {
	if cn.br.Buffered() > 0 || len(cn.part) > 0 {
		line, _ := cn.br.Peek(cn.br.Buffered())
		return unsolicitedPrefix(append(cn.part[:len(cn.part):len(cn.part)], line...))
	}
	// The last reader's deadline has likely passed, and a read deadline
	// in the past fails even a look.
	cn.nc.SetReadDeadline(time.Time{})
	if cn.peekRaw != nil {
		return cn.idleTLSError()
	}
	n, err := peekSocket(cn.raw, cn.peekBuf[:])
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A late cancel of an earlier reader set it again: no look this
		// time, and the write goes ahead as it would have without one.
		return nil
	}
	if err != nil || n == 0 {
		return err
	}
	return unsolicitedPrefix(cn.peekBuf[:n])
}

// idleTLSError is idleError for a TLS connection, whose bytes are
// records: nothing, or the end of the stream, says what it says on plain
// TCP; records need TLS to tell a session ticket (which TLS 1.3 servers
// send after the handshake, and which is no answer) from the server's
// closing alert or a line. TLS reads them, waiting a moment for a line:
// a timeout then means that the records held none, and the conn is well.
func (cn *conn) idleTLSError() error {
	n, err := peekSocket(cn.peekRaw, cn.peekBuf[:])
	if err != nil || n == 0 || cn.reading {
		return err
	}
	cn.nc.SetReadDeadline(time.Now().Add(idleTLSLook))
	_, err = cn.br.Peek(1)
	cn.nc.SetReadDeadline(time.Time{})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	case err != nil:
		return err
	}
	line, _ := cn.br.Peek(cn.br.Buffered())
	return unsolicitedPrefix(line)
}

// idleTLSLook is how long an idle TLS conn's records are given to show a
// line: they are in the socket already, so TLS needs no more than to
// decrypt them.
const idleTLSLook = 5 * time.Millisecond

// unsolicitedPrefix explains bytes received with no request outstanding, of
// which the first line may be whole.
func unsolicitedPrefix(data []byte) error {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return unsolicited(data[:i], false)
	}
	return unsolicited(nil, true)
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

// readLine reads the next response line for the holder of the read role.
func (cn *conn) readLine() (line []byte, tooLarge bool, err error) {
	return readLine(cn.br, cn.opts.responseBytesMax, &cn.part, &cn.partTooLarge)
}

// readLine reads one line, newline removed. A line longer than bytesMax is
// consumed whole and reported as tooLarge, so the next read starts on the
// next line. What is read of a line before an error (a deadline, say) is
// kept in part and partTooLarge, and the next call goes on from there.
func readLine(br *bufio.Reader, bytesMax int, part *[]byte, partTooLarge *bool) (line []byte, tooLarge bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if !*partTooLarge {
			// Copy: ReadSlice's bytes are overwritten by the next read,
			// and the response's id may alias them.
			*part = append(*part, frag...)
			if len(*part) > bytesMax+1 {
				*partTooLarge, *part = true, nil
			}
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, false, err
		}
	}
	line, tooLarge = *part, *partTooLarge
	*part, *partTooLarge = nil, false
	if tooLarge {
		return nil, true, nil
	}
	line = line[:len(line)-1]
	if len(line) > bytesMax {
		return nil, true, nil
	}
	return line, false, nil
}
