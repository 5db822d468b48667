//go:build !linux

package realnet

import "syscall"

// sendNonblock is write(2) on a non-blocking socket (on Linux, a raw
// send(2); see nonblock_linux.go).
func sendNonblock(fd int, b []byte) (int, error) { return syscall.Write(fd, b) }
