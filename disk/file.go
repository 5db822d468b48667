package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"dkv/core"
)

// File is an append-only file of a Dir. It implements core.File and
// core.Reserver.
type File struct {
	f      *os.File
	name   string
	size   int64 // bytes written so far, synced or not; what the node can see
	disk   int64 // the file's length: size, plus any reserved zeros after it
	noSync bool
}

var (
	_ core.File     = (*File)(nil)
	_ core.Reserver = (*File)(nil)
)

// zeros is what Reserve writes, a chunk at a time.
var zeros = make([]byte, 256<<10)

// Append writes all of p at the end of the file. On error an unknown prefix
// of p may be on disk (Size counts what the kernel accepted), and the caller
// truncates back.
func (f *File) Append(p []byte) error {
	for len(p) > 0 {
		n, err := f.f.WriteAt(p, f.size)
		f.size += int64(n)
		f.disk = max(f.disk, f.size)
		p = p[n:]
		if err != nil {
			return fileError("append to", f.name, err)
		}
		// os.File.Write retries short writes itself; a zero-byte write
		// without an error would loop forever, so treat it as one.
		if n == 0 {
			return fileError("append to", f.name, io.ErrShortWrite)
		}
	}
	return nil
}

// Overwrite writes p over the bytes at off, which the file holds already
// (core.File). The write dirties the pages it covers, so the next Sync
// writes them to the medium even where a failed fsync had left them clean
// in the page cache.
func (f *File) Overwrite(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > f.size {
		return fmt.Errorf("overwrite %s: %d bytes at %d, past its end %d", f.name, len(p), off, f.size)
	}
	for len(p) > 0 {
		n, err := f.f.WriteAt(p, off)
		off += int64(n)
		p = p[n:]
		if err != nil {
			return fileError("overwrite", f.name, err)
		}
		if n == 0 {
			return fileError("overwrite", f.name, io.ErrShortWrite)
		}
	}
	return nil
}

// Reserve makes sure at least n zero bytes follow the end, writing zeros
// past the file's length when fewer than n/2 are left. Appends then overwrite
// blocks that are already allocated and written, and an fdatasync of them
// flushes data alone, without a journal commit for the file's size: on the
// development VM that took an fdatasync from 210-300 µs to 130-155 µs.
func (f *File) Reserve(n int64) error {
	if f.disk-f.size >= n/2 {
		return nil
	}
	for f.disk < f.size+n {
		chunk := zeros[:min(int64(len(zeros)), f.size+n-f.disk)]
		w, err := f.f.WriteAt(chunk, f.disk)
		f.disk += int64(w)
		if err != nil {
			return fileError("reserve space in", f.name, err)
		}
	}
	return nil
}

// Sync makes everything appended so far durable with fdatasync (see
// Datasync), which also persists the file size but skips metadata such as
// mtime that recovery does not need.
func (f *File) Sync() error { return f.sync(Datasync) }

// SyncHeld is Sync for a goroutine that holds its processor by design, as
// an event loop that fsyncs inline does (realnet): on Linux the fdatasync
// is a raw system call, without the runtime's entersyscall and
// exitsyscall. The wrapped call lets the runtime hand the processor to
// another thread while the fsync blocks, and so wakes its sysmon thread,
// which then ticks every 20 µs; at SET with 50 clients the wrapped fsyncs
// woke sysmon seven times as often, and cost 7% more server CPU per SET
// (docs/PERFORMANCE.md, fifteenth session). The price: the garbage
// collector's stop-the-world waits for a raw call to return, so while a
// stalled disk holds an fsync, a collection that starts then holds every
// goroutine of the process until the disk answers. The loop that called
// it waits for that fsync either way.
func (f *File) SyncHeld() error { return f.sync(datasyncHeld) }

func (f *File) sync(datasync func(fd int) error) error {
	if f.noSync {
		return nil
	}
	raw, err := f.f.SyscallConn()
	if err != nil {
		return fileError("fdatasync", f.name, err)
	}
	var syncErr error
	err = raw.Control(func(fd uintptr) { syncErr = datasync(int(fd)) })
	if err == nil {
		err = syncErr
	}
	if err != nil {
		return fileError("fdatasync", f.name, err)
	}
	return nil
}

// Truncate cuts the file to size bytes, reserved zeros included. The new
// length is durable after the next Sync.
func (f *File) Truncate(size int64) error {
	if err := f.f.Truncate(size); err != nil {
		return fileError("truncate", f.name, err)
	}
	f.size, f.disk = size, size
	return nil
}

// Size is the current length, including unsynced data.
func (f *File) Size() int64 { return f.size }

// Close closes the file without syncing it.
func (f *File) Close() error {
	if err := f.f.Close(); err != nil {
		return fileError("close", f.name, err)
	}
	return nil
}

// fileError names the file and the operation, and marks a full disk (or an
// exhausted quota, which looks the same to the node) with core.ErrDiskFull so
// the node can answer disk_full instead of io_error.
func fileError(op, name string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%s %s: %w: %w", op, name, core.ErrDiskFull, err)
	}
	return fmt.Errorf("%s %s: %w", op, name, err)
}
