package core

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
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
