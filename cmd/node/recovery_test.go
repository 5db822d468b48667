package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Recovery from crash images of a real server's data directory: the server
// writes keys one request (one batch) at a time, is killed with SIGKILL,
// and the test shapes what a crash at some step could have left before it
// starts the server again.

// killedAfterWrites starts a server on a new data directory, sets keys
// k0…k(n-1) one request at a time, kills it, and returns the directory
// and the path of its last log segment.
func killedAfterWrites(t *testing.T, n int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	s := start(t, dir)
	c := dial(t, s.addr)
	for i := range n {
		if err := c.Set(context.Background(), fmt.Sprint("k", i), fmt.Sprint("value ", i)); err != nil {
			t.Fatal(err)
		}
	}
	kill(s)
	segs, err := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("log segments %v (%v)", segs, err)
	}
	slices.Sort(segs)
	return dir, segs[len(segs)-1]
}

// recordEnds returns where each record of a log segment ends, read from
// the length fields ([length u32][crc u32] then length bytes), up to the
// zeros reserved after the last.
func recordEnds(t *testing.T, seg string) []int {
	t.Helper()
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	var ends []int
	for off := 0; off+8 <= len(data); {
		length := int(binary.LittleEndian.Uint32(data[off:]))
		if length == 0 {
			break
		}
		off += 8 + length
		ends = append(ends, off)
	}
	return ends
}

// wantKeys checks that keys k0…k(n-1) hold their values.
func wantKeys(t *testing.T, s *server, n int) {
	t.Helper()
	c := dial(t, s.addr)
	for i := range n {
		if v, err := c.Get(context.Background(), fmt.Sprint("k", i)); err != nil || v != fmt.Sprint("value ", i) {
			t.Fatalf("k%d after recovery: %q, %v; server log:\n%s", i, v, err, s.log())
		}
	}
}

// A roll to a new log segment whose directory sync fails removes the
// segment file it made, not durably; the turn goes on to reserve zeros
// after the segment before, and its batches go there. A crash (a power
// cut) may bring the empty file back, named inside that segment. The
// server refused to start on it ("bad record at offset … in a sealed
// segment": the reserved zeros), though nothing was damaged; it serves
// every acknowledged write now.
func TestRecoveryAfterAFailedRollsFileCameBack(t *testing.T) {
	const n = 6
	dir, seg := killedAfterWrites(t, n)
	first, err := parseWALName(filepath.Base(seg))
	if err != nil {
		t.Fatal(err)
	}
	if len(recordEnds(t, seg)) != n {
		t.Fatalf("%s holds %d records, want %d", seg, len(recordEnds(t, seg)), n)
	}
	// The roll failed after record 3: its file is named after record 4.
	back := filepath.Join(dir, fmt.Sprintf("wal-%020d.log", first+3))
	if err := os.WriteFile(back, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, dir)
	wantKeys(t, s, n)
	if _, err := os.Stat(back); !os.IsNotExist(err) {
		t.Errorf("the failed roll's file is still there (%v)", err)
	}
	// And the log goes on in the segment, across another crash.
	if err := dial(t, s.addr).Set(context.Background(), "after", "the restart"); err != nil {
		t.Fatal(err)
	}
	kill(s)
	s = start(t, dir)
	wantKeys(t, s, n)
	if v, err := dial(t, s.addr).Get(context.Background(), "after"); err != nil || v != "the restart" {
		t.Fatalf("after the second restart: %q, %v", v, err)
	}
}

func parseWALName(name string) (uint64, error) {
	var first uint64
	if _, err := fmt.Sscanf(name, "wal-%020d.log", &first); err != nil {
		return 0, fmt.Errorf("log segment name %q: %w", name, err)
	}
	return first, nil
}

// A torn last record (a power cut during its write, before it was
// acknowledged) is cut, kept in a side file, and the rest served.
func TestRecoveryCutsATornLastRecord(t *testing.T) {
	const n = 5
	dir, seg := killedAfterWrites(t, n)
	ends := recordEnds(t, seg)
	// Keep n-1 records and half of the last one: as if its write were
	// cut short, the rest of the file the zeros reserved ahead.
	cut := ends[n-2] + (ends[n-1]-ends[n-2])/2
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	clear(data[cut:])
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, dir)
	wantKeys(t, s, n-1)
	if !strings.Contains(s.log(), "truncating torn tail of "+filepath.Base(seg)) {
		t.Errorf("no torn tail logged; server log:\n%s", s.log())
	}
	if cuts, _ := filepath.Glob(seg + ".cut-*"); len(cuts) != 1 {
		t.Errorf("side files of the cut: %v, want one", cuts)
	}
}

// A record damaged in the middle of the log, with complete batches after
// it, is damage at rest, never a torn write: the server refuses to start
// and names the file and the offset, rather than drop the acknowledged
// writes after it.
func TestRecoveryRefusesDamageInTheMiddle(t *testing.T) {
	const n = 6
	dir, seg := killedAfterWrites(t, n)
	ends := recordEnds(t, seg)
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[ends[1]+20] ^= 0x10 // a payload bit of the third record
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := launch(t, "--port", "0", "--data-dir", dir)
	if c := s.exitCode(); c != 1 {
		t.Fatalf("exit code %d, want 1; server log:\n%s", c, s.log())
	}
	want := fmt.Sprintf("%s: bad record at offset %d", filepath.Base(seg), ends[1])
	if log := s.log(); !strings.Contains(log, want) || strings.Contains(log, "serving") {
		t.Fatalf("server log does not refuse with %q:\n%s", want, log)
	}
}

// A crash between a snapshot's directory sync and the removal of what it
// replaced leaves the older snapshot beside it, and one during the next
// snapshot's write leaves its temporary file: recovery loads the newest,
// removes both, and loses nothing acknowledged.
func TestRecoveryAfterACrashAroundASnapshot(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--segment-bytes", "4096", "--snapshot-log-bytes", "8192"}
	value := strings.Repeat("v", 1000)
	snapshotAfter := func(from, to int) string {
		t.Helper()
		s := start(t, dir, flags...)
		c := dial(t, s.addr)
		for i := from; i < to; i++ {
			if err := c.Set(context.Background(), fmt.Sprint("k", i), value); err != nil {
				t.Fatal(err)
			}
		}
		// Wait for a snapshot of every write so far, then crash.
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := roundTrip(t, s.addr, `{"op":"status"}`)[0].Status
			if st != nil && st.SnapshotIndex > 0 && !st.Snapshotting && st.SnapshotIndex >= uint64(to)-4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot after %d writes: %+v; server log:\n%s", to, st, s.log())
			}
			// A write of its own turn makes the next snapshot due sooner.
			if err := c.Set(context.Background(), "tick", "x"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		kill(s)
		snaps, _ := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
		if len(snaps) != 1 {
			t.Fatalf("snapshots after a crash: %v, want one", snaps)
		}
		return snaps[0]
	}
	older := snapshotAfter(0, 20)
	olderData, err := os.ReadFile(older)
	if err != nil {
		t.Fatal(err)
	}
	newest := snapshotAfter(20, 40)
	if newest == older {
		t.Fatalf("the second snapshot is the first one: %s", newest)
	}
	newestData, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(older, olderData, 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, fmt.Sprintf("snap-%020d.tmp", 1000)) // the next one's, cut short
	if err := os.WriteFile(tmp, newestData[:len(newestData)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	s := start(t, dir, flags...)
	c := dial(t, s.addr)
	for i := range 40 {
		if v, err := c.Get(context.Background(), fmt.Sprint("k", i)); err != nil || v != value {
			t.Fatalf("k%d after recovery: %v; server log:\n%s", i, err, s.log())
		}
	}
	for _, gone := range []string{older, tmp} {
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s is still there after recovery (%v)", gone, err)
		}
	}
}

// A single node whose log segments are gone (deleted to free space, or a
// backup that copied the snapshot alone) refuses to start, naming the
// snapshot and the file that accepts the loss: it used to serve the
// snapshot's state as the whole, every write acknowledged after it gone
// without a word. Once the operator creates that file, it starts.
func TestRecoveryRefusesASnapshotWithoutItsLog(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--segment-bytes", "4096", "--snapshot-log-bytes", "8192"}
	value := strings.Repeat("v", 1000)
	s := start(t, dir, flags...)
	c := dial(t, s.addr)
	for i := range 20 {
		if err := c.Set(context.Background(), fmt.Sprint("k", i), value); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := roundTrip(t, s.addr, `{"op":"status"}`)[0].Status
		if st != nil && st.SnapshotIndex >= 16 && !st.Snapshotting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot: %+v; server log:\n%s", st, s.log())
		}
		if err := c.Set(context.Background(), "tick", "x"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Set(context.Background(), "after", "the snapshot"); err != nil {
		t.Fatal(err)
	}
	kill(s)
	segs, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	if len(segs) == 0 || len(snaps) != 1 {
		t.Fatalf("segments %v, snapshots %v", segs, snaps)
	}
	for _, seg := range segs {
		if err := os.Remove(seg); err != nil {
			t.Fatal(err)
		}
	}
	s = launch(t, "--port", "0", "--data-dir", dir)
	if code := s.exitCode(); code != 1 {
		t.Fatalf("exit code %d, want 1; server log:\n%s", code, s.log())
	}
	log := s.log()
	i := strings.Index(log, "create the empty file ")
	if i < 0 || !strings.Contains(log, filepath.Base(snaps[0])) || strings.Contains(log, "serving") {
		t.Fatalf("server log does not refuse naming %s and the file to create:\n%s", filepath.Base(snaps[0]), log)
	}
	name := strings.Fields(log[i+len("create the empty file "):])[0]
	if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s = start(t, dir, flags...)
	c = dial(t, s.addr)
	if v, err := c.Get(context.Background(), "k0"); err != nil || v != value {
		t.Fatalf("k0 from the snapshot: %v; server log:\n%s", err, s.log())
	}
}
