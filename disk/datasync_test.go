package disk

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Datasync syncs a file it can and reports the errno of one it cannot,
// unretried.
func TestDatasync(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := Datasync(int(f.Fd())); err != nil {
		t.Fatalf("Datasync of a written file: %v", err)
	}
	if err := Datasync(-1); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Datasync(-1) = %v, want EBADF", err)
	}
}
