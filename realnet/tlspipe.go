package realnet

import (
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// tlsPipe is the net.Conn under the tls.Conn of a TLS connection that an
// event loop serves (a client's, or a peer's that this node accepted). The
// loops read and write sockets with system calls of their own, so TLS
// cannot own the socket; it owns a pipe instead:
//
//   - During the handshake, which runs on a goroutine of its own before a
//     loop takes the connection (Host.handshakeForLoop, or the peer's
//     hello in Peers.serveInbound), the pipe is the accepted TCP
//     connection, deadlines and all.
//   - Then the pipe is detached: the loop owns the socket. It puts what it
//     reads from the socket in the pipe (feed) for the tls.Conn to decrypt,
//     and sends what the tls.Conn wrote into it (out).
//
// A peer connection this node dialled has a pipe too, never detached: its
// sender goroutine writes through it to the TCP connection, and Send has
// it capture one frame's records to write them to the socket itself
// without blocking (capturing, peer.sendTLSInline).
//
// A read that finds nothing fed returns errTLSDry, a temporary net.Error:
// tls.Conn keeps no temporary error (it is not sticky, unlike any other),
// and a partial record stays in its buffer for the next read. So a
// tls.Conn is a TLS state machine driven by the loop's buffers, which
// crypto/tls offers as such only for QUIC.
//
// Only the loop goroutine reads (and feeds); writes come from whoever
// holds the connection's wmu, and from the loop's reads, when TLS answers
// a record itself (an alert, a key update): outMu orders them.
type tlsPipe struct {
	net.Conn // the TCP connection; closed once detached
	tc       *tls.Conn

	local, remote net.Addr
	detached      bool

	// in is ciphertext fed and not yet taken by TLS. It points into the
	// loop's read buffer while the loop decrypts (shared), and is moved
	// into own, the pipe's buffer, if TLS leaves some of it (keep).
	in     []byte
	own    []byte
	shared bool
	// end is the socket's end of stream (io.EOF) or failure, which TLS is
	// given once it has taken everything fed before it.
	end error
	// more says that TLS may hold decrypted bytes, or whole records, that
	// the last read had no room for: the loop decrypts again before it
	// reads the socket, which would not tell it.
	more bool
	// ended is how TLS ended the stream (an error, io.EOF after a closing
	// alert) in a read that also returned bytes the in-flight limit left
	// unframed: the loop's next decrypt returns it, once those are framed.
	ended error

	outMu sync.Mutex
	out   []byte // ciphertext TLS wrote, not yet sent
	sent  int64  // bytes of out sent so far, for the write deadline's progress
	// answered counts the bytes TLS wrote by itself, as it read (a key
	// update's answer, an alert), since out was last empty; replies is
	// set while conn.sendLoop encrypts replies, which are not counted.
	// The replies in out are bounded (sendLoop encrypts only into an
	// empty pipe); the answers grow with what the client sends, so the
	// loop stops reading a client that does not take them (held).
	answered int
	replies  bool
	// held: the loop stopped reading because of answered (eloop.readTLS),
	// until the socket has taken them (eloop.flush).
	held bool

	// capturing (a dialer's pipe, never detached): TLS's writes go to out
	// rather than to the TCP connection, for Peers' inline send to write
	// them to the socket itself without blocking (peer.sendTLSInline).
	// What it leaves in out is written ahead of the next write that goes
	// on to the connection, so the records keep their order.
	capturing bool
}

func newTLSPipe(nc net.Conn) *tlsPipe {
	return &tlsPipe{Conn: nc, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
}

// errTLSDry is a detached pipe's read with nothing fed.
var errTLSDry net.Error = tlsDryError{}

type tlsDryError struct{}

func (tlsDryError) Error() string   { return "realnet: no TLS bytes fed yet" }
func (tlsDryError) Timeout() bool   { return true }
func (tlsDryError) Temporary() bool { return true }

// detach hands the socket to the loop: from now on the pipe reads what is
// fed and keeps what is written. The caller closes the TCP connection; for
// a client's connection it holds Host.mu, under which a stop reads
// detached (conn.shutdown). A peer's has no such reader.
func (p *tlsPipe) detach() { p.detached = true }

func (p *tlsPipe) Read(b []byte) (int, error) {
	if !p.detached {
		return p.Conn.Read(b)
	}
	if len(p.in) == 0 {
		if p.end != nil {
			return 0, p.end
		}
		return 0, errTLSDry
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	return n, nil
}

func (p *tlsPipe) Write(b []byte) (int, error) {
	if !p.detached {
		return p.forward(b)
	}
	p.outMu.Lock()
	p.out = append(p.out, b...)
	if !p.replies {
		p.answered += len(b)
	}
	p.outMu.Unlock()
	return len(b), nil
}

// forward is Write before the pipe is detached: to the TCP connection,
// after what a capture left unsent, or into out while capturing.
func (p *tlsPipe) forward(b []byte) (int, error) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if p.capturing {
		p.out = append(p.out, b...)
		return len(b), nil
	}
	if len(p.out) > 0 {
		if _, err := p.Conn.Write(p.out); err != nil {
			return 0, err
		}
		p.out = p.out[:0]
	}
	if len(b) == 0 {
		return 0, nil
	}
	return p.Conn.Write(b)
}

// capture has TLS encrypt b into out (a dialer's pipe), for the caller to
// send (send); it reports false if TLS failed, its connection then done.
func (p *tlsPipe) capture(b []byte) bool {
	p.outMu.Lock()
	p.capturing = true
	p.outMu.Unlock()
	_, err := p.tc.Write(b)
	p.outMu.Lock()
	p.capturing = false
	p.outMu.Unlock()
	return err == nil
}

// flushOut writes to the TCP connection what a capture left unsent, under
// the connection's write deadline (the dialer's sender, before it writes
// nothing else).
func (p *tlsPipe) flushOut() error {
	_, err := p.forward(nil)
	return err
}

// encrypt has TLS encrypt replies into the pipe (conn.sendLoop).
func (p *tlsPipe) encrypt(b []byte) error {
	p.setReplies(true)
	defer p.setReplies(false)
	_, err := p.tc.Write(b)
	return err
}

func (p *tlsPipe) setReplies(on bool) {
	p.outMu.Lock()
	p.replies = on
	p.outMu.Unlock()
}

// answeredLen is how many bytes TLS wrote by itself since the pipe was
// last empty (answered).
func (p *tlsPipe) answeredLen() int {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	return p.answered
}

// Close closes the TCP connection before the pipe is detached; after, the
// loop closes the socket it owns.
func (p *tlsPipe) Close() error {
	if !p.detached {
		return p.Conn.Close()
	}
	return nil
}

// CloseWrite lets lingerClose shut a refused connection's sending side.
func (p *tlsPipe) CloseWrite() error {
	if hc, ok := p.Conn.(interface{ CloseWrite() error }); ok && !p.detached {
		return hc.CloseWrite()
	}
	return nil
}

func (p *tlsPipe) LocalAddr() net.Addr  { return p.local }
func (p *tlsPipe) RemoteAddr() net.Addr { return p.remote }

// The deadlines are the TCP connection's during the handshake; the loop
// keeps its own after (eloop.sweep).
func (p *tlsPipe) SetDeadline(t time.Time) error {
	if !p.detached {
		return p.Conn.SetDeadline(t)
	}
	return nil
}

func (p *tlsPipe) SetReadDeadline(t time.Time) error {
	if !p.detached {
		return p.Conn.SetReadDeadline(t)
	}
	return nil
}

func (p *tlsPipe) SetWriteDeadline(t time.Time) error {
	if !p.detached {
		return p.Conn.SetWriteDeadline(t)
	}
	return nil
}

// feed gives TLS b, read from the socket into a buffer the loop reuses:
// keep must run before the buffer is read into again.
func (p *tlsPipe) feed(b []byte) {
	if len(p.in) != 0 {
		panic("realnet: TLS fed before it took what it was fed before")
	}
	p.in, p.shared = b, true
}

// keep moves what TLS left of the fed bytes into the pipe's own buffer.
func (p *tlsPipe) keep() {
	if !p.shared {
		return
	}
	p.shared = false
	if len(p.in) == 0 {
		p.in = nil
		return
	}
	p.own = append(p.own[:0], p.in...)
	p.in = p.own
}

// pending reports whether TLS has, or may have, bytes to decrypt that no
// socket read will announce.
func (p *tlsPipe) pending() bool { return p.more || len(p.in) > 0 }

// outLen is how many bytes TLS wrote that wait to be sent.
func (p *tlsPipe) outLen() int {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	return len(p.out)
}

// sentBytes is how many bytes of what TLS wrote have been sent.
func (p *tlsPipe) sentBytes() int64 {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	return p.sent
}

// send writes what TLS wrote to the socket through write (the loop's
// non-blocking write), as much as it takes; what it does not take stays
// for the next send. It reports false if the socket failed.
func (p *tlsPipe) send(write func([]byte) (int, bool)) bool {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if len(p.out) == 0 {
		return true
	}
	n, ok := write(p.out)
	p.sent += int64(n)
	p.out = p.out[:copy(p.out, p.out[n:])]
	if len(p.out) == 0 {
		p.answered = 0
		if cap(p.out) > sendBufKeepBytesMax {
			p.out = nil
		}
	}
	return ok
}
