package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The lock on a data directory outlives its LOCK file: an operator who
// takes the file for a stale one (the second server said the directory
// was in use) and removes it, then starts the second server again, is
// refused still. Before, the second server made a new LOCK, locked it and
// served beside the first, both appending to one log (found by review).
func TestSecondServerRefusedWithTheLockFileRemoved(t *testing.T) {
	dir := t.TempDir()
	first := start(t, dir)
	if err := os.Remove(filepath.Join(dir, "LOCK")); err != nil {
		t.Fatal(err)
	}
	second := launch(t, "--port", "0", "--data-dir", dir)
	if c := second.exitCode(); c != 1 {
		t.Fatalf("second server exit code = %d, want 1; its log:\n%s", c, second.log())
	}
	if log := second.log(); !strings.Contains(log, "is in use by another dkv process") || strings.Contains(log, "serving") {
		t.Errorf("second server's log does not refuse the directory in use:\n%s", log)
	}
	// The first still serves.
	if r := roundTrip(t, first.addr, `{"op":"set","key":"k","value":"v"}`)[0]; !r.OK {
		t.Fatalf("the first server after the refusal: %+v", r)
	}
}
