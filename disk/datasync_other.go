//go:build !linux && !darwin

package disk

import "syscall"

// Datasync makes the data written to fd durable: fsync(2), where
// fdatasync is not to be had. EINTR is retried; no other error is.
func Datasync(fd int) error {
	for {
		err := syscall.Fsync(fd)
		if err != syscall.EINTR {
			return err
		}
	}
}

// datasyncHeld is Datasync: only Linux has File.SyncHeld's raw call.
func datasyncHeld(fd int) error { return Datasync(fd) }
