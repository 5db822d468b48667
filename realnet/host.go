package realnet

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"dkv/core"
)

// event is one unit of work for the loop: a request, a timer callback, a
// peer message. It runs on the loop goroutine and must not block.
type event func()

// Host runs one core.Node on one goroutine and serves its clients over TCP.
type Host struct {
	node core.Node
	disk core.Disk
	cfg  HostConfig
	logf func(format string, args ...any)

	events   chan event
	stop     chan struct{} // closed by Shutdown
	stopOnce sync.Once
	ready    chan struct{} // closed once the node has recovered and accepts run
	loopDone chan struct{} // closed when the loop has exited; posts fail from then on
	addr     net.Addr

	syncsInFlight    atomic.Int64
	requestsInFlight atomic.Int64 // posted to the node and not yet answered
	// local holds events the loop queued for itself (an fsync done inline
	// reports in a later turn, as the contract asks). Loop goroutine only.
	local []event

	mu      sync.Mutex
	running bool
	closing bool // no more connections are registered
	conns   map[*conn]struct{}
	wg      sync.WaitGroup // the accept goroutine and every connection goroutine
}

// NewHost prepares a host for node on disk. The node starts in Run.
func NewHost(node core.Node, disk core.Disk, cfg HostConfig) (*Host, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logf := cfg.Logf
	if logf == nil {
		logf = log.Printf
	}
	return &Host{
		node:     node,
		disk:     disk,
		cfg:      cfg,
		logf:     logf,
		events:   make(chan event, cfg.EventQueueMax),
		stop:     make(chan struct{}),
		ready:    make(chan struct{}),
		loopDone: make(chan struct{}),
		conns:    make(map[*conn]struct{}),
	}, nil
}

// Ready is closed once the node has recovered and the host accepts clients.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// Addr is the listener's address, or nil until Ready is closed.
func (h *Host) Addr() net.Addr {
	select {
	case <-h.ready:
		return h.addr
	default:
		return nil
	}
}

// Shutdown asks Run to return: the loop finishes its current turn, Flush
// included, then connections get the responses that are ready and close. It
// does not wait; Run's return is the end.
func (h *Host) Shutdown() {
	h.stopOnce.Do(func() { close(h.stop) })
}

// Run starts the node on the calling goroutine, which becomes the loop, and
// serves clients from ln until ctx is done, Shutdown is called or the node
// fails. A node error (from Start or Flush) is returned and is fatal: the
// node has stopped and must be restarted from disk. Run closes ln.
func (h *Host) Run(ctx context.Context, ln net.Listener) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("realnet: Host.Run called twice")
	}
	h.running = true
	h.mu.Unlock()

	h.addr = ln.Addr()
	env := core.Env{
		ID:      0,
		Clock:   &clock{origin: time.Now(), post: h.post},
		Network: nullNetwork{},
		Disk:    syncDisk{Disk: h.disk, h: h},
		Rand:    newRand(),
		Logf:    h.logf,
	}
	// Start is the first turn: it may leave work (say, a truncated torn
	// tail) that only Flush makes durable.
	err := h.node.Start(env)
	if err == nil {
		err = h.node.Flush()
	}
	if err != nil {
		close(h.loopDone)
		ln.Close()
		return fmt.Errorf("node failed to start: %w", err)
	}

	h.wg.Add(1)
	go h.accept(ln)
	close(h.ready)

	err = h.loop(ctx)

	close(h.loopDone)
	ln.Close()
	h.closeConns()
	h.wg.Wait()
	return err
}

// loop blocks for one event, takes whatever else is already queued up to a
// limit, and flushes: one fsync for the whole turn.
func (h *Host) loop(ctx context.Context) error {
	for {
		if len(h.local) > 0 {
			h.runLocal()
		} else {
			select {
			case ev := <-h.events:
				ev()
			case <-ctx.Done():
				return h.finishSyncs()
			case <-h.stop:
				return h.finishSyncs()
			}
		}
	drain:
		for n := 1; n < h.cfg.EventsPerTurnMax; n++ {
			select {
			case ev := <-h.events:
				ev()
			default:
				break drain
			}
		}
		if err := h.node.Flush(); err != nil {
			return fmt.Errorf("node stopped: %w", err)
		}
	}
}

// finishSyncs runs the loop on until no fsync is in flight, so a graceful
// shutdown still answers the writes it already made durable. Requests that
// are already queued are served too; connections stop reading on shutdown,
// so this ends.
func (h *Host) finishSyncs() error {
	for h.syncsInFlight.Load() > 0 || len(h.local) > 0 {
		if len(h.local) > 0 {
			h.runLocal()
		} else {
			ev := <-h.events
			ev()
		}
		if err := h.node.Flush(); err != nil {
			return fmt.Errorf("node stopped: %w", err)
		}
	}
	return nil
}

// runLocal runs the events the loop queued for itself.
func (h *Host) runLocal() {
	evs := h.local
	h.local = nil
	for _, ev := range evs {
		ev()
	}
}

// post queues ev for the loop. It blocks while the queue is full, which
// pushes back on readers, and reports false once the loop has exited.
func (h *Host) post(ev event) bool {
	select {
	case h.events <- ev:
		return true
	case <-h.loopDone:
		return false
	}
}

// accept registers connections until the listener closes.
func (h *Host) accept(ln net.Listener) {
	defer h.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-h.loopDone:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry
			// rather than spin, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			h.logf("accept failed (retrying in %v): %v", backoff, err)
			select {
			case <-time.After(backoff):
			case <-h.loopDone:
				return
			}
			continue
		}
		backoff = 0
		h.mu.Lock()
		switch {
		case h.closing:
			h.mu.Unlock()
			nc.Close()
		case len(h.conns) >= h.cfg.ConnsMax:
			h.wg.Add(1)
			h.mu.Unlock()
			go h.reject(nc)
		default:
			c := newConn(h, nc)
			h.conns[c] = struct{}{}
			h.wg.Add(2)
			h.mu.Unlock()
			go c.read()
			go c.write()
		}
	}
}

// rejectWriteTimeout bounds the one line a rejected connection gets; a fresh
// socket's send buffer takes it at once unless something is badly wrong.
// Rejecting runs on its own goroutine, so a slow one never stalls accept.
const rejectWriteTimeout = time.Second

func (h *Host) reject(nc net.Conn) {
	defer h.wg.Done()
	h.logf("refusing connection from %v: %d connections already open", nc.RemoteAddr(), h.cfg.ConnsMax)
	resp := core.ErrorResponse(core.CodeTooManyConns, "server has %d connections open, its limit; try again later", h.cfg.ConnsMax)
	nc.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
	if _, err := nc.Write(core.AppendResponse(nil, &resp)); err != nil {
		nc.Close()
		return
	}
	lingerClose(nc)
}

func (h *Host) forget(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// closeConns tells every connection that no more replies will come.
func (h *Host) closeConns() {
	h.mu.Lock()
	h.closing = true
	for c := range h.conns {
		c.shutdown()
	}
	h.mu.Unlock()
}
