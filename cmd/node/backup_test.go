package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The backup docs/OPERATIONS.md gives for a single node: stop the server,
// copy its data directory, start a server on the copy. The copy serves
// every acknowledged write and delete of the original (its snapshots and
// log segments, several of each here), and the two directories go their
// own ways after.
func TestBackupIsACopyOfAStoppedNodesDirectory(t *testing.T) {
	base := t.TempDir()
	dir, backup := filepath.Join(base, "data"), filepath.Join(base, "backup")
	small := []string{"--segment-bytes", "65536", "--snapshot-log-bytes", "65536"}
	s := start(t, dir, small...)
	value := func(i int) string { return fmt.Sprintf("v%d-%s", i, strings.Repeat("x", 300)) }
	const keys = 600
	var lines []string
	for i := 0; i < keys; i += 3 {
		lines = append(lines, fmt.Sprintf(`{"op":"set","key":"k%d","value":%q}`, i, value(i)),
			fmt.Sprintf(`{"op":"bulk_set","items":[{"key":"k%d","value":%q},{"key":"k%d","value":%q}]}`, i+1, value(i+1), i+2, value(i+2)))
	}
	for i := 0; i < keys; i += 50 {
		lines = append(lines, fmt.Sprintf(`{"op":"delete","key":"k%d"}`, i))
	}
	for i, r := range roundTrip(t, s.addr, lines...) {
		if !r.OK {
			t.Fatalf("%s: %+v", lines[i], r.Error)
		}
	}
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", c, s.log())
	}
	if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(backup, "*"))
	snaps, _ := filepath.Glob(filepath.Join(backup, "snap-*"))
	if len(snaps) == 0 || len(files) < 3 {
		t.Fatalf("the copy holds %d files, %d snapshots: too few to be a test of one", len(files), len(snaps))
	}

	orig, restored := start(t, dir, small...), start(t, backup, small...)
	if r := roundTrip(t, orig.addr, `{"op":"set","key":"after","value":"1"}`); !r[0].OK {
		t.Fatalf("set on the original: %+v", r[0].Error)
	}
	var gets []string
	for i := range keys {
		gets = append(gets, fmt.Sprintf(`{"op":"get","key":"k%d"}`, i))
	}
	gets = append(gets, `{"op":"get","key":"after"}`)
	for i, r := range roundTrip(t, restored.addr, gets...) {
		switch {
		case i == keys:
			if code(r) != "not_found" {
				t.Errorf("the copy has a key written to the original after the copy: %+v", r)
			}
		case i%50 == 0:
			if code(r) != "not_found" {
				t.Errorf("k%d was deleted before the copy, and the copy has it: %+v", i, r)
			}
		case r.Value == nil || *r.Value != value(i):
			t.Errorf("k%d on the copy: %+v", i, r)
		}
	}
}
