package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/client"
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

// A copy of one instant of a running server's directory, as a file-system
// snapshot (LVM, ZFS, a cloud volume's) takes it, is what a crash leaves,
// and restores every write acknowledged before that instant. The instant
// here is a pause (SIGSTOP) of a server under a load of writes, with
// small segments and snapshots, so that the copy catches rolls, snapshots
// being written and batches mid-flight; the copy is made while it is
// paused, and the server goes on after (SIGCONT).
func TestBackupOfOneInstantOfARunningServer(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	small := []string{"--segment-bytes", "16384", "--snapshot-log-bytes", "32768"}
	s := start(t, dir, small...)
	var mu sync.Mutex
	acked := map[string]string{} // what was acknowledged, each key's last value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.Dial(s.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, v := fmt.Sprintf("w%d-k%d", w, i%150), fmt.Sprintf("%d-%s", i, strings.Repeat("x", 200))
				if err := c.Set(context.Background(), k, v); err != nil {
					return // the server is gone: this write's outcome is unknown
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}()
	}
	for round := range 3 {
		time.Sleep(150 * time.Millisecond)
		s.signal(syscall.SIGSTOP)
		mu.Lock() // every write acknowledged so far; none is acknowledged while paused
		want := maps.Clone(acked)
		mu.Unlock()
		backup := filepath.Join(base, fmt.Sprint("backup", round))
		if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		s.signal(syscall.SIGCONT)
		if len(want) == 0 {
			t.Fatal("no write acknowledged before the copy")
		}
		restored := start(t, backup, small...)
		c := dial(t, restored.addr)
		for k, v := range want {
			got, err := c.Get(context.Background(), k)
			if err != nil {
				t.Fatalf("copy %d: %s: %v; want the value acknowledged before the copy; its log:\n%s", round, k, err, restored.log())
			}
			if got != v {
				// A later write of the key may have been applied, not yet
				// acknowledged, when the copy was made: it is newer.
				var gi, wi int
				fmt.Sscanf(got, "%d-", &gi)
				fmt.Sscanf(v, "%d-", &wi)
				if gi < wi {
					t.Fatalf("copy %d: %s = %.10q, older than the acknowledged %.10q", round, k, got, v)
				}
			}
		}
		kill(restored)
	}
	close(stop)
	wg.Wait()
}
