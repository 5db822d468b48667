package core

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// newTestGroupCommit starts a group commit on a fresh log of d whose first
// record will be snapIndex+1.
func newTestGroupCommit(t *testing.T, d *memDisk, snapIndex uint64, batchBytesMax int) *GroupCommit {
	t.Helper()
	w, _ := openTestLog(t, d, snapIndex)
	return NewGroupCommit(w, batchBytesMax)
}

// durableCalls collects the calls of a Commit's durable callback.
type durableCalls struct{ errs []error }

func (c *durableCalls) fn(err error) { c.errs = append(c.errs, err) }

func TestGroupCommitAddAssignsConsecutiveIndexes(t *testing.T) {
	for _, c := range []struct {
		snapIndex     uint64
		batchBytesMax int
	}{
		{0, 1 << 20},
		{0, 1}, // every record written out early
		{41, 64},
	} {
		t.Run(fmt.Sprintf("after %d, batch %d", c.snapIndex, c.batchBytesMax), func(t *testing.T) {
			g := newTestGroupCommit(t, newMemDisk(), c.snapIndex, c.batchBytesMax)
			next := c.snapIndex + 1
			for batch := range 3 {
				if g.FirstIndex() != next {
					t.Fatalf("batch %d: FirstIndex %d, want %d", batch, g.FirstIndex(), next)
				}
				for r := range 4 {
					if got := g.Add(recordSet, payloadOf(next)); got != next {
						t.Fatalf("batch %d record %d: Add returned %d, want %d", batch, r, got, next)
					}
					next++
					if g.Records() != r+1 {
						t.Fatalf("Records = %d, want %d", g.Records(), r+1)
					}
				}
				if writeErr, fatal := g.Commit(false, func(error) {}); writeErr != nil || fatal != nil {
					t.Fatal(writeErr, fatal)
				}
				if g.Records() != 0 || g.log.NextIndex() != next {
					t.Fatalf("after Commit: %d records open, NextIndex %d, want 0, %d", g.Records(), g.log.NextIndex(), next)
				}
			}
		})
	}
}

// decodeAll decodes every record of a segment's bytes, failing on
// anything that is not a whole record.
func decodeAll(t interface{ Fatalf(string, ...any) }, data []byte) []Record {
	var recs []Record
	for off := 0; off < len(data); {
		rec, n, err := decodeRecord(data[off:])
		if err != nil {
			t.Fatalf("record at offset %d: %v", off, err)
		}
		recs = append(recs, rec)
		off += n
	}
	return recs
}

// Property: whatever the sizes of records and batches and the early-write
// bound, the log holds every record in order with consecutive indexes, and
// exactly the last record of each batch carries the batch-end bit.
func TestGroupCommitMarksBatchEnds(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		batchBytesMax := rapid.IntRange(1, 300).Draw(rt, "batchBytesMax")
		inline := rapid.Bool().Draw(rt, "inline")
		d := newMemDisk()
		d.async = rapid.Bool().Draw(rt, "async")
		w, err := OpenLog(d, nil, 0, nil, func(Record) error { return nil }, func(string, ...any) {})
		if err != nil {
			rt.Fatal(err)
		}
		g := NewGroupCommit(w, batchBytesMax)
		var wantPayloads []string
		var wantEnds []bool
		batches := rapid.SliceOfN(rapid.SliceOfN(rapid.IntRange(0, 200), 0, 6), 1, 8).Draw(rt, "batches")
		for b, sizes := range batches {
			for r, size := range sizes {
				p := strings.Repeat(string(rune('a'+b%26)), size) + fmt.Sprint(r)
				g.Add(recordSet, []byte(p))
				wantPayloads = append(wantPayloads, p)
				wantEnds = append(wantEnds, r == len(sizes)-1)
			}
			var calls durableCalls
			if writeErr, fatal := g.Commit(inline, calls.fn); writeErr != nil || fatal != nil {
				rt.Fatal(writeErr, fatal)
			}
			for len(d.pending) > 0 {
				d.completeSync()
			}
			if len(calls.errs) != 1 || calls.errs[0] != nil {
				rt.Fatalf("batch %d: durable calls %v", b, calls.errs)
			}
		}
		recs := decodeAll(rt, d.bytes(walName(1)))
		if len(recs) != len(wantPayloads) {
			rt.Fatalf("%d records in the log, want %d", len(recs), len(wantPayloads))
		}
		for i, rec := range recs {
			if rec.Index != uint64(i+1) || string(rec.Payload) != wantPayloads[i] {
				rt.Fatalf("record %d: index %d payload %q, want %d %q", i, rec.Index, rec.Payload, i+1, wantPayloads[i])
			}
			if rec.BatchEnd != wantEnds[i] {
				rt.Fatalf("record %d (index %d): batch end %v, want %v (batchBytesMax %d)", i, rec.Index, rec.BatchEnd, wantEnds[i], batchBytesMax)
			}
		}
	})
}

// Damage to a synced batch with a later complete batch after it is
// corruption, refused at recovery, also when the damaged batch's last
// record was big enough to be written out early: its batch-end bit is what
// proves that the batch after it was written once it was synced.
func TestGroupCommitEarlyWrittenBatchEndsAreMarked(t *testing.T) {
	d := newMemDisk()
	g := newTestGroupCommit(t, d, 0, 64)
	g.Add(recordSet, []byte("a"))
	g.Add(recordSet, []byte(strings.Repeat("x", 100))) // over the bound: written early
	if writeErr, fatal := g.Commit(false, func(error) {}); writeErr != nil || fatal != nil {
		t.Fatal(writeErr, fatal)
	}
	appendBatch(t, g, 1) // the next batch, the last
	g.log.Close()
	name := walName(1)
	d.files[name].data[recordHeaderBytes] ^= 0xff // damage record 1
	names, _ := d.List()
	_, err := OpenLog(d, names, 0, nil, func(Record) error { return nil }, t.Logf)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenLog = %v; want ErrCorrupt, not records 2 and 3 (acknowledged) cut off as a torn tail", err)
	}
}

// A batch over batchBytesMax is written out before Commit (bounding the
// memory it holds), but never while another batch's fsync is in flight;
// either way it is synced only at Commit.
func TestGroupCommitEarlyWrite(t *testing.T) {
	d := newMemDisk()
	d.async = true
	g := newTestGroupCommit(t, d, 0, 64)
	name := walName(1)
	big := []byte(strings.Repeat("x", 100)) // one record is over the bound

	g.Add(recordSet, []byte("a"))
	if d.bytes(name) != nil || !g.Unwritten() {
		t.Fatal("a batch under the bound was written before Commit")
	}
	g.Add(recordSet, big)
	g.Add(recordSet, []byte("b"))
	if len(d.bytes(name)) == 0 || g.Unwritten() {
		t.Fatal("a batch over the bound was not written out early")
	}
	if slices.ContainsFunc(d.ops, func(op string) bool { return strings.HasPrefix(op, "sync wal") }) {
		t.Fatalf("an early write was synced before Commit: %v", d.ops)
	}
	var first durableCalls
	if writeErr, fatal := g.Commit(false, first.fn); writeErr != nil || fatal != nil {
		t.Fatal(writeErr, fatal)
	}
	if !g.Syncing() || len(first.errs) != 0 {
		t.Fatalf("Syncing %v, durable called %d times: want a sync in flight", g.Syncing(), len(first.errs))
	}

	// The next batch grows past the bound while the first syncs.
	size := len(d.bytes(name))
	ops := len(d.ops)
	g.Add(recordSet, big)
	g.Add(recordSet, big)
	if len(d.bytes(name)) != size || len(d.ops) != ops {
		t.Fatalf("written while a sync was in flight: %v", d.opsSince(ops))
	}
	if g.Unwritten() {
		t.Fatal("Unwritten with a sync in flight: the log must not roll under it")
	}
	d.completeSync()
	if g.Syncing() || len(first.errs) != 1 || first.errs[0] != nil {
		t.Fatalf("after the sync: Syncing %v, durable calls %v", g.Syncing(), first.errs)
	}
	if !g.Unwritten() {
		t.Fatal("nothing of the second batch is written yet: Unwritten must say so")
	}
	// Once the sync is done, the next Add may write the batch out.
	g.Add(recordSet, []byte("c"))
	if len(d.bytes(name)) == size {
		t.Fatal("the batch over the bound was not written out once the sync was done")
	}
	var second durableCalls
	if writeErr, fatal := g.Commit(false, second.fn); writeErr != nil || fatal != nil {
		t.Fatal(writeErr, fatal)
	}
	d.completeSync()
	if len(second.errs) != 1 || second.errs[0] != nil {
		t.Fatalf("second batch durable calls %v", second.errs)
	}
	recs := decodeAll(t, d.bytes(name))
	var ends []uint64
	for _, r := range recs {
		if r.BatchEnd {
			ends = append(ends, r.Index)
		}
	}
	if len(recs) != 6 || !slices.Equal(ends, []uint64{3, 6}) {
		t.Fatalf("%d records, batch ends at %v; want 6, [3 6]", len(recs), ends)
	}
}

// A write that fails undoes its batch: the file is cut back to where the
// batch began and the cut synced, NextIndex goes back to the batch's first
// index, durable is not called, and the next batch reuses the indexes.
func TestGroupCommitWriteFailureUndoesBatch(t *testing.T) {
	cases := []struct {
		name          string
		batchBytesMax int
		failAppend    int // which append of the batch fails (1-based)
		short         int // bytes of the failing append that land
		inline        bool
		async         bool
	}{
		{"at commit, nothing landed", 1 << 20, 1, 0, false, false},
		{"at commit, part landed", 1 << 20, 1, 20, false, false},
		{"at commit on an async file", 1 << 20, 1, 20, false, true},
		{"inline on an async file", 1 << 20, 1, 20, true, true},
		{"early write, part landed", 40, 1, 30, false, false},
		{"second early write", 40, 2, 5, false, false},
		{"the write at commit after early ones", 40, 3, 7, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newMemDisk()
			d.async = c.async
			g := newTestGroupCommit(t, d, 0, c.batchBytesMax)
			name := walName(1)
			appendBatch(t, g, 2) // records 1, 2 are durable
			before := slices.Clone(d.bytes(name))
			added := g.BytesAdded()

			appends := 0
			d.short = c.short
			d.fail = func(op, _ string) error {
				if op == "append" {
					appends++
					if appends == c.failAppend {
						return fmt.Errorf("%w: %w", ErrDiskFull, errInjected)
					}
				}
				return nil
			}
			ops := len(d.ops)
			for i := uint64(3); i <= 8; i++ {
				if got := g.Add(recordSet, payloadOf(i)); got != i {
					t.Fatalf("Add returned %d, want %d", got, i)
				}
			}
			var calls durableCalls
			writeErr, fatal := g.Commit(c.inline, calls.fn)
			d.fail = nil
			if appends < c.failAppend {
				t.Fatalf("only %d appends: the case does not test what it says", appends)
			}
			if !errors.Is(writeErr, ErrDiskFull) || fatal != nil {
				t.Fatalf("Commit = write %v, fatal %v; want a disk-full write error", writeErr, fatal)
			}
			if len(calls.errs) != 0 || len(d.pending) != 0 || g.Syncing() {
				t.Fatalf("durable called %d times, %d syncs pending after a failed write", len(calls.errs), len(d.pending))
			}
			if got := d.bytes(name); !slices.Equal(got, before) {
				t.Fatalf("the file holds %d bytes after the undo, want the %d before the batch", len(got), len(before))
			}
			// The cut is synced after the failed write, before anything else.
			after := d.opsSince(ops)
			failed := slices.IndexFunc(after, func(op string) bool { return strings.HasSuffix(op, "failed") })
			want := []string{fmt.Sprintf("truncate %s %d", name, len(before)), "sync " + name}
			if failed < 0 || !slices.Equal(after[failed+1:], want) {
				t.Fatalf("ops after the failed write: %v, want %v", after[failed+1:], want)
			}
			if g.log.NextIndex() != 3 || g.FirstIndex() != 3 || g.Records() != 0 {
				t.Fatalf("after the undo: NextIndex %d, FirstIndex %d, %d records; want 3, 3, 0", g.log.NextIndex(), g.FirstIndex(), g.Records())
			}
			if g.BytesAdded() <= added {
				t.Fatalf("BytesAdded %d did not count the failed batch (was %d)", g.BytesAdded(), added)
			}
			// The next batch goes on at the same indexes.
			appendBatch(t, g, 2)
			g.log.Close()
			d.crash()
			w, got := openTestLog(t, d, 0)
			defer w.Close()
			if want := recordsFrom(1, 4); !slices.Equal(got, want) {
				t.Fatalf("recovered %v, want %v", got, want)
			}
		})
	}
}

// When the undo itself fails, the log's state is unknown: Commit reports it
// as fatal, beside the write error.
func TestGroupCommitFailedUndoIsFatal(t *testing.T) {
	for _, undoOp := range []string{"truncate", "sync"} {
		t.Run(undoOp, func(t *testing.T) {
			d := newMemDisk()
			g := newTestGroupCommit(t, d, 0, 1<<20)
			appendBatch(t, g, 1)
			d.short = 10
			d.fail = func(op, _ string) error {
				if op == "append" || op == undoOp {
					return errInjected
				}
				return nil
			}
			g.Add(recordSet, payloadOf(2))
			var calls durableCalls
			writeErr, fatal := g.Commit(false, calls.fn)
			if writeErr == nil || fatal == nil || !errors.Is(fatal, errInjected) {
				t.Fatalf("Commit = write %v, fatal %v; want both", writeErr, fatal)
			}
			if !strings.Contains(fatal.Error(), "stopping") {
				t.Fatalf("fatal error %q does not say the node stops", fatal)
			}
			if len(calls.errs) != 0 {
				t.Fatalf("durable called after a failed write: %v", calls.errs)
			}
		})
	}
}

// durable is called exactly once per batch, with the sync's error (wrapped,
// naming the file); inline syncs before Commit returns even on an AsyncFile.
func TestGroupCommitDurable(t *testing.T) {
	for _, c := range []struct {
		async, inline, syncFails bool
		inCommit                 bool // durable runs before Commit returns
	}{
		{false, false, false, true},
		{false, false, true, true},
		{false, true, false, true},
		{true, false, false, false},
		{true, false, true, false},
		{true, true, false, true},
		{true, true, true, true},
	} {
		t.Run(fmt.Sprintf("async=%v inline=%v syncFails=%v", c.async, c.inline, c.syncFails), func(t *testing.T) {
			d := newMemDisk()
			d.async = c.async
			g := newTestGroupCommit(t, d, 0, 1<<20)
			if c.syncFails {
				d.fail = failOnce("sync", walPrefix)
			}
			g.Add(recordSet, payloadOf(1))
			ops := len(d.ops)
			var calls durableCalls
			if writeErr, fatal := g.Commit(c.inline, calls.fn); writeErr != nil || fatal != nil {
				t.Fatal(writeErr, fatal)
			}
			if c.inCommit {
				if len(d.pending) != 0 || g.Syncing() {
					t.Fatalf("a background sync was started: %v", d.opsSince(ops))
				}
			} else {
				if len(calls.errs) != 0 || !g.Syncing() {
					t.Fatalf("durable called %d times before the background sync ran", len(calls.errs))
				}
				mustPanic(t, "Commit with a sync in flight", func() { g.Commit(false, calls.fn) })
				d.completeSync()
			}
			if len(calls.errs) != 1 {
				t.Fatalf("durable called %d times, want once", len(calls.errs))
			}
			err := calls.errs[0]
			if c.syncFails != (err != nil) {
				t.Fatalf("durable(%v), sync fails %v", err, c.syncFails)
			}
			if c.syncFails && (!errors.Is(err, errInjected) || !strings.Contains(err.Error(), walName(1))) {
				t.Fatalf("sync error %q does not wrap the cause and name the file", err)
			}
			if g.Syncing() {
				t.Fatal("still Syncing after durable was called")
			}
		})
	}
}

// An empty batch is durable at once, and writes nothing.
func TestGroupCommitEmptyBatch(t *testing.T) {
	d := newMemDisk()
	d.async = true
	g := newTestGroupCommit(t, d, 0, 1<<20)
	ops := len(d.ops)
	var calls durableCalls
	if writeErr, fatal := g.Commit(false, calls.fn); writeErr != nil || fatal != nil {
		t.Fatal(writeErr, fatal)
	}
	if len(calls.errs) != 1 || calls.errs[0] != nil || len(d.ops) != ops || g.Syncing() {
		t.Fatalf("durable calls %v, ops %v", calls.errs, d.opsSince(ops))
	}
}

func TestGroupCommitPreconditions(t *testing.T) {
	t.Run("Rolled while syncing", func(t *testing.T) {
		d := newMemDisk()
		d.async = true
		g := newTestGroupCommit(t, d, 0, 1<<20)
		g.Add(recordSet, payloadOf(1))
		g.Commit(false, func(error) {})
		mustPanic(t, "the log rolls only between batches", g.Rolled)
	})
	t.Run("Rolled onto a non-empty segment", func(t *testing.T) {
		g := newTestGroupCommit(t, newMemDisk(), 0, 1<<20)
		appendBatch(t, g, 1)
		mustPanic(t, "the log rolls only between batches", g.Rolled)
	})
	t.Run("Rebased with records open", func(t *testing.T) {
		g := newTestGroupCommit(t, newMemDisk(), 0, 1<<20)
		g.Add(recordSet, payloadOf(1))
		mustPanic(t, "the log changes under an empty batch only", g.Rebased)
	})
	t.Run("Rebased while syncing", func(t *testing.T) {
		d := newMemDisk()
		d.async = true
		g := newTestGroupCommit(t, d, 0, 1<<20)
		g.Add(recordSet, payloadOf(1))
		g.Commit(false, func(error) {})
		mustPanic(t, "the log changes under an empty batch only", g.Rebased)
	})
	t.Run("batchBytesMax zero", func(t *testing.T) {
		w, _ := openTestLog(t, newMemDisk(), 0)
		mustPanic(t, "batchBytesMax must be positive", func() { NewGroupCommit(w, 0) })
	})
	t.Run("Rolled then a batch in the new segment", func(t *testing.T) {
		d := newMemDisk()
		g := newTestGroupCommit(t, d, 0, 1<<20)
		appendBatch(t, g, 2)
		if err := g.log.Roll(g.FirstIndex()); err != nil {
			t.Fatal(err)
		}
		g.Rolled()
		appendBatch(t, g, 2)
		if recs := decodeAll(t, d.bytes(walName(3))); len(recs) != 2 || recs[0].Index != 3 {
			t.Fatalf("new segment holds %v", recs)
		}
	})
	t.Run("Rebased after a cut", func(t *testing.T) {
		g := newTestGroupCommit(t, newMemDisk(), 0, 1<<20)
		appendBatch(t, g, 5)
		if err := g.log.TruncateFrom(3); err != nil {
			t.Fatal(err)
		}
		g.Rebased()
		if g.FirstIndex() != 3 || g.Add(recordSet, payloadOf(3)) != 3 {
			t.Fatalf("after Rebased the batch does not start at the cut")
		}
	})
}

// BytesAdded counts what was written out, failed batches included, and not
// what is still held in memory.
func TestGroupCommitBytesAdded(t *testing.T) {
	d := newMemDisk()
	g := newTestGroupCommit(t, d, 0, 1<<20)
	if g.BytesAdded() != 0 {
		t.Fatalf("BytesAdded %d on a fresh log", g.BytesAdded())
	}
	g.Add(recordSet, payloadOf(1))
	if g.BytesAdded() != 0 {
		t.Fatalf("BytesAdded %d counts a record still in memory", g.BytesAdded())
	}
	g.Commit(false, func(error) {})
	one := int64(len(d.bytes(walName(1))))
	if g.BytesAdded() != one {
		t.Fatalf("BytesAdded %d, file holds %d", g.BytesAdded(), one)
	}
	d.fail = failOnce("append", walPrefix)
	g.Add(recordSet, payloadOf(2))
	if writeErr, _ := g.Commit(false, func(error) {}); writeErr == nil {
		t.Fatal("the write did not fail")
	}
	if g.BytesAdded() != 2*one {
		t.Fatalf("BytesAdded %d after a failed batch of %d bytes, want %d", g.BytesAdded(), one, 2*one)
	}
	appendBatch(t, g, 1)
	if g.BytesAdded() != 3*one {
		t.Fatalf("BytesAdded %d, want %d", g.BytesAdded(), 3*one)
	}
}
