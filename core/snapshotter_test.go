package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// stepClock is a Clock that moves only when a test moves it. Timers never
// fire: a test takes the turns itself.
type stepClock struct {
	now    int64
	timers int
}

func (c *stepClock) Now() int64 { return c.now }

func (c *stepClock) AfterFunc(time.Duration, func()) Timer { c.timers++; return stepTimer{} }

type stepTimer struct{}

func (stepTimer) Stop() bool { return true }

type splitmix struct{ x uint64 }

func (r *splitmix) Uint64() uint64 {
	r.x += 0x9e3779b97f4a7c15
	z := r.x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

type snapHarness struct {
	disk  *memDisk
	clock *stepClock
	env   *Env
	log   *Log
	snaps *Snapshotter
}

// newSnapHarness opens the log of d after a snapshot at index (bytes long)
// and a Snapshotter over it.
func newSnapHarness(t *testing.T, d *memDisk, logBytesMin int64, index uint64, bytes int64) *snapHarness {
	t.Helper()
	h := &snapHarness{disk: d, clock: &stepClock{}}
	h.env = &Env{Clock: h.clock, Disk: d, Rand: &splitmix{1}, Logf: t.Logf}
	h.log, _ = openTestLog(t, d, index)
	h.snaps = NewSnapshotter(h.env, h.log, logBytesMin, index, bytes)
	return h
}

// finish steps the snapshot in progress to its end, completing background
// syncs as they come, and returns the index Step reported.
func (h *snapHarness) finish(t *testing.T) uint64 {
	t.Helper()
	for range 10000 {
		if !h.snaps.Writing() {
			t.Fatal("no snapshot in progress")
		}
		if index := h.snaps.Step(); index != 0 {
			if h.snaps.Writing() {
				t.Fatal("Writing after Step reported the snapshot durable")
			}
			return index
		}
		for len(h.disk.pending) > 0 {
			h.disk.completeSync()
		}
	}
	t.Fatal("the snapshot never finished")
	return 0
}

// storeOf builds a store from key, value pairs.
func storeOf(kvs map[string]string) *Store {
	s := NewStore()
	for k, v := range kvs {
		s.Set(k, v)
	}
	return s
}

func storeContent(s *Store) []KV {
	var kvs []KV
	s.Ascend("", func(k, v string) bool { kvs = append(kvs, KV{Key: k, Value: v}); return true })
	return kvs
}

func TestSnapshotterDue(t *testing.T) {
	t.Run("log since the last snapshot must reach logBytesMin", func(t *testing.T) {
		h := newSnapHarness(t, newMemDisk(), 100, 0, 0)
		if h.snaps.Due(99) || !h.snaps.Due(100) {
			t.Fatalf("Due(99) = %v, Due(100) = %v; want false, true", h.snaps.Due(99), h.snaps.Due(100))
		}
	})
	t.Run("and the last snapshot's size", func(t *testing.T) {
		h := newSnapHarness(t, newMemDisk(), 100, 0, 500)
		if h.snaps.Due(499) || !h.snaps.Due(500) {
			t.Fatalf("Due(499) = %v, Due(500) = %v; want false, true", h.snaps.Due(499), h.snaps.Due(500))
		}
	})
	t.Run("the log recovered at start counts", func(t *testing.T) {
		d := newMemDisk()
		g := newTestGroupCommit(t, d, 0, 1<<20)
		appendBatch(t, g, 4)
		g.log.Close()
		recovered := int64(len(d.bytes(walName(1))))
		h := newSnapHarness(t, d, 100, 0, 0)
		need := 100 - recovered
		if h.snaps.Due(need-1) || !h.snaps.Due(need) {
			t.Fatalf("with %d bytes recovered: Due(%d) = %v, Due(%d) = %v", recovered, need-1, h.snaps.Due(need-1), need, h.snaps.Due(need))
		}
	})
	t.Run("counted from the last snapshot's start", func(t *testing.T) {
		h := newSnapHarness(t, newMemDisk(), 100, 0, 0)
		h.snaps.Start(storeOf(map[string]string{"a": "1"}), 5, SnapshotMeta{}, 1000)
		if h.snaps.Due(5000) {
			t.Fatal("Due while a snapshot is being written")
		}
		h.finish(t)
		if h.snaps.Due(1099) || !h.snaps.Due(1100) {
			t.Fatalf("Due(1099) = %v, Due(1100) = %v; want false, true", h.snaps.Due(1099), h.snaps.Due(1100))
		}
	})
	t.Run("Force", func(t *testing.T) {
		h := newSnapHarness(t, newMemDisk(), 100, 0, 500)
		h.snaps.Force(false)
		if !h.snaps.Due(0) {
			t.Fatal("not Due after Force")
		}
		h.snaps.Start(NewStore(), 5, SnapshotMeta{}, 0)
		h.finish(t)
		if h.snaps.Due(0) {
			t.Fatal("Force outlived the snapshot it asked for")
		}
	})
	t.Run("retry delay after Fail", func(t *testing.T) {
		h := newSnapHarness(t, newMemDisk(), 100, 0, 0)
		h.clock.now = 5
		h.snaps.Fail(errInjected)
		h.snaps.Force(false)
		h.clock.now += int64(snapshotRetryDelay) - 1
		if h.snaps.Due(1 << 30) {
			t.Fatal("Due before the retry delay passed")
		}
		h.clock.now++
		if !h.snaps.Due(1 << 30) {
			t.Fatal("not Due once the retry delay passed")
		}
	})
}

// bigStore holds about mib MiB in 10 KiB values.
func bigStore(mib int) *Store {
	s := NewStore()
	for i := range mib * 100 {
		s.Set(fmt.Sprintf("key%06d", i), strings.Repeat(string(rune('a'+i%26)), 10<<10))
	}
	return s
}

// A snapshot is written a bounded chunk per Step, synced every
// snapshotSyncBytes and at the end, renamed only after its last sync, and
// its index returned only once the directory is synced.
func TestSnapshotterStepsChunkByChunk(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			d := newMemDisk()
			d.async = async
			h := newSnapHarness(t, d, 1, 0, 0)
			state := bigStore(10)
			h.snaps.Start(state.Clone(), 42, SnapshotMeta{}, 0)
			tmp := fmt.Sprintf("snap-%020d.tmp", 42)
			var index uint64
			steps := 0
			for index == 0 {
				steps++
				if steps > 1000 {
					t.Fatal("the snapshot never finished")
				}
				ops := len(d.ops)
				index = h.snaps.Step()
				for _, op := range d.opsSince(ops) {
					var n int
					if _, err := fmt.Sscanf(op, "append "+tmp+" %d", &n); err == nil && n > snapshotChunkBytes+(11<<10) {
						t.Fatalf("step %d appended %d bytes, over a chunk", steps, n)
					}
					if strings.HasPrefix(op, "rename") && len(d.pending) > 0 {
						t.Fatal("renamed with a sync in flight")
					}
				}
				if strings.Count(strings.Join(d.opsSince(ops), "\n"), "append") > 1 {
					t.Fatalf("step %d appended more than once: %v", steps, d.opsSince(ops))
				}
				if index == 0 && h.clock.timers == 0 {
					t.Fatal("no timer armed for the next step")
				}
				for len(d.pending) > 0 {
					d.completeSync()
				}
			}
			if index != 42 || h.snaps.Index() != 42 || h.snaps.Writing() {
				t.Fatalf("Step returned %d, Index %d, Writing %v", index, h.snaps.Index(), h.snaps.Writing())
			}
			if steps < 10 {
				t.Fatalf("10 MiB written in %d steps: chunks are not bounded", steps)
			}
			// The order of what made it durable.
			var seq []string
			for _, op := range d.ops {
				switch {
				case strings.HasPrefix(op, "sync "+tmp), strings.HasPrefix(op, "syncasync "+tmp):
					seq = append(seq, "sync")
				case strings.HasPrefix(op, "rename "+tmp):
					seq = append(seq, "rename")
				case op == "syncdir" && slices.Contains(seq, "rename"):
					seq = append(seq, "syncdir")
				}
			}
			want := []string{"sync", "sync", "rename", "syncdir"} // after 8 MiB, at the end
			if async {
				want = []string{"sync", "sync", "sync", "sync", "rename", "syncdir"} // started, then done
			}
			if !slices.Equal(seq, want) {
				t.Fatalf("syncs and rename: %v, want %v", seq, want)
			}
			if _, ok := d.files[tmp]; ok {
				t.Fatal("the .tmp file is still there")
			}
			got, gotIndex, meta, err := LoadSnapshot("x", d.bytes(SnapshotName(42)))
			if err != nil || gotIndex != 42 || !meta.zero() {
				t.Fatalf("LoadSnapshot: index %d meta %+v err %v", gotIndex, meta, err)
			}
			if !slices.Equal(storeContent(got), storeContent(state)) {
				t.Fatal("the snapshot does not hold the store")
			}
		})
	}
}

// The node goes on writing its store while the snapshot of a clone of it
// is written: those writes do not reach the snapshot.
func TestSnapshotterWritesTheStateAtStart(t *testing.T) {
	h := newSnapHarness(t, newMemDisk(), 1, 0, 0)
	state := bigStore(3)
	want := storeContent(state)
	h.snaps.Start(state.Clone(), 7, SnapshotMeta{}, 0)
	h.snaps.Step()
	state.Set("key000000", "changed")
	state.Set("zzz", "new")
	h.finish(t)
	got, _, err := loadSnapshot("x", h.disk.bytes(SnapshotName(7)))
	if err != nil || !slices.Equal(storeContent(got), want) {
		t.Fatalf("the snapshot holds writes made after Start (err %v)", err)
	}
}

// Once a snapshot is durable the previous one goes, and so do the log
// segments whose records it covers.
func TestSnapshotterFinishRemovesWhatItCovers(t *testing.T) {
	for _, c := range []struct {
		index   uint64
		wantWAL []uint64 // segments left
	}{
		{4, []uint64{5, 9}},
		{7, []uint64{5, 9}},
		{8, []uint64{9}},
		{12, []uint64{9}},
	} {
		t.Run(fmt.Sprint(c.index), func(t *testing.T) {
			d := newMemDisk()
			w, _ := segmentedLog(t, d, []uint64{1, 5, 9}, 12)
			w.Close()
			old := encodeSnapshot(2, "a", "1")
			d.put(SnapshotName(2), old)
			h := newSnapHarness(t, d, 1, 2, int64(len(old)))
			h.snaps.Start(storeOf(map[string]string{"b": "2"}), c.index, SnapshotMeta{}, 0)
			if got := h.finish(t); got != c.index {
				t.Fatalf("Step returned %d", got)
			}
			var snaps, wals []string
			for _, name := range slices.Sorted(maps.Keys(d.files)) {
				if IsLogFile(name) {
					wals = append(wals, name)
				} else {
					snaps = append(snaps, name)
				}
			}
			var wantWAL []string
			for _, first := range c.wantWAL {
				wantWAL = append(wantWAL, walName(first))
			}
			if !slices.Equal(snaps, []string{SnapshotName(c.index)}) || !slices.Equal(wals, wantWAL) {
				t.Fatalf("files left: %v %v, want %v %v", snaps, wals, SnapshotName(c.index), wantWAL)
			}
		})
	}
}

// A failed snapshot is abandoned (its .tmp removed), the log and the last
// snapshot left as they were, and retried only after the delay.
func TestSnapshotterFailure(t *testing.T) {
	for _, op := range []string{"create", "append", "sync", "rename"} {
		t.Run(op, func(t *testing.T) {
			d := newMemDisk()
			old := encodeSnapshot(2, "a", "1")
			d.put(SnapshotName(2), old)
			h := newSnapHarness(t, d, 1, 2, int64(len(old)))
			d.fail = failOnce(op, snapPrefix)
			h.snaps.Force(false)
			h.snaps.Start(storeOf(map[string]string{"b": "2"}), 9, SnapshotMeta{}, 0)
			for range 10 {
				if h.snaps.Step() != 0 {
					t.Fatal("a failed snapshot was reported durable")
				}
			}
			if h.snaps.Writing() || h.snaps.Index() != 2 {
				t.Fatalf("Writing %v, Index %d after a failure", h.snaps.Writing(), h.snaps.Index())
			}
			names, _ := d.List()
			if want := []string{SnapshotName(2), walName(3)}; !slices.Equal(names, want) {
				t.Fatalf("files %v, want %v", names, want)
			}
			if h.snaps.Due(1 << 30) {
				t.Fatal("Due again at once after a failure")
			}
			h.clock.now += int64(snapshotRetryDelay)
			if !h.snaps.Due(1 << 30) {
				t.Fatal("not Due after the retry delay")
			}
		})
	}
}

// A directory sync that fails after the rename leaves the last snapshot
// the newest known one: nothing is removed on its account.
func TestSnapshotterDirSyncFailure(t *testing.T) {
	d := newMemDisk()
	w, _ := segmentedLog(t, d, []uint64{1, 5}, 8)
	w.Close()
	h := newSnapHarness(t, d, 1, 0, 0)
	d.fail = failOnce("syncdir", "")
	h.snaps.Start(storeOf(map[string]string{"b": "2"}), 8, SnapshotMeta{}, 0)
	for range 10 {
		if h.snaps.Step() != 0 {
			t.Fatal("a snapshot whose rename is not durable was reported")
		}
	}
	if h.snaps.Index() != 0 || h.log.Segments() != 2 {
		t.Fatalf("Index %d, %d segments: the snapshot was relied upon", h.snaps.Index(), h.log.Segments())
	}
}

func TestSnapshotterInstalled(t *testing.T) {
	d := newMemDisk()
	old := encodeSnapshot(2, "a", "1")
	d.put(SnapshotName(2), old)
	d.async = true // keeps the snapshot below in progress
	h := newSnapHarness(t, d, 100, 2, int64(len(old)))
	h.snaps.Start(storeOf(map[string]string{"b": "2"}), 5, SnapshotMeta{}, 0)
	h.snaps.Step()
	if !h.snaps.Writing() {
		t.Fatal("the snapshot finished in one step; the test needs one in progress")
	}
	installed := encodeSnapshot(30, "c", "3")
	d.put(SnapshotName(30), installed)
	h.snaps.Installed(30, 1000, 0)
	if h.snaps.Writing() || h.snaps.Index() != 30 {
		t.Fatalf("after Installed: Writing %v, Index %d", h.snaps.Writing(), h.snaps.Index())
	}
	names, _ := d.List()
	if want := []string{SnapshotName(30), walName(3)}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	// The installed snapshot's size paces the next one.
	if h.snaps.Due(999) || !h.snaps.Due(1000) {
		t.Fatalf("Due(999) = %v, Due(1000) = %v; want false, true", h.snaps.Due(999), h.snaps.Due(1000))
	}
	// Installing the same snapshot again removes nothing.
	h.snaps.Installed(30, 1000, 0)
	if _, ok := d.files[SnapshotName(30)]; !ok {
		t.Fatal("Installed of the current snapshot removed it")
	}
}

// encodeSnapshot2 builds a snapshot with meta by the format in snapshot.go,
// apart from the writer.
func encodeSnapshot2(index uint64, meta SnapshotMeta, kvs []KV) []byte {
	b := []byte("DKVSNAP2")
	b = binary.LittleEndian.AppendUint64(b, index)
	b = binary.LittleEndian.AppendUint64(b, meta.Term)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(meta.Extra)))
	b = append(b, meta.Extra...)
	for _, kv := range kvs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(kv.Key)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(kv.Value)))
		b = append(b, kv.Key...)
		b = append(b, kv.Value...)
	}
	b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// Property: a snapshot round-trips through LoadSnapshot with its meta; a
// zero meta writes the original DKVSNAP1 bytes, any other meta the
// DKVSNAP2 form, each byte for byte as the format says.
func TestSnapshotMetaRoundTrip(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		kvs := rapid.MapOf(rapid.StringN(0, 12, -1), rapid.StringN(0, 40, -1)).Draw(rt, "kvs")
		index := rapid.Uint64().Draw(rt, "index")
		var meta SnapshotMeta
		if rapid.Bool().Draw(rt, "meta") {
			meta.Term = rapid.Uint64().Draw(rt, "term")
			meta.Extra = rapid.SliceOfN(rapid.Byte(), 0, 100).Draw(rt, "extra")
		}
		d := newMemDisk()
		clock := &stepClock{}
		env := &Env{Clock: clock, Disk: d, Rand: &splitmix{}}
		w, err := OpenLog(d, nil, 0, nil, func(Record) error { return nil }, func(string, ...any) {})
		if err != nil {
			rt.Fatal(err)
		}
		s := NewSnapshotter(env, w, 1, 0, 0)
		state := storeOf(kvs)
		s.Start(state, index, meta, 0)
		for range 100 {
			if s.Step() != 0 {
				break
			}
		}
		if s.Index() != index || s.Writing() {
			rt.Fatalf("snapshot not finished: Index %d", s.Index())
		}
		data := d.bytes(SnapshotName(index))
		var want []byte
		if meta.zero() {
			var flat []string
			for _, kv := range storeContent(state) {
				flat = append(flat, kv.Key, kv.Value)
			}
			want = encodeSnapshot(index, flat...)
		} else {
			want = encodeSnapshot2(index, meta, storeContent(state))
		}
		if !bytes.Equal(data, want) {
			rt.Fatalf("snapshot bytes differ from the format:\n got %x\nwant %x", data, want)
		}
		got, gotIndex, gotMeta, err := LoadSnapshot("x", data)
		if err != nil {
			rt.Fatal(err)
		}
		if gotIndex != index || gotMeta.Term != meta.Term || !bytes.Equal(gotMeta.Extra, meta.Extra) {
			rt.Fatalf("loaded index %d meta %+v, want %d %+v", gotIndex, gotMeta, index, meta)
		}
		if !slices.Equal(storeContent(got), storeContent(state)) {
			rt.Fatalf("loaded store differs")
		}
	})
}

// Whatever the bytes, LoadSnapshot returns a store and meta or an
// ErrCorrupt error, and never panics; DKVSNAP2 seeds included.
func FuzzLoadSnapshotMeta(f *testing.F) {
	f.Add(encodeSnapshot2(1, SnapshotMeta{Term: 3, Extra: []byte("sessions")}, []KV{{Key: "a", Value: "1"}}))
	f.Add(encodeSnapshot2(1, SnapshotMeta{Term: 3}, nil))
	f.Add([]byte("DKVSNAP2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _, meta, err := LoadSnapshot("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if s == nil || len(meta.Extra) > len(data) {
			t.Fatalf("store %v, extra of %d bytes in %d", s, len(meta.Extra), len(data))
		}
	})
}

func TestRecoverSnapshot(t *testing.T) {
	snap3 := encodeSnapshot(3, "a", "1")
	snap7 := encodeSnapshot2(7, SnapshotMeta{Term: 2, Extra: []byte("x")}, []KV{{Key: "a", Value: "2"}, {Key: "b", Value: "3"}})
	wal := walName(8)
	setup := func() *memDisk {
		d := newMemDisk()
		d.put(SnapshotName(3), snap3)
		d.put(SnapshotName(7), snap7)
		d.put("snap-00000000000000000009.tmp", []byte("half a snapshot"))
		d.put(wal, nil)
		return d
	}
	check := func(t *testing.T, d *memDisk, r *Recovered) {
		t.Helper()
		if r.Index != 7 || r.Bytes != int64(len(snap7)) || r.Meta.Term != 2 || string(r.Meta.Extra) != "x" {
			t.Fatalf("recovered index %d, %d bytes, meta %+v", r.Index, r.Bytes, r.Meta)
		}
		if want := []KV{{Key: "a", Value: "2"}, {Key: "b", Value: "3"}}; !slices.Equal(storeContent(r.Store), want) {
			t.Fatalf("store %v, want %v", storeContent(r.Store), want)
		}
		if want := []string{SnapshotName(7), wal}; !slices.Equal(r.Names, want) {
			t.Fatalf("Names %v, want %v", r.Names, want)
		}
		names, _ := d.List()
		if want := []string{SnapshotName(7), wal}; !slices.Equal(names, want) {
			t.Fatalf("files left %v, want %v", names, want)
		}
	}
	t.Run("newest kept, .tmp and older removed", func(t *testing.T) {
		d := setup()
		r, err := RecoverSnapshot(d)
		if err != nil {
			t.Fatal(err)
		}
		check(t, d, r)
	})
	t.Run("a read that fails once", func(t *testing.T) {
		d := setup()
		d.fail = failOnce("read", SnapshotName(7))
		r, err := RecoverSnapshot(d)
		if err != nil {
			t.Fatal(err)
		}
		check(t, d, r)
	})
	t.Run("a read that returns a flipped bit once", func(t *testing.T) {
		d := setup()
		flipped := false
		d.read = func(name string, data []byte) []byte {
			if name == SnapshotName(7) && !flipped {
				flipped = true
				data[len(data)/2] ^= 0x10
			}
			return data
		}
		r, err := RecoverSnapshot(d)
		if err != nil {
			t.Fatal(err)
		}
		check(t, d, r)
	})
	t.Run("damage on the medium", func(t *testing.T) {
		d := setup()
		d.files[SnapshotName(7)].data[20] ^= 1
		if _, err := RecoverSnapshot(d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
		if _, ok := d.files[SnapshotName(3)]; !ok {
			t.Fatal("the older snapshot was removed although the newest does not load")
		}
	})
	t.Run("a read that always fails", func(t *testing.T) {
		d := setup()
		d.fail = func(op, name string) error {
			if op == "read" {
				return errInjected
			}
			return nil
		}
		if _, err := RecoverSnapshot(d); !errors.Is(err, errInjected) {
			t.Fatalf("err = %v, want the read's error", err)
		}
	})
	t.Run("a name that does not match the index", func(t *testing.T) {
		d := newMemDisk()
		d.put(SnapshotName(9), snap7)
		if _, err := RecoverSnapshot(d); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("no snapshot", func(t *testing.T) {
		d := newMemDisk()
		d.put(wal, nil)
		r, err := RecoverSnapshot(d)
		if err != nil || r.Index != 0 || r.Store.Len() != 0 || !slices.Equal(r.Names, []string{wal}) {
			t.Fatalf("RecoverSnapshot = %+v, %v", r, err)
		}
	})
}

// A snapshot that fails is tried again once the retry delay has passed, on
// the log that made it due: the log it would let go is still there. Before,
// its start had reset the count of log since the last snapshot, so the
// next attempt waited until as much log again was written (the larger of
// SnapshotLogBytesMin and the last snapshot's size: with a 10 GB store,
// 10 GB more log), each failure (a disk full for a moment, a failed
// directory sync) adding that much again (found by review).
func TestSnapshotterRetriesAFailedSnapshotOnTheSameLog(t *testing.T) {
	for _, op := range []string{"append", "sync", "syncdir"} {
		t.Run(op, func(t *testing.T) {
			d := newMemDisk()
			old := encodeSnapshot(2, "a", "1")
			d.put(SnapshotName(2), old)
			h := newSnapHarness(t, d, 100, 2, 500)
			const added = 1000 // the log grew past the last snapshot's size
			if !h.snaps.Due(added) {
				t.Fatal("not Due")
			}
			d.fail = failOnce(op, "")
			h.snaps.Start(storeOf(map[string]string{"b": "2"}), 9, SnapshotMeta{}, added)
			for range 10 {
				if h.snaps.Step() != 0 {
					t.Fatal("a failed snapshot was reported durable")
				}
			}
			if h.snaps.Writing() || h.snaps.Index() != 2 {
				t.Fatalf("Writing %v, Index %d after a failure", h.snaps.Writing(), h.snaps.Index())
			}
			h.clock.now += int64(snapshotRetryDelay)
			if !h.snaps.Due(added) {
				t.Fatalf("after a failed snapshot and the retry delay, not Due on the same log: it waits for %d bytes more", 500)
			}
			// A second failure in a row waits twice as long: each attempt
			// of a single node rolls the log to a new segment.
			d.fail = failOnce(op, "")
			h.snaps.Start(storeOf(map[string]string{"b": "2"}), 9, SnapshotMeta{}, added)
			for range 10 {
				h.snaps.Step()
			}
			h.clock.now += int64(snapshotRetryDelay)
			if h.snaps.Writing() || h.snaps.Due(added) {
				t.Fatal("Due again a retry delay after a second failure in a row")
			}
			h.clock.now += int64(snapshotRetryDelay)
			if !h.snaps.Due(added) {
				t.Fatal("not Due twice the retry delay after a second failure in a row")
			}
		})
	}
}

// The log since an installed snapshot counts from the install: the log the
// node had before it, which the install replaced, does not make the next
// snapshot due. It did, and a follower wrote again, at once, the whole
// state it had just received (found by review).
func TestSnapshotterCountsFromAnInstall(t *testing.T) {
	h := newSnapHarness(t, newMemDisk(), 100, 0, 0)
	h.snaps.Start(storeOf(map[string]string{"a": "1"}), 5, SnapshotMeta{}, 0)
	h.finish(t)
	const added = 5000 // the node logged this much since, then fell behind
	h.disk.put(SnapshotName(50), encodeSnapshot(50, "c", "3"))
	h.snaps.Installed(50, 300, added)
	if h.snaps.Due(added) || h.snaps.Due(added+299) || !h.snaps.Due(added+300) {
		t.Fatalf("after an install of 300 bytes at %d bytes logged: Due %v, %v, %v at 0, 299 and 300 bytes more; want false, false, true",
			added, h.snaps.Due(added), h.snaps.Due(added+299), h.snaps.Due(added+300))
	}
}

// A snapshot whose directory sync fails is removed: no later snapshot
// would remove it (each removes the durable one before it), and each such
// failure left a copy of the whole store on the disk until the next start.
// One at the index of the durable snapshot, whose file it replaced, stays.
func TestSnapshotterDirSyncFailureLeavesNoCopy(t *testing.T) {
	d := newMemDisk()
	w, _ := segmentedLog(t, d, []uint64{1, 5, 9}, 12)
	w.Close()
	h := newSnapHarness(t, d, 1, 0, 0)
	snaps := func() []string {
		names, _ := d.List()
		return slices.DeleteFunc(names, func(n string) bool { return !strings.HasPrefix(n, snapPrefix) })
	}
	d.fail = failOnce("syncdir", "")
	h.snaps.Start(storeOf(map[string]string{"a": "1"}), 4, SnapshotMeta{}, 0)
	for range 10 {
		h.snaps.Step()
	}
	if h.snaps.Writing() || h.snaps.Index() != 0 {
		t.Fatalf("writing %v, index %d after the failed directory sync", h.snaps.Writing(), h.snaps.Index())
	}
	if got := snaps(); len(got) != 0 {
		t.Fatalf("snapshot files after the failed directory sync: %v, want none", got)
	}
	h.clock.now += int64(snapshotRetryDelayMax)
	h.snaps.Start(storeOf(map[string]string{"a": "1", "b": "2"}), 8, SnapshotMeta{}, 0)
	if h.finish(t) != 8 {
		t.Fatal("the next snapshot did not become durable")
	}
	if got := snaps(); !slices.Equal(got, []string{snapName(8)}) {
		t.Fatalf("snapshot files %v, want %s alone", got, snapName(8))
	}
	// Again at the same index: the rename replaced the durable snapshot,
	// which must stay.
	d.fail = failOnce("syncdir", "")
	h.clock.now += int64(snapshotRetryDelayMax)
	h.snaps.Start(storeOf(map[string]string{"a": "1", "b": "2"}), 8, SnapshotMeta{}, 0)
	for range 10 {
		h.snaps.Step()
	}
	if got := snaps(); !slices.Equal(got, []string{snapName(8)}) {
		t.Fatalf("snapshot files %v, want %s kept", got, snapName(8))
	}
}
