//go:build !linux

package realnet

import "syscall"

// writeNonblock is write(2) on a non-blocking descriptor (raw on Linux;
// see nonblock_linux.go).
func writeNonblock(fd int, b []byte) (int, error) { return syscall.Write(fd, b) }
