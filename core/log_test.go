package core

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// memDisk is an in-memory Disk for this package's own tests (sim's disk
// imports core, so only core_test may use it). It keeps each file's content
// and the part of it that a crash keeps (what was synced), records every
// mutating call in ops, and fails the calls that fail says to fail.
type memDisk struct {
	files map[string]*memInode
	ops   []string
	// fail is asked at the start of each call with its op ("create",
	// "append", "sync", "truncate", "rename", "remove", "syncdir", "read",
	// "list", "open", "dropcache") and file name; a non-nil error fails the call.
	fail func(op, name string) error
	// short is how many bytes of a failing append still land.
	short int
	// read, when set, may change what a ReadFile returns.
	read func(name string, data []byte) []byte
	// async makes files AsyncFiles whose syncs wait in pending until the
	// test completes them (completeSync).
	async   bool
	pending []func()
	// keepFailedPages makes a failed sync behave as ext4's does: the
	// unsynced bytes stay readable, and no later sync writes them (the
	// kernel marked their pages clean), so a crash shows zeros there.
	keepFailedPages bool
}

type memInode struct {
	data   []byte
	synced []byte // what survives a crash
	// lost are the spans [from, to) a failed sync left readable but never
	// to be written (memDisk.keepFailedPages).
	lost [][2]int
}

func newMemDisk() *memDisk { return &memDisk{files: map[string]*memInode{}} }

func (d *memDisk) check(op, name string) error {
	if d.fail != nil {
		return d.fail(op, name)
	}
	return nil
}

func (d *memDisk) op(format string, args ...any) { d.ops = append(d.ops, fmt.Sprintf(format, args...)) }

// opsSince returns the ops recorded after the first n.
func (d *memDisk) opsSince(n int) []string { return slices.Clone(d.ops[n:]) }

func (d *memDisk) List() ([]string, error) {
	if err := d.check("list", ""); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(d.files))
	for name := range d.files {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

func (d *memDisk) ReadFile(name string) ([]byte, error) {
	if err := d.check("read", name); err != nil {
		return nil, err
	}
	ino, ok := d.files[name]
	if !ok {
		return nil, fmt.Errorf("read %s: no such file", name)
	}
	data := slices.Clone(ino.data)
	if d.read != nil {
		data = d.read(name, data)
	}
	return data, nil
}

func (d *memDisk) Create(name string) (File, error) {
	if err := d.check("create", name); err != nil {
		return nil, err
	}
	d.op("create %s", name)
	ino := &memInode{}
	d.files[name] = ino
	return d.wrap(&memFile{d: d, name: name, ino: ino}), nil
}

func (d *memDisk) OpenAppend(name string) (File, error) {
	if err := d.check("open", name); err != nil {
		return nil, err
	}
	ino, ok := d.files[name]
	if !ok {
		return nil, fmt.Errorf("open %s: no such file", name)
	}
	return d.wrap(&memFile{d: d, name: name, ino: ino}), nil
}

func (d *memDisk) wrap(f *memFile) File {
	if d.async {
		return asyncMemFile{f}
	}
	return f
}

func (d *memDisk) Rename(from, to string) error {
	if err := d.check("rename", from); err != nil {
		return err
	}
	ino, ok := d.files[from]
	if !ok {
		return fmt.Errorf("rename %s: no such file", from)
	}
	d.op("rename %s %s", from, to)
	delete(d.files, from)
	d.files[to] = ino
	return nil
}

func (d *memDisk) Remove(name string) error {
	if err := d.check("remove", name); err != nil {
		return err
	}
	if _, ok := d.files[name]; !ok {
		return fmt.Errorf("remove %s: no such file", name)
	}
	d.op("remove %s", name)
	delete(d.files, name)
	return nil
}

func (d *memDisk) SyncDir() error {
	if err := d.check("syncdir", ""); err != nil {
		return err
	}
	d.op("syncdir")
	return nil
}

// crash throws away every file's unsynced content. (The directory is
// taken as durable: these tests look at file contents.)
func (d *memDisk) crash() {
	for _, ino := range d.files {
		ino.data = slices.Clone(ino.synced)
	}
	d.pending = nil
}

// DropCache implements CacheDropper: the spans a failed sync left
// readable (keepFailedPages) now read as the medium holds them.
func (d *memDisk) DropCache(name string) error {
	if err := d.check("dropcache", name); err != nil {
		return err
	}
	d.op("dropcache %s", name)
	ino, ok := d.files[name]
	if !ok {
		return fmt.Errorf("drop cache of %s: file does not exist", name)
	}
	for _, span := range ino.lost {
		for i := span[0]; i < span[1] && i < len(ino.data); i++ {
			ino.data[i] = 0
			if i < len(ino.synced) {
				ino.data[i] = ino.synced[i]
			}
		}
	}
	ino.lost = nil
	return nil
}

// completeSync runs the oldest background sync.
func (d *memDisk) completeSync() {
	done := d.pending[0]
	d.pending = d.pending[1:]
	done()
}

// put writes a file directly, synced.
func (d *memDisk) put(name string, data []byte) {
	d.files[name] = &memInode{data: slices.Clone(data), synced: slices.Clone(data)}
}

func (d *memDisk) bytes(name string) []byte {
	if ino, ok := d.files[name]; ok {
		return ino.data
	}
	return nil
}

type memFile struct {
	d      *memDisk
	name   string
	ino    *memInode
	closed bool
}

func (f *memFile) Append(p []byte) error {
	if f.closed {
		panic("append to a closed file " + f.name)
	}
	if err := f.d.check("append", f.name); err != nil {
		f.ino.data = append(f.ino.data, p[:min(f.d.short, len(p))]...)
		f.d.op("append %s %d failed", f.name, len(p))
		return err
	}
	f.d.op("append %s %d", f.name, len(p))
	f.ino.data = append(f.ino.data, p...)
	return nil
}

func (f *memFile) Sync() error {
	if f.closed {
		panic("sync of a closed file " + f.name)
	}
	if err := f.d.check("sync", f.name); err != nil {
		f.d.op("sync %s failed", f.name)
		if f.d.keepFailedPages && len(f.ino.data) > len(f.ino.synced) {
			f.ino.lost = append(f.ino.lost, [2]int{len(f.ino.synced), len(f.ino.data)})
		}
		return err
	}
	f.d.op("sync %s", f.name)
	synced := slices.Clone(f.ino.data)
	for _, span := range f.ino.lost {
		for i := span[0]; i < span[1] && i < len(synced); i++ {
			synced[i] = 0
			if i < len(f.ino.synced) {
				synced[i] = f.ino.synced[i]
			}
		}
	}
	f.ino.synced = synced
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.d.check("truncate", f.name); err != nil {
		return err
	}
	f.d.op("truncate %s %d", f.name, size)
	kept := f.ino.lost[:0]
	for _, span := range f.ino.lost {
		if span[0] < int(size) {
			kept = append(kept, [2]int{span[0], min(span[1], int(size))})
		}
	}
	f.ino.lost = kept
	if int(size) <= len(f.ino.data) {
		f.ino.data = f.ino.data[:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, int(size)-len(f.ino.data))...)
	}
	return nil
}

// Overwrite writes over the file's bytes; the spans a failed sync left
// clean (keepFailedPages) that it covers are dirty again, to be written
// by the next sync.
func (f *memFile) Overwrite(p []byte, off int64) error {
	if f.closed {
		panic("overwrite of a closed file " + f.name)
	}
	if off < 0 || int(off)+len(p) > len(f.ino.data) {
		return fmt.Errorf("overwrite %s: %d bytes at %d, past its end %d", f.name, len(p), off, len(f.ino.data))
	}
	if err := f.d.check("overwrite", f.name); err != nil {
		copy(f.ino.data[off:], p[:min(f.d.short, len(p))])
		f.d.op("overwrite %s %d at %d failed", f.name, len(p), off)
		return err
	}
	f.d.op("overwrite %s %d at %d", f.name, len(p), off)
	copy(f.ino.data[off:], p)
	from, to := int(off), int(off)+len(p)
	var kept [][2]int
	for _, span := range f.ino.lost {
		if span[0] < from {
			kept = append(kept, [2]int{span[0], min(span[1], from)})
		}
		if span[1] > to {
			kept = append(kept, [2]int{max(span[0], to), span[1]})
		}
	}
	f.ino.lost = kept
	return nil
}

func (f *memFile) Size() int64 { return int64(len(f.ino.data)) }

func (f *memFile) Close() error { f.closed = true; return nil }

type asyncMemFile struct{ *memFile }

// SyncAsync syncs when the test completes it, as a late fdatasync would:
// whatever was appended by then becomes durable.
func (f asyncMemFile) SyncAsync(done func(error)) {
	f.d.op("syncasync %s", f.name)
	f.d.pending = append(f.d.pending, func() { done(f.memFile.Sync()) })
}

// testRecord is what a test expects a log to hold at an index.
type testRecord struct {
	index   uint64
	payload string
}

// payloadOf is the payload tests log as record index.
func payloadOf(index uint64) []byte { return []byte(fmt.Sprintf("record %d", index)) }

// openTestLog recovers the log of d after snapshot index snapIndex and
// returns it with the records it replayed.
func openTestLog(t *testing.T, d *memDisk, snapIndex uint64) (*Log, []testRecord) {
	t.Helper()
	names, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []testRecord
	w, err := OpenLog(d, names, snapIndex, nil, func(r Record) error {
		got = append(got, testRecord{r.Index, string(r.Payload)})
		return nil
	}, t.Logf)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	return w, got
}

// appendBatch logs one committed batch of records [next, next+n) with
// their payloadOf payloads.
func appendBatch(t *testing.T, g *GroupCommit, n int) {
	t.Helper()
	for range n {
		i := g.log.NextIndex()
		if got := g.Add(recordSet, payloadOf(i)); got != i {
			t.Fatalf("Add returned %d, want %d", got, i)
		}
	}
	var syncErr error
	called := false
	writeErr, fatal := g.Commit(true, func(err error) { syncErr, called = err, true })
	if writeErr != nil || fatal != nil || syncErr != nil || !called {
		t.Fatalf("Commit: write %v, fatal %v, sync %v, durable called %v", writeErr, fatal, syncErr, called)
	}
}

func recordsFrom(first, last uint64) []testRecord {
	var want []testRecord
	for i := first; i <= last; i++ {
		want = append(want, testRecord{i, string(payloadOf(i))})
	}
	return want
}

// segmentedLog builds a log whose segments start at the given indexes
// (the first must be 1) and whose last record is last, each record its
// own batch.
func segmentedLog(t *testing.T, d *memDisk, starts []uint64, last uint64) (*Log, *GroupCommit) {
	t.Helper()
	w, _ := openTestLog(t, d, 0)
	g := NewGroupCommit(w, 1<<20)
	for _, s := range starts[1:] {
		for w.NextIndex() < s {
			appendBatch(t, g, 1)
		}
		if err := w.Roll(s); err != nil {
			t.Fatal(err)
		}
		g.Rolled()
	}
	for w.NextIndex() <= last {
		appendBatch(t, g, 1)
	}
	return w, g
}

func TestLogTruncateFrom(t *testing.T) {
	// Segments start at 1, 5 and 9; records run to 12.
	starts := []uint64{1, 5, 9}
	cases := []struct {
		name     string
		from     uint64
		segments int // after the cut
	}{
		{"within the last segment", 11, 3},
		{"at the last record", 12, 3},
		{"at the last segment's first index", 9, 3},
		{"within a sealed segment", 7, 2},
		{"at a sealed segment's first index", 5, 2},
		{"within the first segment", 3, 1},
		{"at the log's first index", 1, 1},
		{"past the end: nothing", 13, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newMemDisk()
			w, g := segmentedLog(t, d, starts, 12)
			if err := w.TruncateFrom(c.from); err != nil {
				t.Fatalf("TruncateFrom(%d): %v", c.from, err)
			}
			g.Rebased()
			if w.NextIndex() != c.from {
				t.Fatalf("NextIndex after the cut = %d, want %d", w.NextIndex(), c.from)
			}
			if w.Segments() != c.segments {
				t.Fatalf("%d segments after the cut, want %d", w.Segments(), c.segments)
			}
			for _, s := range starts {
				_, exists := d.files[walName(s)]
				if want := slices.Index(starts, s) < c.segments; exists != want {
					t.Fatalf("%s exists = %v, want %v", walName(s), exists, want)
				}
			}
			// New records after the cut carry other payloads: recovery must
			// see exactly the kept prefix and them.
			for range 3 {
				i := g.log.NextIndex()
				g.Add(recordSet, []byte(fmt.Sprintf("new %d", i)))
			}
			if writeErr, fatal := g.Commit(false, func(error) {}); writeErr != nil || fatal != nil {
				t.Fatal(writeErr, fatal)
			}
			w.Close()
			d.crash() // everything the cut and the appends relied on was synced
			w2, got := openTestLog(t, d, 0)
			defer w2.Close()
			want := recordsFrom(1, min(c.from-1, 12))
			for i := c.from; i < c.from+3; i++ {
				want = append(want, testRecord{i, fmt.Sprintf("new %d", i)})
			}
			if !slices.Equal(got, want) {
				t.Fatalf("recovered %v\nwant %v", got, want)
			}
			if w2.NextIndex() != c.from+3 {
				t.Fatalf("recovered NextIndex %d, want %d", w2.NextIndex(), c.from+3)
			}
		})
	}
}

// The cut is durable before TruncateFrom returns: a crash right after it
// does not bring the cut records back.
func TestLogTruncateFromIsDurable(t *testing.T) {
	d := newMemDisk()
	w, _ := segmentedLog(t, d, []uint64{1, 5}, 8)
	if err := w.TruncateFrom(3); err != nil {
		t.Fatal(err)
	}
	w.Close()
	d.crash()
	w2, got := openTestLog(t, d, 0)
	defer w2.Close()
	if want := recordsFrom(1, 2); !slices.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

func TestLogTruncateFromBelowTheLogPanics(t *testing.T) {
	d := newMemDisk()
	w, _ := openTestLog(t, d, 10) // the log starts at 11
	g := NewGroupCommit(w, 1<<20)
	appendBatch(t, g, 3)
	mustPanic(t, "dkv: assertion failed: TruncateFrom: cut below the oldest segment", func() { _ = w.TruncateFrom(10) })
}

func TestLogReset(t *testing.T) {
	d := newMemDisk()
	w, g := segmentedLog(t, d, []uint64{1, 5, 9}, 12)
	if err := w.Reset(100); err != nil {
		t.Fatal(err)
	}
	g.Rebased()
	names, _ := d.List()
	if want := []string{walName(100)}; !slices.Equal(names, want) {
		t.Fatalf("files after Reset: %v, want %v", names, want)
	}
	if w.NextIndex() != 100 || w.FirstIndex() != 100 || w.Segments() != 1 || w.TotalBytes() != 0 {
		t.Fatalf("after Reset: next %d, first %d, %d segments, %d bytes", w.NextIndex(), w.FirstIndex(), w.Segments(), w.TotalBytes())
	}
	appendBatch(t, g, 2)
	w.Close()
	d.crash()
	// As after installing a snapshot at 99.
	w2, got := openTestLog(t, d, 99)
	defer w2.Close()
	if want := recordsFrom(100, 101); !slices.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	if w2.NextIndex() != 102 {
		t.Fatalf("recovered NextIndex %d, want 102", w2.NextIndex())
	}
}

// mustPanic runs f and checks that it panics with a message holding want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q, want %q", msg, want)
		}
	}()
	f()
}

var errInjected = errors.New("injected fault")

// failOnce fails the first call of op on a file whose name has the prefix.
func failOnce(op, prefix string) func(string, string) error {
	done := false
	return func(o, name string) error {
		if !done && o == op && strings.HasPrefix(name, prefix) {
			done = true
			return errInjected
		}
		return nil
	}
}

// logAfterAFailedRoll is a log of before records, then a roll whose
// directory sync failed (its file made and removed, not durably), then
// after records, which go on in the first segment.
func logAfterAFailedRoll(t *testing.T, before, after int) (*memDisk, *GroupCommit) {
	t.Helper()
	d := newMemDisk()
	g := newTestGroupCommit(t, d, 0, 1<<20)
	appendBatch(t, g, before)
	d.fail = failOnce("syncdir", "")
	if err := g.log.Roll(g.log.NextIndex()); err == nil {
		t.Fatal("the roll did not fail")
	}
	d.fail = nil
	if after > 0 {
		appendBatch(t, g, after)
	}
	return d, g
}

// A roll whose directory sync fails leaves no segment file behind, and a
// stale empty one (a crash brought it back) is removed at recovery: before,
// the next start refused the log ("wal-…2.log starts at index 2, expected
// 3"), and the cleanup of segments a snapshot covers could have removed
// the segment before it, which held records the snapshot lacked (found by
// review).
func TestFailedRollLeavesNoSegmentBehind(t *testing.T) {
	d, g := logAfterAFailedRoll(t, 1, 2) // the batch goes on in the old segment: 2 and 3
	if err := g.log.Roll(g.log.NextIndex()); err != nil {
		t.Fatal(err)
	}
	g.Rolled()
	appendBatch(t, g, 1)
	g.log.Close()
	if names, _ := d.List(); !slices.Equal(names, []string{walName(1), walName(4)}) {
		t.Fatalf("files %v, want %s and %s", names, walName(1), walName(4))
	}
	w, got := openTestLog(t, d, 0)
	w.Close()
	if len(got) != 4 {
		t.Fatalf("recovered %d records, want 4", len(got))
	}

	// The failed roll's file is back, as a crash before the directory
	// sync of its remove may bring it; a snapshot covers index 1. Its name
	// says the first segment ends at 1, which the snapshot covers.
	d.put(walName(2), nil)
	w, got = openTestLog(t, d, 1)
	w.Close()
	if len(got) != 3 || got[0].index != 2 {
		t.Fatalf("recovered %v after the snapshot at 1, want records 2, 3 and 4", got)
	}
	if names, _ := d.List(); slices.Contains(names, walName(2)) {
		t.Fatalf("the stale empty segment is still there: %v", names)
	}

	// The failed roll's file is back and last: no roll came after it, and
	// the segment before it is the log's last.
	d, g = logAfterAFailedRoll(t, 1, 2)
	g.log.Close()
	d.put(walName(2), nil)
	w, got = openTestLog(t, d, 0)
	if len(got) != 3 || w.NextIndex() != 4 || w.lastName() != walName(1) {
		t.Fatalf("recovered %v, next index %d, last segment %s: want 3 records, 4, %s", got, w.NextIndex(), w.lastName(), walName(1))
	}
	g = NewGroupCommit(w, 1<<20)
	appendBatch(t, g, 1) // the log goes on where it was
	w.Close()
	if w, got = openTestLog(t, d, 0); len(got) != 4 {
		t.Fatalf("recovered %d records after another batch, want 4", len(got))
	}
	w.Close()
}

// Recoveries that cut a torn tail at the same offset keep every cut, each
// in a file of its own: the second used to truncate the first's copy (found
// by review).
func TestTornTailCutsAtOneOffsetAreAllKept(t *testing.T) {
	d := newMemDisk()
	g := newTestGroupCommit(t, d, 0, 1<<20)
	appendBatch(t, g, 2)
	g.log.Close()
	seg := walName(1)
	good := len(d.bytes(seg))
	torn := func(payload string) []byte {
		rec := appendRecord(nil, recordSet, 3, []byte(payload))
		return rec[:len(rec)-5] // cut by the file's end
	}
	for _, payload := range []string{"the first torn batch", "a second, other torn batch"} {
		d.put(seg, append(slices.Clone(d.bytes(seg)[:good]), torn(payload)...))
		w, _ := openTestLog(t, d, 0)
		w.Close()
	}
	first, second := fmt.Sprintf("%s.cut-%d", seg, good), fmt.Sprintf("%s.cut-%d.2", seg, good)
	for _, c := range []struct{ name, payload string }{{first, "the first torn batch"}, {second, "a second, other torn batch"}} {
		rec := appendRecord(nil, recordSet, 3, []byte(c.payload))
		if want := rec[:len(rec)-5]; !bytes.Equal(d.bytes(c.name), want) {
			t.Fatalf("%s holds %q, want the cut %q", c.name, d.bytes(c.name), want)
		}
	}
}

// A batch whose fsync failed the ext4 way (its pages kept readable and
// clean, never to be written) is not read back by recovery: the last
// segment's clean pages are dropped first (CacheDropper), so the restart
// reads what the medium holds. Two ways lead there: a process that died
// after the failed fsync but before its cut, and a start whose own fsync of
// a crashed process's unsynced tail failed. Read as written, the batch was
// served, batches acknowledged after it, and a power loss then left a hole
// of zeros before them.
func TestRecoveryDoesNotReadPagesAFailedSyncKept(t *testing.T) {
	for _, c := range []struct {
		name string
		fail func(t *testing.T, d *memDisk)
	}{
		{"a crash before the cut", func(t *testing.T, d *memDisk) {
			w, _ := openTestLog(t, d, 0)
			g := NewGroupCommit(w, 1<<20)
			g.Add(recordSet, payloadOf(2))
			d.fail = failOnce("sync", walName(1))
			// The process dies after the failed fsync, before the cut:
			// as if the cut never ran.
			g.mutation = MutFailedSyncKept
			var syncErr error
			if writeErr, fatal := g.Commit(true, func(err error) { syncErr = err }); writeErr != nil || fatal != nil || syncErr == nil {
				t.Fatalf("Commit: write %v, fatal %v, sync %v: want the sync failed", writeErr, fatal, syncErr)
			}
			// What the failed batch wrote is still in the file, as written.
			if w.Size() == int64(len(d.files[walName(1)].synced)) {
				t.Fatal("the failed batch is not in the file to be read back")
			}
		}},
		{"recovery's own sync fails", func(t *testing.T, d *memDisk) {
			// A crashed process's batch, written, its sync still pending.
			d.async = true
			w, _ := openTestLog(t, d, 0)
			g := NewGroupCommit(w, 1<<20)
			g.Add(recordSet, payloadOf(2))
			if writeErr, fatal := g.Commit(false, func(error) {}); writeErr != nil || fatal != nil {
				t.Fatalf("Commit: %v, %v", writeErr, fatal)
			}
			w.Close()
			d.pending, d.async = nil, false
			d.fail = failOnce("sync", walName(1))
			names, _ := d.List()
			if _, err := OpenLog(d, names, 0, nil, func(Record) error { return nil }, t.Logf); err == nil {
				t.Fatal("recovery's sync failed, yet it opened the log")
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newMemDisk()
			d.keepFailedPages = true
			g := newTestGroupCommit(t, d, 0, 1<<20)
			appendBatch(t, g, 1) // record 1, durable
			g.log.Close()
			c.fail(t, d)
			d.fail = nil
			w, got := openTestLog(t, d, 0)
			if !slices.Equal(got, recordsFrom(1, 1)) {
				t.Fatalf("recovered %v, want record 1 alone: the batch that never reached the disk was read back", got)
			}
			g = NewGroupCommit(w, 1<<20)
			appendBatch(t, g, 1) // acknowledged
			w.Close()
			d.crash() // the power goes
			w, got = openTestLog(t, d, 0)
			w.Close()
			if !slices.Equal(got, recordsFrom(1, 2)) {
				t.Fatalf("after a power loss recovered %v, want records 1 and 2", got)
			}
		})
	}
}

// A failed roll's file that a crash brought back as the last segment,
// with a snapshot through the index before its name: the snapshot does not
// cover the segment before it, which holds the records the failed roll
// was named for. Recovery took the empty file's name for proof that the
// segment before ended at the snapshot, and removed it with the records
// after the snapshot: a cluster leader lost its term's first entry, which
// it had counted toward its commit (simulator, cluster seed 106716).
func TestFailedRollFileBackAfterTheSnapshot(t *testing.T) {
	d, g := logAfterAFailedRoll(t, 1, 2) // the snapshot below covers it; then records 2 and 3, in the first segment
	g.log.Close()
	d.put(walName(2), nil) // the failed roll's file, back
	w, got := openTestLog(t, d, 1)
	if !slices.Equal(got, recordsFrom(2, 3)) || w.NextIndex() != 4 || w.lastName() != walName(1) {
		t.Fatalf("recovered %v, next index %d, last segment %s after the snapshot at 1: want records 2 and 3, 4, %s", got, w.NextIndex(), w.lastName(), walName(1))
	}
	g = NewGroupCommit(w, 1<<20)
	appendBatch(t, g, 1) // the log goes on where it was
	w.Close()
	if w, got := openTestLog(t, d, 1); !slices.Equal(got, recordsFrom(2, 4)) {
		t.Fatalf("recovered %v after another batch, want records 2 to 4", got)
	} else {
		w.Close()
	}
}

// A roll whose directory sync failed, on a disk that reserves space ahead
// of the log (disk.File, a Reserver): the batch goes on in the segment
// before, behind which the turn reserves zeros again, and a crash may
// bring the failed roll's empty file back as the last segment. The
// segment before it is then the log's true last, with a tail (reserved
// zeros, or a batch the crash tore) that is no damage: recovery used to
// read it as a sealed segment and refuse the start ("bad record at offset
// … in a sealed segment"), so TestFailedRollLeavesNoSegmentBehind's
// recovery of that file held only on a disk without reserved space
// (found by review). A sealed segment whose successor is empty and named
// where it should end is still refused when its tail is bad.
func TestFailedRollFileBackAfterATail(t *testing.T) {
	zeros := make([]byte, 4096) // what Reserve leaves, synced by the batch after it
	for _, c := range []struct {
		name string
		// batches after the failed roll, then what follows them in the
		// segment before
		after int
		tail  func() []byte
		want  int // records recovered
	}{
		{"reserved zeros, no batch after the failed roll", 0, func() []byte { return zeros }, 1},
		{"a batch after the failed roll, then reserved zeros", 2, func() []byte { return zeros }, 3},
		{"a batch after the failed roll, then a torn one", 2, func() []byte {
			rec := appendRecord(nil, recordSet|recordBatchEnd, 4, payloadOf(4))
			return append(rec[:len(rec)-3:len(rec)-3], zeros...) // cut short: its end never written
		}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, g := logAfterAFailedRoll(t, 1, 0)
			if c.after > 0 {
				appendBatch(t, g, c.after)
			}
			g.log.Close()
			d.put(walName(1), append(slices.Clone(d.bytes(walName(1))), c.tail()...))
			d.put(walName(2), nil) // the failed roll's file, back
			names, _ := d.List()
			w, err := OpenLog(d, names, 0, nil, func(Record) error { return nil }, t.Logf)
			if err != nil {
				t.Fatalf("recovery refused the log a failed roll and a crash left: %v", err)
			}
			if w.NextIndex() != uint64(c.want)+1 || w.lastName() != walName(1) {
				t.Fatalf("next index %d, last segment %s: want %d, %s", w.NextIndex(), w.lastName(), c.want+1, walName(1))
			}
			g = NewGroupCommit(w, 1<<20)
			appendBatch(t, g, 1) // the log goes on where it was
			w.Close()
			if w, got := openTestLog(t, d, 0); !slices.Equal(got, recordsFrom(1, uint64(c.want)+1)) {
				t.Fatalf("recovered %v after another batch, want records 1 to %d", got, c.want+1)
			} else {
				w.Close()
			}
		})
	}

	// A roll that did its work: the segment before was cut to its last
	// record, synced, then the new one made. A bad tail there is damage,
	// empty successor or not.
	d := newMemDisk()
	g := newTestGroupCommit(t, d, 0, 1<<20)
	appendBatch(t, g, 3)
	if err := g.log.Roll(g.log.NextIndex()); err != nil {
		t.Fatal(err)
	}
	g.log.Close()
	seg := slices.Clone(d.bytes(walName(1)))
	clear(seg[len(seg)-4:]) // the last record's end, zeroed at rest
	d.put(walName(1), seg)
	names, _ := d.List()
	if _, err := OpenLog(d, names, 0, nil, func(Record) error { return nil }, t.Logf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a sealed segment's damaged last record before an empty segment: %v, want ErrCorrupt", err)
	}
}

// Recovery says how far its replay has come each time it has read another
// progressBytes of log (replayProgressBytes: a gigabyte), so that a long
// replay is not a silent one; a log shorter than that says nothing.
func TestRecoveryLogsItsProgress(t *testing.T) {
	d := newMemDisk()
	w, _ := segmentedLog(t, d, []uint64{1, 11, 21, 31, 41}, 50)
	w.Close()
	seg := int64(len(d.bytes(walName(1))))
	replay := func(progressBytes int64) []string {
		names, _ := d.List()
		var lines []string
		w, err := openLogWith(d, names, 0, nil, func(Record) error { return nil }, func(f string, a ...any) {
			if line := fmt.Sprintf(f, a...); strings.HasPrefix(line, "replaying the log") {
				lines = append(lines, line)
			}
		}, MutNone, true, progressBytes)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		return lines
	}
	got := replay(2 * seg)
	want := []string{
		fmt.Sprintf("replaying the log: 2 of 5 segments read (%d MiB), through index 20", 2*seg>>20),
		fmt.Sprintf("replaying the log: 4 of 5 segments read (%d MiB), through index 40", 4*seg>>20),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("progress lines %q, want %q", got, want)
	}
	if got := replay(replayProgressBytes); len(got) != 0 {
		t.Fatalf("a short log logged its progress: %q", got)
	}
}
