package realnet

import (
	"testing"

	"dkv/internal/sockfd"

	"golang.org/x/sys/unix"
)

// The raw calls behave as read(2), write(2) and epoll_wait(2) do: data
// through, EAGAIN when there is none, 0 at the end of the stream, errors
// as errno values that compare equal to unix's. The sockets' recv and send
// behave as read and write do.
func TestNonblockCalls(t *testing.T) {
	for _, c := range []struct {
		name        string
		read, write func(int, []byte) (int, error)
	}{
		{"read-write", readNonblock, writeNonblock},
		{"recv-send", recvNonblock, sendNonblock},
	} {
		t.Run(c.name, func(t *testing.T) { testNonblockCalls(t, c.read, c.write) })
	}
}

func testNonblockCalls(t *testing.T, readNonblock, writeNonblock func(int, []byte) (int, error)) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := fds[0], fds[1]
	defer unix.Close(a)
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, b, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(b)}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	buf := make([]byte, 16)

	if n, err := epollWait(epfd, events, 0); n != 0 || err != nil {
		t.Fatalf("poll before any data: %d, %v", n, err)
	}
	if n, err := readNonblock(b, buf); n != -1 || err != unix.EAGAIN {
		t.Fatalf("read before any data: %d, %v; want -1, EAGAIN", n, err)
	}
	if n, err := writeNonblock(a, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := epollWait(epfd, events, 0); n != 1 || err != nil || events[0].Fd != int32(b) || events[0].Events&unix.EPOLLIN == 0 {
		t.Fatalf("poll after a write: %d, %v, %+v", n, err, events[0])
	}
	if n, err := readNonblock(b, buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %d, %v, %q", n, err, buf[:max(n, 0)])
	}
	// A full socket takes part of a write, then refuses with EAGAIN.
	big := make([]byte, 1<<16)
	full := false
	for range 1 << 12 {
		n, err := writeNonblock(a, big)
		if err == unix.EAGAIN {
			full = true
			break
		}
		if err != nil || n <= 0 {
			t.Fatalf("write into a filling socket: %d, %v", n, err)
		}
	}
	if !full {
		t.Fatal("a socket nobody reads never filled")
	}
	unix.Close(a)
	for {
		n, err := readNonblock(b, big)
		if err != nil {
			t.Fatalf("drain: %d, %v", n, err)
		}
		if n == 0 {
			break // the end of the stream
		}
	}
	if n, err := writeNonblock(b, []byte("x")); n != -1 || err != unix.EPIPE {
		t.Fatalf("write to a closed peer: %d, %v; want -1, EPIPE", n, err)
	}
	if n, err := readNonblock(-1, buf); n != -1 || err != unix.EBADF {
		t.Fatalf("read of a bad descriptor: %d, %v", n, err)
	}
	if n, err := epollWait(-1, events, 0); n != -1 || err != unix.EBADF {
		t.Fatalf("poll of a bad descriptor: %d, %v", n, err)
	}
}

// BenchmarkSocketCalls: a write and a read of a 108-byte GET reply over
// a loopback TCP pair, against a send and a recv (recvNonblock).
func BenchmarkSocketCalls(b *testing.B) {
	dialed, accepted := loopbackPair(b)
	from, err := sockfd.DupNonblock(dialed)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(from)
	to, err := sockfd.DupNonblock(accepted)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(to)
	msg, buf := make([]byte, 108), make([]byte, 4096)
	for _, c := range []struct {
		name        string
		read, write func(int, []byte) (int, error)
	}{
		{"read-write", readNonblock, writeNonblock},
		{"recv-send", recvNonblock, sendNonblock},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if n, err := c.write(from, msg); n != len(msg) || err != nil {
					b.Fatalf("write: %d, %v", n, err)
				}
				if n, err := c.read(to, buf); n != len(msg) || err != nil {
					b.Fatalf("read: %d, %v", n, err)
				}
			}
		})
	}
}
