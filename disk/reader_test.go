package disk

import (
	"errors"
	"io/fs"
	"testing"

	"dkv/core"
	"dkv/internal/disktest"
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
	disktest.ReadHandle(t, d, func(name string, data []byte) { writeFile(t, d, name, data) })
	h, err := core.OpenRead(d, "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*Reader); !ok {
		t.Fatalf("core.OpenRead on a Dir gave %T, not a ranged *Reader", h)
	}
	h.Close()
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
