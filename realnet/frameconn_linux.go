package realnet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"dkv/internal/sockfd"
)

// frameConn is a peer's accepted connection whose frames an event loop
// reads (Host.adoptFrames), so that a message from a peer wakes no
// goroutine: the loop's own epoll_wait returns for it, and the message
// runs in the loop's next turn with the client requests that came with
// it. The goroutine that accepted the connection waits in Wait for it to
// end, and Close ends it from any goroutine.
type frameConn struct {
	lp      *eloop
	fd      int
	tls     *tlsPipe // the pipe under a TLS connection's tls.Conn, nil for a plain one
	fr      *frameReader
	deliver func(msg []byte)
	idle    time.Duration // the longest a peer may send nothing (not even a keepalive)
	// done is closed once the loop is done with the connection, err
	// saying why.
	done chan struct{}
	err  error

	closeAsked bool // under lp.mu: Close was called

	// The loop goroutine's own.
	lastRead time.Time
	closed   bool
}

// adoptFrames hands nc, whose hello has been accepted, to the loop that
// runs the node, which reads its frames and delivers each; it returns nil
// (and leaves nc as it is) where there is no such loop (the loops do not
// wait, or there are none, or the host stopped before it started them).
// It waits for the loops to start, as messages wait for the node's
// recovery anyway, and returns nil if stop is closed first. From here on
// the loop owns the connection: nc is closed, its descriptor duplicated.
func (h *Host) adoptFrames(nc net.Conn, frameMax int, idle time.Duration, deliver func(msg []byte), stop <-chan struct{}) (frameStream, error) {
	select {
	case <-h.ready:
	case <-h.loopDone:
		return nil, nil
	case <-stop:
		return nil, nil
	}
	lp := h.postLoop.Load()
	if lp == nil {
		return nil, nil
	}
	// A TLS connection is adopted where its tls.Conn sits on a pipe
	// (Peers.serveInbound): the loop reads the socket and the pipe
	// carries the records to TLS, as for a client's (tlspipe.go).
	var pipe *tlsPipe
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		if pipe, ok = tc.NetConn().(*tlsPipe); !ok {
			return nil, nil
		}
		pipe.tc, raw = tc, pipe.Conn
	}
	fd, err := sockfd.DupNonblock(raw)
	if err != nil || fd < 0 {
		return nil, err
	}
	raw.Close()
	if pipe != nil {
		pipe.detach()
	}
	fc := &frameConn{
		lp:      lp,
		fd:      fd,
		tls:     pipe,
		fr:      newFrameReader(peerReadBufBytes, frameMax),
		deliver: deliver,
		idle:    idle,
		done:    make(chan struct{}),
	}
	lp.mu.Lock()
	if lp.exited {
		lp.mu.Unlock()
		unix.Close(fd)
		fc.err = net.ErrClosed
		close(fc.done)
		return fc, nil
	}
	lp.adoptFrames = append(lp.adoptFrames, fc)
	lp.mu.Unlock()
	lp.notify()
	return fc, nil
}

// Close asks the loop to close the connection; Wait then returns
// net.ErrClosed, unless the connection had already ended otherwise.
func (fc *frameConn) Close() error {
	lp := fc.lp
	lp.mu.Lock()
	if lp.exited || fc.closeAsked {
		lp.mu.Unlock()
		return nil
	}
	fc.closeAsked = true
	lp.closeFrames = append(lp.closeFrames, fc)
	lp.mu.Unlock()
	lp.notify()
	return nil
}

// Wait waits for the connection to end and says why.
func (fc *frameConn) Wait() error {
	<-fc.done
	return fc.err
}

// registerFrames starts reading fc.
func (lp *eloop) registerFrames(fc *frameConn) {
	if old, dup := lp.frames[fc.fd]; dup || lp.connAt(fc.fd) != nil {
		panic(fmt.Sprintf("realnet: descriptor %d registered twice (frames: %v)", fc.fd, old != nil))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fc.fd)}
	if err := unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_ADD, fc.fd, &ev); err != nil {
		unix.Close(fc.fd)
		fc.closed = true
		fc.err = os.NewSyscallError("epoll_ctl", err)
		close(fc.done)
		return
	}
	lp.frames[fc.fd] = fc
	fc.lastRead = time.Now()
	lp.deadline(fc.lastRead.Add(fc.idle))
	if fc.tls != nil {
		// The hello's reads may have taken the first frames' records.
		lp.decryptFrames(fc)
	}
}

// frameReadsPerPassMax bounds the reads of one peer connection in one pass
// of its loop (64 KiB each, peerReadBufBytes). A peer's stream can be far
// more than a pass's worth (a restarted mesh node is sent what it missed,
// tens of MiB): with one read a pass, every 64 KiB of it waited for a turn
// and its inline fsync, and a mesh node's catch-up took 0.5–1.2 s against
// 0.55–0.65 with a reader goroutine that drained the socket meanwhile.
// The socket is level-triggered: what is left is reported again.
const frameReadsPerPassMax = 16

// readFrames reads what fc's socket has, up to frameReadsPerPassMax reads,
// and delivers the frames it completes.
func (lp *eloop) readFrames(fc *frameConn) {
	if fc.tls != nil {
		lp.readFramesTLS(fc)
		return
	}
	for range frameReadsPerPassMax {
		n, again, err := readSocket(fc.fd, fc.fr.space())
		switch {
		case again:
			return
		case err == io.EOF && fc.fr.midFrame():
			lp.endFrames(fc, io.ErrUnexpectedEOF) // a frame cut short
			return
		case err != nil:
			lp.endFrames(fc, err)
			return
		}
		fc.lastRead = time.Now()
		if err := fc.fr.wrote(n, fc.deliver); err != nil {
			lp.endFrames(fc, err)
			return
		}
		lp.deadline(fc.lastRead.Add(fc.idle))
		if n < len(fc.fr.buf)/2 {
			return // the socket had little: most likely all it had
		}
	}
}

// readFramesTLS is readFrames for a TLS connection: each read of the
// socket goes to TLS, and every frame of what TLS decrypts is delivered.
// Nothing pauses a peer's frames, so TLS is left holding no whole record.
func (lp *eloop) readFramesTLS(fc *frameConn) {
	if lp.tlsBuf == nil {
		lp.tlsBuf = make([]byte, readBufBytes)
	}
	for range frameReadsPerPassMax {
		n, again, err := readSocket(fc.fd, lp.tlsBuf)
		switch {
		case again:
			return
		case err != nil:
			fc.tls.end = err // TLS is told once it has taken what came before
		default:
			fc.tls.feed(lp.tlsBuf[:n])
			fc.lastRead = time.Now()
		}
		if !lp.decryptFrames(fc) {
			return
		}
		lp.deadline(fc.lastRead.Add(fc.idle))
		if n < len(lp.tlsBuf)/2 {
			return // the socket had little: most likely all it had
		}
	}
}

// decryptFrames delivers the frames of what TLS decrypts until it needs
// more from the socket. It reports false once fc has ended.
func (lp *eloop) decryptFrames(fc *frameConn) bool {
	p := fc.tls
	defer p.keep()
	for {
		n, err := p.tc.Read(fc.fr.space())
		if n > 0 {
			if err := fc.fr.wrote(n, fc.deliver); err != nil {
				lp.endFrames(fc, err)
				return false
			}
		}
		switch {
		case err == errTLSDry:
			// What TLS answered itself (a key update), sent as far as
			// the socket takes it; a peer sends nothing else here.
			if !p.send(func(b []byte) (int, bool) { return sendSocketNow(fc.fd, b, nil) }) {
				lp.endFrames(fc, errors.New("writing TLS's answer to the peer failed"))
				return false
			}
			if p.outLen() > tlsAnsweredMax {
				// A peer that asks for answers and takes none: nothing a
				// node of ours does; held, they would grow without bound.
				lp.endFrames(fc, fmt.Errorf("the peer left %d bytes of TLS's answers unread", p.outLen()))
				return false
			}
			return true
		case err == io.EOF && fc.fr.midFrame():
			lp.endFrames(fc, io.ErrUnexpectedEOF) // a frame cut short
			return false
		case err != nil:
			lp.endFrames(fc, err)
			return false
		}
	}
}

// endFrames closes fc's socket, and Wait returns err.
func (lp *eloop) endFrames(fc *frameConn, err error) {
	if fc.closed {
		return
	}
	fc.closed = true
	delete(lp.frames, fc.fd)
	unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, fc.fd, nil)
	unix.Close(fc.fd)
	fc.fd = -1
	fc.err = err
	close(fc.done)
}

// sweepFrames ends the connections that have been silent for their idle
// timeout, and notes the others' deadlines. A connection past its deadline
// is read first: the loop may have been busy (a turn's fsync on a stalled
// disk) while the peer's keepalives waited in the socket, and a reader
// goroutine, whose deadline is set after each frame is delivered, would
// not have held that against the peer.
func (lp *eloop) sweepFrames(now time.Time) {
	for _, fc := range lp.frames {
		t := fc.lastRead.Add(fc.idle)
		if !now.Before(t) {
			lp.readFrames(fc)
			if fc.closed {
				continue
			}
			if t = fc.lastRead.Add(fc.idle); !now.Before(t) {
				lp.endFrames(fc, fmt.Errorf("nothing for %v: %w", fc.idle, os.ErrDeadlineExceeded))
				continue
			}
		}
		lp.deadline(t)
	}
}

// dropFrames ends every frame connection as the loop exits, and refuses
// new ones.
func (lp *eloop) dropFrames() {
	lp.mu.Lock()
	lp.exited = true
	adopted := lp.adoptFrames
	lp.adoptFrames, lp.closeFrames = nil, nil
	lp.mu.Unlock()
	for _, fc := range adopted {
		unix.Close(fc.fd)
		fc.closed = true
		fc.err = net.ErrClosed
		close(fc.done)
	}
	for _, fc := range lp.frames {
		lp.endFrames(fc, net.ErrClosed)
	}
}
