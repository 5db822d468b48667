package disk

import "syscall"

// Datasync makes the data written to fd durable, and its size, but not
// metadata such as mtime that recovery does not need: fdatasync(2). EINTR
// is retried (the call was interrupted before it did anything); no other
// error is, since after a failed sync the kernel may have dropped the
// pages it could not write.
func Datasync(fd int) error {
	for {
		err := syscall.Fdatasync(fd)
		if err != syscall.EINTR {
			return err
		}
	}
}

// datasyncHeld is Datasync made as a raw system call (File.SyncHeld).
func datasyncHeld(fd int) error {
	for {
		_, _, e := syscall.RawSyscall(syscall.SYS_FDATASYNC, uintptr(fd), 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
		default:
			return e
		}
	}
}
