package sockfd

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// DupNonblock duplicates nc's socket, non-blocking and close-on-exec, for
// an epoll of the caller's own; the caller then closes nc, which takes the
// socket out of the runtime's poller (it removes the descriptor from its
// epoll before closing it). It returns -1 and no error where nc has no
// descriptor.
func DupNonblock(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, nil
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, os.NewSyscallError("fcntl", dupErr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}
