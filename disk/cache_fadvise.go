//go:build linux || freebsd

package disk

import (
	"os"

	"golang.org/x/sys/unix"

	"dkv/core"
)

var _ core.CacheDropper = (*Dir)(nil)

// DropCache implements core.CacheDropper with posix_fadvise(DONTNEED),
// which evicts the file's clean pages from the page cache (dirty ones are
// left, and written back in their time), so that the next read goes to the
// medium. Recovery calls it before reading a log's last segment: after a
// failed fsync, ext4 marks the pages it could not write clean and keeps
// them readable, and only a read from the medium shows they are not there.
// A page being written back or mapped may stay; the eviction is a
// safeguard, not a promise the kernel makes.
func (d *Dir) DropCache(name string) error {
	path, err := d.name(name)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fileError("open", name, err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fileError("fadvise", name, err)
	}
	return nil
}
