package disk

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"testing"

	"dkv/core"
)

func writeFile(t *testing.T, d *Dir, name string, data []byte) {
	t.Helper()
	f, err := d.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Append(data); err != nil {
		t.Fatal(err)
	}
}

// OpenRead reads a file a range at a time: a full range, a short one that
// ends at the file's end with io.EOF, none past it; the file it opened even
// after the name is removed and made anew.
func TestOpenReadRanges(t *testing.T) {
	d := mustOpen(t, t.TempDir(), Options{})
	data := []byte("0123456789abcdef")
	writeFile(t, d, "f", data)
	h, err := core.OpenRead(d, "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*Reader); !ok {
		t.Fatalf("core.OpenRead on a Dir gave %T, not a ranged *Reader", h)
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
	writeFile(t, d, "f", bytes.Repeat([]byte("x"), 32))
	if n, err := h.ReadAt(p, 0); n != 6 || err != nil || string(p) != "012345" {
		t.Fatalf("after the name was replaced, ReadAt(6 at 0) = %d %v %q", n, err, p[:n])
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ReadAt(p, 0); err == nil {
		t.Fatal("ReadAt after Close succeeded")
	}
	if err := h.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

func TestOpenReadMissingAndInvalid(t *testing.T) {
	d := mustOpen(t, t.TempDir(), Options{})
	if _, err := d.OpenRead("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenRead of a missing file: %v, want fs.ErrNotExist", err)
	}
	for _, name := range []string{"", "..", lockName, "a/b"} {
		if _, err := d.OpenRead(name); err == nil {
			t.Fatalf("OpenRead(%q) succeeded", name)
		}
	}
}
