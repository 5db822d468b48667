//go:build linux

package disk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentPages counts the pages of path that are in the page cache.
func residentPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(info.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pages := (len(m) + os.Getpagesize() - 1) / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// DropCache evicts a synced file's pages, and the next read, from the
// medium, returns the same bytes.
func TestDropCacheEvictsCleanPages(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, Options{})
	defer d.Close()
	f, err := d.Create("seg")
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	if err := f.Append(want); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := d.ReadFile("seg"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "seg")
	before := residentPages(t, path)
	if before == 0 {
		t.Skip("the file system keeps no pages of a file just read in the page cache")
	}
	if err := d.DropCache("seg"); err != nil {
		t.Fatal(err)
	}
	after := residentPages(t, path)
	if after == before {
		// tmpfs and some overlays ignore the advice: their pages are the
		// file's only copy, or belong to the layer below.
		var fs unix.Statfs_t
		if unix.Statfs(dir, &fs) == nil && fs.Type != unix.EXT4_SUPER_MAGIC && fs.Type != unix.XFS_SUPER_MAGIC {
			t.Skipf("the file system (type %#x) kept all %d pages: it ignores POSIX_FADV_DONTNEED", fs.Type, before)
		}
		t.Fatalf("%d of %d pages still cached after DropCache", after, before)
	}
	got, err := d.ReadFile("seg")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read after DropCache: %d bytes, %v; want the %d written", len(got), err, len(want))
	}
	if err := d.DropCache("missing"); err == nil {
		t.Fatal("DropCache of a missing file did not fail")
	}
}
