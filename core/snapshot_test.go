package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
)

// encodeSnapshot builds a snapshot file by the format in snapshot.go, apart
// from the writer, as a seed for the fuzzer.
func encodeSnapshot(index uint64, kvs ...string) []byte {
	b := []byte(snapMagic)
	b = binary.LittleEndian.AppendUint64(b, index)
	for i := 0; i+1 < len(kvs); i += 2 {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(kvs[i])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(kvs[i+1])))
		b = append(b, kvs[i]...)
		b = append(b, kvs[i+1]...)
	}
	b = binary.LittleEndian.AppendUint32(b, snapEndMarker)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)/2))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func TestEncodeSnapshotLoads(t *testing.T) {
	s, index, err := loadSnapshot("x", encodeSnapshot(7, "a", "1", "b", ""))
	if err != nil || index != 7 || s.Len() != 2 {
		t.Fatalf("loadSnapshot = %d entries, index %d, %v", s.Len(), index, err)
	}
	if v, ok := s.Get("b"); !ok || v != "" {
		t.Fatalf("b = %q, %v", v, ok)
	}
}

// Whatever the bytes, loadSnapshot returns a store or an ErrCorrupt error,
// never panics, and a store it returns holds what the trailer says.
func FuzzLoadSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(1))
	f.Add(encodeSnapshot(3, "a", "1", "b", "2", "c", "3"))
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _, err := loadSnapshot("fuzz", data)
		if err != nil {
			return
		}
		count := binary.LittleEndian.Uint64(data[len(data)-12:])
		if uint64(s.Len()) != count {
			t.Fatalf("store holds %d entries, trailer says %d", s.Len(), count)
		}
	})
}

// The newest snapshot's rename may be in the page cache only (a crash came
// before its directory sync). Recovery removes what it covers — older
// snapshots here, log segments in OpenLog — so it syncs the directory
// first: a power loss must not keep a removal and lose the snapshot.
func TestRecoverSnapshotSyncsDirectoryBeforeRemoving(t *testing.T) {
	d := newMemDisk()
	d.put(snapName(3), encodeSnapshot(3, "a", "1"))
	d.put(snapName(9), encodeSnapshot(9, "a", "2"))
	ops := len(d.ops)
	r, err := RecoverSnapshot(d)
	if err != nil || r.Index != 9 {
		t.Fatalf("RecoverSnapshot: index %v, %v", r, err)
	}
	done := d.opsSince(ops)
	sync := slices.Index(done, "syncdir")
	remove := slices.Index(done, "remove "+snapName(3))
	if remove < 0 || sync < 0 || sync > remove {
		t.Fatalf("ops %q: want a syncdir before removing %s", done, snapName(3))
	}
}

// rangeDisk is a memDisk that reads files a range at a time too
// (RangeReader), as disk.Dir and the simulator's disk do, and remembers
// how it was asked to read them.
type rangeDisk struct {
	*memDisk
	whole   []string // files read whole (ReadFile)
	readMax int      // the most bytes one ReadAt asked for
}

func (d *rangeDisk) ReadFile(name string) ([]byte, error) {
	d.whole = append(d.whole, name)
	return d.memDisk.ReadFile(name)
}

func (d *rangeDisk) OpenRead(name string) (ReadHandle, error) {
	data, err := d.memDisk.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &rangeHandle{d: d, data: data}, nil
}

type rangeHandle struct {
	d    *rangeDisk
	data []byte
}

func (h *rangeHandle) ReadAt(p []byte, off int64) (int, error) {
	h.d.readMax = max(h.d.readMax, len(p))
	return bytesHandle(h.data).ReadAt(p, off)
}
func (h *rangeHandle) Size() int64  { return int64(len(h.data)) }
func (h *rangeHandle) Close() error { return nil }

// Recovery reads a snapshot a chunk at a time where the disk can, and
// decodes it as it goes: read whole, the file sat in memory beside the
// store built from it, and a node whose store filled most of the memory it
// ran in could not start again (a 276 MB snapshot took a restarted server
// to 713 MB, where it had served at 448 MB). One entry larger than a chunk
// is read whole, as it must be.
func TestRecoverSnapshotReadsAChunkAtATime(t *testing.T) {
	var kvs []string
	for i := range 3000 {
		kvs = append(kvs, fmt.Sprintf("k%05d", i), strings.Repeat(string(rune('a'+i%26)), 1000+i%7))
	}
	big := strings.Repeat("B", snapshotReadBytes+snapshotReadBytes/2)
	kvs = append(kvs, "zbig", big)
	data := encodeSnapshot(42, kvs...)
	d := &rangeDisk{memDisk: newMemDisk()}
	d.put(SnapshotName(42), data)
	r, err := RecoverSnapshot(d)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(d.whole, SnapshotName(42)) {
		t.Fatalf("the snapshot (%d bytes) was read whole", len(data))
	}
	if limit := 8 + len("zbig") + len(big); d.readMax > limit {
		t.Fatalf("a read of %d bytes, more than the largest entry's %d", d.readMax, limit)
	}
	if r.Index != 42 || r.Bytes != int64(len(data)) || r.Store.Len() != len(kvs)/2 {
		t.Fatalf("recovered index %d, %d bytes, %d keys", r.Index, r.Bytes, r.Store.Len())
	}
	for i := 0; i < len(kvs); i += 2 {
		if v, ok := r.Store.Get(kvs[i]); !ok || v != kvs[i+1] {
			t.Fatalf("%s: %d bytes, %v; want %d bytes", kvs[i], len(v), ok, len(kvs[i+1]))
		}
	}
	// Damage on the medium is refused as before, and a transient read
	// error retried.
	stored := d.files[SnapshotName(42)].data
	stored[len(stored)/2] ^= 4
	if _, err := RecoverSnapshot(d); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("damaged: err = %v, want a checksum mismatch", err)
	}
	stored[len(stored)/2] ^= 4
	d.fail = failOnce("read", SnapshotName(42))
	if r, err := RecoverSnapshot(d); err != nil || r.Store.Len() != len(kvs)/2 {
		t.Fatalf("after a failed read: %v", err)
	}
}

// loadSnapshotWhole decodes a snapshot held whole, as recovery did before
// it read snapshots a chunk at a time: the reference the chunked decoder
// must agree with, result and error alike.
func loadSnapshotWhole(name string, data []byte) (*Store, uint64, SnapshotMeta, error) {
	var meta SnapshotMeta
	header := snapHeaderSize
	v3 := len(data) >= len(snapMagic3) && string(data[:len(snapMagic3)]) == snapMagic3
	if len(data) >= snapHeaderSize+8+4+snapTrailer && (string(data[:len(snapMagic2)]) == snapMagic2 || v3) {
		meta.Term = binary.LittleEndian.Uint64(data[snapHeaderSize:])
		extra := uint64(binary.LittleEndian.Uint32(data[snapHeaderSize+8:]))
		header = snapHeaderSize + 8 + 4 + int(extra)
		if extra > snapExtraMax || header+snapTrailer > len(data) {
			return nil, 0, meta, fmt.Errorf("%w: %s: extra section of %d bytes overruns the file", ErrCorrupt, name, extra)
		}
		meta.Extra = data[header-int(extra) : header]
	} else if len(data) < snapHeaderSize+snapTrailer || string(data[:len(snapMagic)]) != snapMagic {
		return nil, 0, meta, fmt.Errorf("%w: %s: not a snapshot (bad header or too short)", ErrCorrupt, name)
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, crcTable), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return nil, 0, meta, fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, name)
	}
	index := binary.LittleEndian.Uint64(data[len(snapMagic):])
	count := binary.LittleEndian.Uint64(data[len(data)-12:])
	if binary.LittleEndian.Uint32(data[len(data)-16:]) != snapEndMarker {
		return nil, 0, meta, fmt.Errorf("%w: %s: missing end marker", ErrCorrupt, name)
	}
	s := NewStore()
	p := data[header : len(data)-snapTrailer]
	prev := ""
	for n := uint64(0); len(p) > 0; n++ {
		if len(p) < 8 {
			return nil, 0, meta, fmt.Errorf("%w: %s: entry %d truncated", ErrCorrupt, name, n)
		}
		kl := uint64(binary.LittleEndian.Uint32(p[0:4]))
		vl := uint64(binary.LittleEndian.Uint32(p[4:8]))
		tail := uint64(0)
		if v3 && kl&snapEntryExpiring != 0 {
			kl &^= snapEntryExpiring
			tail = 8
		}
		if 8+kl+vl+tail > uint64(len(p)) {
			return nil, 0, meta, fmt.Errorf("%w: %s: entry %d overruns the file", ErrCorrupt, name, n)
		}
		key := string(p[8 : 8+kl])
		if n > 0 && key <= prev {
			return nil, 0, meta, fmt.Errorf("%w: %s: keys out of order at entry %d", ErrCorrupt, name, n)
		}
		s.tree.ReplaceOrInsert(entry{key: key, value: string(p[8+kl : 8+kl+vl])})
		if tail != 0 {
			at := int64(binary.LittleEndian.Uint64(p[8+kl+vl:]))
			if at <= 0 {
				return nil, 0, meta, fmt.Errorf("%w: %s: entry %d has deadline %d", ErrCorrupt, name, n, at)
			}
			s.ttl.set(key, at)
		}
		prev = key
		p = p[8+kl+vl+tail:]
	}
	if uint64(s.Len()) != count {
		return nil, 0, meta, fmt.Errorf("%w: %s: holds %d entries, trailer says %d", ErrCorrupt, name, s.Len(), count)
	}
	return s, index, meta, nil
}

// chunkedBytes is a ReadHandle over bytes that loadSnapshotFrom reads a
// chunk at a time, as it reads a file (it reads a bytesHandle in place).
type chunkedBytes struct{ bytesHandle }

// The chunked decoder agrees with the whole one on every snapshot form,
// whatever the chunk size, and on every file a cut or a flipped byte
// makes of them (with the crc made right again, so that the decoding
// itself is compared, not only the checksum).
func TestLoadSnapshotInChunksAgreesWithWhole(t *testing.T) {
	expiring := NewStore()
	expiring.Set("a", "1")
	expiring.SetExpiring("b", "22", 1234)
	expiring.Set("c", "")
	var files [][]byte
	files = append(files, encodeSnapshot(5, "a", "1", "bb", "22", "ccc", ""))
	files = append(files, encodeSnapshot2(9, SnapshotMeta{Term: 3, Extra: []byte("sessions")}, []KV{{Key: "k", Value: "v"}, {Key: "l", Value: "w"}}))
	d := newMemDisk()
	w, err := startSnapshot(d, expiring, 11, SnapshotMeta{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		if done, err = w.step(d); err != nil {
			t.Fatal(err)
		}
	}
	files = append(files, d.bytes(SnapshotName(11)))
	recrc := func(b []byte) []byte {
		if len(b) >= 4 {
			binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], crcTable))
		}
		return b
	}
	var cases [][]byte
	for _, f := range files {
		cases = append(cases, f)
		for cut := range len(f) {
			cases = append(cases, slices.Clone(f[:cut]), recrc(slices.Clone(f[:cut])))
		}
		for i := range f {
			for _, x := range []byte{1, 0x80, 0xff} {
				b := slices.Clone(f)
				b[i] ^= x
				cases = append(cases, b, recrc(slices.Clone(b)))
			}
		}
	}
	for _, data := range cases {
		ws, wIndex, wMeta, wErr := loadSnapshotWhole("f", data)
		for _, chunk := range []int{0, 1, 3, 8, 17, snapshotReadBytes} {
			// Chunk 0: the bytes in place, as a snapshot held whole is read.
			var h ReadHandle = bytesHandle(data)
			if chunk != 0 {
				h = chunkedBytes{bytesHandle(data)}
			}
			s, index, meta, err := loadSnapshotFrom("f", h, max(chunk, 1), MutNone)
			if fmt.Sprint(err) != fmt.Sprint(wErr) {
				t.Fatalf("%x, chunks of %d: err %v, whole %v", data, chunk, err, wErr)
			}
			if wErr == nil && (index != wIndex || meta.Term != wMeta.Term || !bytes.Equal(meta.Extra, wMeta.Extra) ||
				!slices.Equal(storeContent(s), storeContent(ws)) || s.Expiring() != ws.Expiring()) {
				t.Fatalf("%x, chunks of %d: index %d meta %+v %v, whole %d %+v %v", data, chunk, index, meta, storeContent(s), wIndex, wMeta, storeContent(ws))
			}
		}
	}
}

// ReadSnapshot, for a snapshot a cluster node received, reads as recovery
// does: a chunk at a time, never the file whole.
func TestReadSnapshotReadsAChunkAtATime(t *testing.T) {
	var kvs []string
	for i := range 3000 {
		kvs = append(kvs, fmt.Sprintf("k%05d", i), strings.Repeat("v", 1000))
	}
	data := encodeSnapshot(8, kvs...)
	d := &rangeDisk{memDisk: newMemDisk()}
	d.put("received.tmp", data)
	s, index, _, size, err := ReadSnapshot(d, "received.tmp")
	if err != nil || index != 8 || size != int64(len(data)) || s.Len() != 3000 {
		t.Fatalf("ReadSnapshot: index %d, %d bytes, %v", index, size, err)
	}
	if len(d.whole) != 0 || d.readMax > snapshotReadBytes {
		t.Fatalf("read whole %v, a read of %d bytes", d.whole, d.readMax)
	}
}

// LogMissing, for a mesh node's start, refuses what the single node's
// does: a snapshot and no log segment.
func TestRecoveredLogMissing(t *testing.T) {
	for _, c := range []struct {
		index uint64
		names []string
		fails bool
	}{
		{0, nil, false},
		{7, []string{SnapshotName(7), walName(8)}, false},
		{7, []string{SnapshotName(7), walName(8) + ".cut-40"}, true},
		{7, []string{SnapshotName(7)}, true},
	} {
		err := (&Recovered{Index: c.index, Names: c.names}).LogMissing()
		if (err != nil) != c.fails || err != nil && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), walName(8))) {
			t.Errorf("index %d, names %v: %v", c.index, c.names, err)
		}
	}
}
