package core

import (
	"fmt"
	"slices"
	"testing"
)

// A failed roll's file (its create kept, its remove lost to a power loss)
// names where the segment before ends. A cluster node's TruncateFrom may
// cut that segment below the name: a new leader replaces entries this
// node logged after the failed roll. The cut itself touched no directory
// entry, so a crash after it could bring the file back named past the
// log's end, and recovery refused the good log ("wal-…6.log starts at
// index 6, expected 4"). The cut now makes the remove durable first.
func TestFailedRollFileBackAfterACutBelowIt(t *testing.T) {
	for _, fresh := range []int{0, 1, 2} { // the new leader's entries after the cut
		t.Run(fmt.Sprintf("%d entries after the cut", fresh), func(t *testing.T) {
			d, g := logAfterAFailedRoll(t, 5, 5) // 1 to 5; then 6 to 10, in the first segment
			if err := g.log.TruncateFrom(4); err != nil {
				t.Fatal(err)
			}
			g.Rebased()
			for range fresh {
				i := g.log.NextIndex()
				g.Add(recordSet, []byte(fmt.Sprintf("new %d", i)))
			}
			if fresh > 0 {
				if writeErr, fatal := g.Commit(false, func(error) {}); writeErr != nil || fatal != nil {
					t.Fatal(writeErr, fatal)
				}
			}
			g.log.Close()
			d.crash()
			// A power loss keeps what the last directory sync made
			// durable: the failed roll's file is back unless a sync came
			// after its remove.
			if !slices.Contains(d.ops[slices.Index(d.ops, "remove "+walName(6)):], "syncdir") {
				d.put(walName(6), nil)
			}
			w, got := openTestLog(t, d, 0) // fails the test if recovery refuses the log
			defer w.Close()
			want := recordsFrom(1, 3)
			for i := uint64(4); i < 4+uint64(fresh); i++ {
				want = append(want, testRecord{i, fmt.Sprintf("new %d", i)})
			}
			if !slices.Equal(got, want) || w.NextIndex() != 4+uint64(fresh) {
				t.Fatalf("recovered %v, next index %d; want %v, %d", got, w.NextIndex(), want, 4+fresh)
			}
		})
	}
}

// failRoll fails the directory sync of the next roll's create and, with
// removeToo, the remove of its file that follows.
func failRoll(d *memDisk, removeToo bool) func(string, string) error {
	syncdir := failOnce("syncdir", "")
	remove := failOnce("remove", walPrefix)
	return func(op, name string) error {
		if err := syncdir(op, name); err != nil {
			return err
		}
		if removeToo {
			return remove(op, name)
		}
		return nil
	}
}

// A failed roll whose file's remove failed too leaves the file in the
// directory, not in the log's segments. A cut below its name (a new
// leader's entries), or a reset to a fresh log before it (a leader's
// snapshot installed), left it named past the log's end, and the next
// start refused the good log. Both remove it first now.
func TestFailedRollFileLeftBehindByAFailedRemove(t *testing.T) {
	for _, c := range []struct {
		name string
		cut  func(g *GroupCommit) error
		snap uint64       // the snapshot the reset stands for
		want []testRecord // recovered, with one record "new 4" after the cut
	}{
		{"cut below it", func(g *GroupCommit) error { return g.log.TruncateFrom(4) }, 0,
			append(recordsFrom(1, 3), testRecord{4, "new 4"})},
		{"reset before it", func(g *GroupCommit) error { return g.log.Reset(4) }, 3,
			[]testRecord{{4, "new 4"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newMemDisk()
			g := newTestGroupCommit(t, d, 0, 1<<20)
			appendBatch(t, g, 5)
			d.fail = failRoll(d, true)
			if err := g.log.Roll(g.log.NextIndex()); err == nil {
				t.Fatal("the roll did not fail")
			}
			d.fail = nil
			if !slices.Contains(mustList(t, d), walName(6)) {
				t.Fatalf("the failed roll's file is gone: the remove did not fail")
			}
			appendBatch(t, g, 5) // 6 to 10, in the first segment
			if err := c.cut(g); err != nil {
				t.Fatal(err)
			}
			g.Rebased()
			g.Add(recordSet, []byte("new 4"))
			if writeErr, fatal := g.Commit(false, func(error) {}); writeErr != nil || fatal != nil {
				t.Fatal(writeErr, fatal)
			}
			g.log.Close()
			d.crash()
			w, got := openTestLog(t, d, c.snap)
			defer w.Close()
			if !slices.Equal(got, c.want) || w.NextIndex() != 5 {
				t.Fatalf("recovered %v, next index %d; want %v, 5", got, w.NextIndex(), c.want)
			}
		})
	}
}

func mustList(t *testing.T, d *memDisk) []string {
	t.Helper()
	names, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A failed roll's file back as the last segment, named inside a snapshot
// that covers every record after it: a cluster node snapshots at the index
// it applied, which need not be where a roll began, so the snapshot can
// pass the name of a roll that failed before it. A fresh segment is named
// one past the log's last record, never inside the snapshot: recovery took
// the file's name for where the log went on, removed the segment before as
// covered, and refused the start ("log ends at index 5 before the
// snapshot's 10"), though the snapshot held everything.
func TestFailedRollFileBackInsideTheSnapshot(t *testing.T) {
	d, g := logAfterAFailedRoll(t, 5, 5) // 1 to 5; then 6 to 10, in the first segment; a snapshot at 10 covers them
	if err := g.log.RemoveBefore(10); err != nil {
		t.Fatal(err)
	}
	g.log.Close()
	d.crash()
	d.put(walName(6), nil) // the failed roll's file, back
	names := mustList(t, d)
	w, err := OpenLog(d, names, 10, nil, func(r Record) error {
		t.Errorf("replayed record %d, which the snapshot at 10 covers", r.Index)
		return nil
	}, t.Logf)
	if err != nil {
		t.Fatalf("recovery refused the log: %v", err)
	}
	if w.NextIndex() != 11 {
		t.Fatalf("next index %d after the snapshot at 10, want 11", w.NextIndex())
	}
	g = NewGroupCommit(w, 1<<20)
	appendBatch(t, g, 2) // 11 and 12: the log goes on
	w.Close()
	d.crash()
	w, got := openTestLog(t, d, 10)
	defer w.Close()
	if !slices.Equal(got, recordsFrom(11, 12)) {
		t.Fatalf("recovered %v, want records 11 and 12", got)
	}
}
