package disk

import "golang.org/x/sys/unix"

// Datasync makes the data written to fd durable. On macOS fsync(2) only
// hands the data to the drive, whose cache may still lose it at a power
// cut; F_FULLFSYNC asks the drive to flush its cache too, as fdatasync does
// on Linux. A file system that does not support it (SMB mounts answer
// ENOTSUP) gets fsync, as Go's own File.Sync does there. EINTR is
// retried; no other error is.
func Datasync(fd int) error {
	for {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0)
		if err == unix.ENOTSUP {
			err = unix.Fsync(fd)
		}
		if err != unix.EINTR {
			return err
		}
	}
}

// datasyncHeld is Datasync: only Linux has File.SyncHeld's raw call.
func datasyncHeld(fd int) error { return Datasync(fd) }
