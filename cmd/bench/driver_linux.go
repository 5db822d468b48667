package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"dkv/internal/sockfd"
)

// epollDriverSupported: driveEpoll runs here.
const epollDriverSupported = true

// driveEpoll is driveConn for all of a window's connections at once, from
// one goroutine over its own epoll descriptor, as redis-benchmark drives
// its connections from one thread: per batch a connection costs one write
// and, mostly, one read. The goroutine-per-connection generator spent
// 14–17 µs of CPU per GET at 50 clients, more than either server it
// measured, and on 2 cores it was as much the bound of the throughput as
// the server was. Each connection's requests, replies and reports are
// exactly driveConn's; results[i] gets connection i's.
func driveEpoll(conns []net.Conn, proto wireProto, load compareLoad, space int, value []byte, seed uint64,
	measuring, stop *atomic.Bool, results []clientResult, deadline time.Time) error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	defer unix.Close(epfd)
	cs := make([]*epollClient, len(conns))
	for i, nc := range conns {
		// Closed once duplicated: the socket leaves the runtime's poller,
		// where every reply would also have woken its epoll_wait.
		fd, err := sockfd.DupNonblock(nc)
		if err == nil && fd < 0 {
			err = fmt.Errorf("a %T has no descriptor", nc)
		}
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		nc.Close()
		defer unix.Close(fd)
		c := &epollClient{fd: fd, index: int32(i), rng: rand.New(rand.NewPCG(seed, uint64(i))), res: &results[i],
			keys: make([][]byte, max(load.pairs, 1)), in: make([]byte, 0, epollReadBytes)}
		for k := range c.keys {
			c.keys[k] = make([]byte, 0, 16)
		}
		cs[i] = c
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fmt.Errorf("connection %d: epoll_ctl: %w", i, err)
		}
	}
	d := epollDriver{epfd: epfd, proto: proto, load: load, space: space, value: value, measuring: measuring}
	d.br = bufio.NewReaderSize(&d.reply, respLineBytesMax)
	busy := 0 // connections with replies owed
	for _, c := range cs {
		if err := d.send(c); err != nil {
			return err
		}
		busy++
	}
	events := make([]unix.EpollEvent, len(cs))
	buf := make([]byte, epollReadBytes)
	for busy > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d connections still owed replies after the window's deadline", busy)
		}
		n, err := unix.EpollWait(epfd, events, epollWaitMs)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:max(n, 0)] {
			i := int(ev.Fd)
			c := cs[i]
			if ev.Events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
				if err := d.flush(c); err != nil {
					return fmt.Errorf("connection %d: %w", i, err)
				}
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
				continue
			}
			done, err := d.receive(c, buf)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			if !done {
				continue
			}
			// The batch is answered: the next one, unless the window is over.
			if stop.Load() {
				busy--
				continue
			}
			if err := d.send(c); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
	}
	return nil
}

const (
	// epollReadBytes is one read's buffer, and a connection's first
	// buffer of replies not yet taken.
	epollReadBytes = 64 << 10
	// epollWaitMs bounds one wait, so that the deadline is looked at.
	epollWaitMs = 100
)

// epollDriver is driveEpoll's state shared by the connections.
type epollDriver struct {
	epfd      int
	proto     wireProto
	load      compareLoad
	space     int
	value     []byte
	measuring *atomic.Bool
	// reply holds one complete reply for br, through which the protocol's
	// readReply reads it, as it reads a connection in driveConn.
	reply bytes.Reader
	br    *bufio.Reader
}

// epollClient is one connection of driveEpoll.
type epollClient struct {
	fd       int
	index    int32 // in cs, and the epoll events' data
	rng      *rand.Rand
	res      *clientResult
	keys     [][]byte
	out      []byte // the batch's bytes not yet written
	outBuf   []byte
	in       []byte // bytes read and not yet taken as replies
	owed     int    // replies of the batch not yet read
	t0       time.Time
	writable bool // EPOLLOUT is asked for
}

// send writes c's next batch of load.depth requests.
func (d *epollDriver) send(c *epollClient) error {
	b := appendBatch(c.outBuf[:0], d.proto, d.load, d.space, d.value, c.rng, c.keys)
	c.outBuf, c.out, c.owed = b, b, d.load.depth
	c.t0 = time.Now()
	return d.flush(c)
}

// flush writes what is left of c's batch, and asks for EPOLLOUT while the
// socket does not take it all.
func (d *epollDriver) flush(c *epollClient) error {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		c.out = c.out[n:]
	}
	if want := len(c.out) > 0; want != c.writable {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: c.index}
		if want {
			ev.Events |= unix.EPOLLOUT
		}
		if err := unix.EpollCtl(d.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
		c.writable = want
	}
	return nil
}

// receive reads what c's socket has and takes the complete replies in it.
// It reports whether the batch is answered.
func (d *epollDriver) receive(c *epollClient, buf []byte) (done bool, err error) {
	n, err := unix.Read(c.fd, buf)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read: %w", err)
	case n == 0:
		return false, fmt.Errorf("the server closed the connection with %d replies owed", c.owed)
	}
	c.in = append(c.in, buf[:n]...)
	taken := 0
	for c.owed > 0 {
		size, err := replySize(c.in[taken:], d.proto)
		if err != nil {
			return false, err
		}
		if size == 0 {
			break
		}
		d.reply.Reset(c.in[taken : taken+size])
		d.br.Reset(&d.reply)
		outcome, msg, err := d.proto.readReply(d.br, d.load.op)
		if err != nil {
			return false, err
		}
		taken += size
		c.owed--
		if d.measuring.Load() {
			c.res.add(time.Since(c.t0), outcome == replyOK, msg)
		}
	}
	c.in = c.in[:copy(c.in, c.in[taken:])]
	if c.owed == 0 && len(c.in) > 0 {
		return false, fmt.Errorf("%d bytes from the server beyond the replies owed", len(c.in))
	}
	return c.owed == 0, nil
}

// memoryFS names the file system holding dir when it keeps its files in
// memory (tmpfs, ramfs), where an fsync costs nothing; "" otherwise.
func memoryFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return ""
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.RAMFS_MAGIC:
		return "ramfs"
	}
	return ""
}
