//go:build unix

package client

import (
	"io"
	"syscall"
)

// peekSocket copies into buf, without consuming or waiting for them, the
// bytes that have arrived on the socket, or returns io.EOF if the peer has
// closed it. Nothing waiting is (0, nil).
func peekSocket(raw syscall.RawConn, buf []byte) (int, error) {
	if raw == nil {
		return 0, nil
	}
	var n int
	var err error
	cerr := raw.Read(func(fd uintptr) bool {
		n, _, err = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readability
	})
	switch {
	case cerr != nil:
		return 0, cerr
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		return 0, nil
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// tryWrite writes as much of buf as the socket takes without waiting, and
// returns how much that was.
func tryWrite(raw syscall.RawConn, buf []byte) (int, error) {
	if raw == nil {
		return 0, nil
	}
	written := 0
	var err error
	cerr := raw.Write(func(fd uintptr) bool {
		for written < len(buf) {
			n, werr := syscall.Write(int(fd), buf[written:])
			if n > 0 {
				written += n
			}
			switch {
			case werr == syscall.EINTR:
				continue
			case werr == syscall.EAGAIN || werr == syscall.EWOULDBLOCK:
				return true
			case werr != nil:
				err = werr
				return true
			case n <= 0:
				return true
			}
		}
		return true // never wait for writability
	})
	if cerr != nil {
		return written, cerr
	}
	return written, err
}
