package disktest

import (
	"bytes"
	"io"
	"testing"

	"dkv/core"
)

// ReadHandle checks core.ReadHandle on d, a core.RangeReader: a full
// range, a short one that ends at the file's end with io.EOF, none past
// it, the file it opened still read after its name is removed and made
// anew, and no read after Close. write makes the file name with data.
func ReadHandle(t *testing.T, d core.Disk, write func(name string, data []byte)) {
	t.Helper()
	if _, ok := d.(core.RangeReader); !ok {
		t.Fatalf("%T reads no ranges (core.RangeReader)", d)
	}
	data := []byte("0123456789abcdef")
	write("f", data)
	h, err := core.OpenRead(d, "f")
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != int64(len(data)) {
		t.Fatalf("Size %d, want %d", h.Size(), len(data))
	}
	p := make([]byte, 6)
	if n, err := h.ReadAt(p, 4); n != 6 || err != nil || string(p) != "456789" {
		t.Fatalf("ReadAt(6 at 4) = %d %v %q", n, err, p[:n])
	}
	if n, err := h.ReadAt(p, 12); n != 4 || err != io.EOF || string(p[:n]) != "cdef" {
		t.Fatalf("ReadAt(6 at 12) = %d %v %q, want 4 bytes and io.EOF", n, err, p[:n])
	}
	if n, err := h.ReadAt(p, 16); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt(6 at 16) = %d %v, want 0 and io.EOF", n, err)
	}
	// The name goes and comes back with other content: the handle reads
	// the file it opened.
	if err := d.Remove("f"); err != nil {
		t.Fatal(err)
	}
	write("f", bytes.Repeat([]byte("x"), 32))
	if n, err := h.ReadAt(p, 0); n != 6 || err != nil || string(p) != "012345" {
		t.Fatalf("after the name was replaced, ReadAt(6 at 0) = %d %v %q", n, err, p[:n])
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReadAt(p, 0); err == nil {
		t.Fatal("ReadAt after Close succeeded")
	}
}
