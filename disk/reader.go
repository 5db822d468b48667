package disk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"dkv/core"
)

// Reader is a file of a Dir open for ranged reads (core.ReadHandle): a
// cluster leader reads each chunk of the snapshot it sends when it sends
// it, rather than the whole file at once.
type Reader struct {
	f    *os.File
	name string
	size int64
}

var (
	_ core.RangeReader = (*Dir)(nil)
	_ core.ReadHandle  = (*Reader)(nil)
)

// OpenRead implements core.RangeReader: it opens name read-only and keeps
// the descriptor until Close, so reads see the file opened even if the name
// is removed or replaced meanwhile. A missing file is an error for which
// errors.Is(err, fs.ErrNotExist) holds.
func (d *Dir) OpenRead(name string) (core.ReadHandle, error) {
	path, err := d.name(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file", name)
	}
	return &Reader{f: f, name: name, size: info.Size()}, nil
}

// ReadAt reads len(p) bytes at off (pread), as core.ReadHandle says: at the
// end of the file the bytes before it and io.EOF, itself unwrapped.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.f == nil {
		return 0, fmt.Errorf("read %s: closed", r.name)
	}
	n, err := r.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("read %s: %w", r.name, err)
	}
	return n, err
}

// Size is the file's length when it was opened.
func (r *Reader) Size() int64 { return r.size }

// Close releases the descriptor.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
