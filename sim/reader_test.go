package sim

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"dkv/internal/disktest"
)

func simFile(t *testing.T, d *Disk, name string, data []byte) {
	t.Helper()
	f, err := d.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Append(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// OpenRead on the simulated disk: ranges, a short read at the end with
// io.EOF, the file opened after its name is replaced, a missing file, and
// handles closed by a crash.
func TestDiskOpenRead(t *testing.T) {
	d := NewDisk(rand.New(rand.NewPCG(1, 2)), DiskFaults{})
	if _, err := d.OpenRead("nope"); err == nil {
		t.Fatal("OpenRead of a missing file succeeded")
	}
	disktest.ReadHandle(t, d, func(name string, data []byte) { simFile(t, d, name, data) })
	p := make([]byte, 6)
	if len(d.readers) != 0 {
		t.Fatalf("%d readers listed after Close", len(d.readers))
	}
	h, _ := d.OpenRead("f")
	d.Crash()
	if _, err := h.ReadAt(p, 0); err == nil {
		t.Fatal("ReadAt after a crash succeeded")
	}
	d.Wipe() // panics with files open
}

// A ranged read sees ReadFile's faults: an unreadable sector fails the
// reads that cover it (a transient one the first only), and bits flip as
// often over a file read a chunk at a time as over the file read whole.
func TestDiskOpenReadFaults(t *testing.T) {
	d := NewDisk(rand.New(rand.NewPCG(1, 2)), DiskFaults{})
	data := bytes.Repeat([]byte{0}, 4*sectorBytes)
	simFile(t, d, "f", data)
	ino := d.dir["f"]
	ino.latent, ino.latentSet, ino.latentOnce = 2, true, false
	h, _ := d.OpenRead("f")
	p := make([]byte, sectorBytes)
	for sec := range 4 {
		_, err := h.ReadAt(p, int64(sec*sectorBytes))
		if (err != nil) != (sec == 2) {
			t.Fatalf("sector %d: %v", sec, err)
		}
	}
	ino.latentOnce = true
	if _, err := h.ReadAt(p, 2*sectorBytes); err == nil {
		t.Fatal("a transient unreadable sector read")
	}
	if _, err := h.ReadAt(p, 2*sectorBytes); err != nil {
		t.Fatalf("a transient unreadable sector failed twice: %v", err)
	}

	d.SetFaults(DiskFaults{ReadFlipProb: 0.5})
	const passes = 400
	for range passes {
		for sec := range 4 {
			if _, err := h.ReadAt(p, int64(sec*sectorBytes)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d.Flips < passes/2*7/10 || d.Flips > passes/2*13/10 {
		t.Fatalf("%d flips in %d passes over the file a sector at a time; ReadFile would flip about %d", d.Flips, passes, passes/2)
	}
	h.Close()
}
