package core

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// A snapshot file holds the whole store as of one log index:
//
//	"DKVSNAP1" [index u64]
//	{ [key length u32][value length u32][key][value] }   in key order
//	[0xffffffff u32][count u64][crc32c u32]
//
// A replicated node's snapshot also carries the term of the entry at index
// and the node's own state beside the store (a cluster's client sessions):
//
//	"DKVSNAP2" [index u64][term u64][extra length u32][extra] { entries } [trailer]
//
// The single node writes the first form, byte for byte as before the second
// existed.
//
// A store with keys that expire is written in the third form: the second's
// header, and entries whose key length has snapEntryExpiring set for a key
// with a deadline, which follows its value:
//
//	"DKVSNAP3" [index u64][term u64][extra length u32][extra]
//	{ [key length u32 | snapEntryExpiring?][value length u32][key][value][deadline u64]? } [trailer]
//
// Builds before deadlines refuse it (an unknown magic) rather than load keys
// that would then never expire.
//
// The crc covers every byte before it, so a snapshot is used whole or not at
// all. It is written as snap-<index>.tmp, synced, renamed to
// snap-<index>.snap, and the directory synced; only then may the log before
// it go.
const (
	snapPrefix    = "snap-"
	snapSuffix    = ".snap"
	snapTmpSuffix = ".tmp"
	snapMagic     = "DKVSNAP1"
	snapMagic2    = "DKVSNAP2"
	snapMagic3    = "DKVSNAP3"
	// snapEntryExpiring marks a form-3 entry whose key has a deadline.
	snapEntryExpiring = 1 << 31
	// snapExtraMax bounds the node's own section (a cluster's session
	// table). The largest table the default bounds allow is 16,384
	// clients with 512 seqs each, every seq with an incr's answer kept
	// (25 bytes; a refused seq takes 16), and 65,536 forgotten ids:
	// 16,384 × (28 + 512 × (8 + 25)) + 65,536 × 8 bytes, about 278 MB.
	// (At 256 MiB, such a table passed it and the snapshot's assertion
	// stopped every node: found by review.)
	snapExtraMax   = 512 << 20
	snapEndMarker  = 0xffffffff
	snapTrailer    = 4 + 8 + 4
	snapHeaderSize = len(snapMagic) + 8
)

func snapName(index uint64) string { return fmt.Sprintf("%s%020d%s", snapPrefix, index, snapSuffix) }

// SnapshotMeta is what a snapshot carries beside the store: the term of its
// last entry, and a replicated node's own state (opaque here).
type SnapshotMeta struct {
	Term  uint64
	Extra []byte
}

func (m SnapshotMeta) zero() bool { return m.Term == 0 && len(m.Extra) == 0 }

// loadSnapshot checks and decodes a snapshot file into a new store.
func loadSnapshot(name string, data []byte) (*Store, uint64, error) {
	s, index, _, err := LoadSnapshot(name, data)
	return s, index, err
}

// LoadSnapshot checks and decodes a snapshot file (the bytes of the file
// called name) into a new store, its index and its meta.
func LoadSnapshot(name string, data []byte) (*Store, uint64, SnapshotMeta, error) {
	return loadSnapshotWith(name, data, MutNone)
}

// loadSnapshotWith is LoadSnapshot with a planted mutation (a single node's
// SingleConfig.Mutation).
func loadSnapshotWith(name string, data []byte, mut Mutation) (*Store, uint64, SnapshotMeta, error) {
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
	s, index, err := loadSnapshotBody(name, data, header, v3, mut)
	return s, index, meta, err
}

// loadSnapshotBody decodes the entries after header; expiring: they are of
// the third form, which may carry deadlines.
func loadSnapshotBody(name string, data []byte, header int, expiring bool, mut Mutation) (*Store, uint64, error) {
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, crcTable), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want && mut != MutSnapshotChecksumIgnored {
		return nil, 0, fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, name)
	}
	index := binary.LittleEndian.Uint64(data[len(snapMagic):])
	count := binary.LittleEndian.Uint64(data[len(data)-12:])
	if binary.LittleEndian.Uint32(data[len(data)-16:]) != snapEndMarker {
		return nil, 0, fmt.Errorf("%w: %s: missing end marker", ErrCorrupt, name)
	}
	s := NewStore()
	p := data[header : len(data)-snapTrailer]
	prev := ""
	for n := uint64(0); len(p) > 0; n++ {
		if len(p) < 8 {
			return nil, 0, fmt.Errorf("%w: %s: entry %d truncated", ErrCorrupt, name, n)
		}
		kl := uint64(binary.LittleEndian.Uint32(p[0:4]))
		vl := uint64(binary.LittleEndian.Uint32(p[4:8]))
		tail := uint64(0)
		if expiring && kl&snapEntryExpiring != 0 {
			kl &^= snapEntryExpiring
			tail = 8
		}
		if 8+kl+vl+tail > uint64(len(p)) {
			return nil, 0, fmt.Errorf("%w: %s: entry %d overruns the file", ErrCorrupt, name, n)
		}
		key := string(p[8 : 8+kl])
		// Pair assertion with the writer: keys were written in strict order.
		if n > 0 && key <= prev {
			return nil, 0, fmt.Errorf("%w: %s: keys out of order at entry %d", ErrCorrupt, name, n)
		}
		s.tree.ReplaceOrInsert(entry{key: key, value: string(p[8+kl : 8+kl+vl])})
		if tail != 0 {
			at := int64(binary.LittleEndian.Uint64(p[8+kl+vl:]))
			if at <= 0 {
				return nil, 0, fmt.Errorf("%w: %s: entry %d has deadline %d", ErrCorrupt, name, n, at)
			}
			s.ttl.set(key, at)
		}
		prev = key
		p = p[8+kl+vl+tail:]
	}
	if uint64(s.Len()) != count {
		return nil, 0, fmt.Errorf("%w: %s: holds %d entries, trailer says %d", ErrCorrupt, name, s.Len(), count)
	}
	return s, index, nil
}

// snapshotWriter writes a frozen clone of the store a bounded chunk at a
// time, so writes go on between chunks and no turn stalls for long.
type snapshotWriter struct {
	index      uint64
	clone      *Store
	file       File
	tmp        string
	crc        uint32
	count      uint64
	bytes      int64
	unsynced   int64
	resumeKey  string
	started    bool // resumeKey was written: resume after it
	done       bool // all entries written
	needSync   bool // what was written must be synced before going on
	syncing    bool // an asynchronous sync is in flight
	syncErr    error
	failAtStep int // debug_simulate_fail: fail at this step; <0 never
	steps      int
	buf        []byte
	mutation   Mutation // a planted bug, for the simulator's tests (SingleConfig)
	expiring   bool     // the clone has keys with deadlines: the third form
}

// Sizes of snapshot work per turn. A chunk is small enough that a turn
// takes milliseconds; syncing every few chunks spreads the fsync cost so the
// final sync is not one long one. Where the file is an AsyncFile the syncs
// run while the node serves: an 8 MiB fdatasync takes 4-7 ms on the
// development VM, and every client waited for it when the node did.
const (
	snapshotChunkBytes = 1 << 20
	snapshotSyncBytes  = 8 << 20
)

func startSnapshot(d Disk, s *Store, index uint64, meta SnapshotMeta, failAtStep int) (*snapshotWriter, error) {
	tmp := fmt.Sprintf("%s%020d%s", snapPrefix, index, snapTmpSuffix)
	f, err := d.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", tmp, err)
	}
	w := &snapshotWriter{index: index, clone: s.Clone(), file: f, tmp: tmp, failAtStep: failAtStep}
	w.expiring = w.clone.Expiring() > 0
	if meta.zero() && !w.expiring {
		w.buf = append(w.buf, snapMagic...)
		w.buf = binary.LittleEndian.AppendUint64(w.buf, index)
		return w, nil
	}
	assert(len(meta.Extra) <= snapExtraMax, "snapshot extra section over snapExtraMax")
	if w.expiring {
		w.buf = append(w.buf, snapMagic3...)
	} else {
		w.buf = append(w.buf, snapMagic2...)
	}
	w.buf = binary.LittleEndian.AppendUint64(w.buf, index)
	w.buf = binary.LittleEndian.AppendUint64(w.buf, meta.Term)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(meta.Extra)))
	w.buf = append(w.buf, meta.Extra...)
	return w, nil
}

// step writes the next chunk, or syncs what was written. It returns true
// once the file is complete, synced and renamed into place (the caller then
// syncs the directory). While an asynchronous sync is in flight it does
// nothing; the file is renamed only after its last sync succeeded.
func (w *snapshotWriter) step(d Disk) (bool, error) {
	if w.syncing {
		return false, nil
	}
	if w.syncErr != nil {
		return false, fmt.Errorf("syncing %s: %w", w.tmp, w.syncErr)
	}
	w.steps++
	if w.steps == w.failAtStep {
		return false, fmt.Errorf("writing %s: simulated failure (debug_simulate_fail)", w.tmp)
	}
	if !w.done && !w.needSync {
		if err := w.writeChunk(); err != nil {
			return false, err
		}
		if !w.done && w.unsynced < snapshotSyncBytes {
			return false, nil
		}
		w.needSync = true
	}
	if w.mutation == MutSnapshotNotSynced {
		w.needSync = false
	}
	if w.needSync {
		w.needSync, w.unsynced = false, 0
		if af, ok := w.file.(AsyncFile); ok {
			w.syncing = true
			af.SyncAsync(func(err error) { w.syncing, w.syncErr = false, err })
			return false, nil
		}
		if err := w.file.Sync(); err != nil {
			return false, fmt.Errorf("syncing %s: %w", w.tmp, err)
		}
	}
	if !w.done {
		return false, nil
	}
	if err := w.file.Close(); err != nil {
		return false, fmt.Errorf("closing %s: %w", w.tmp, err)
	}
	w.file = nil
	if err := d.Rename(w.tmp, snapName(w.index)); err != nil {
		return false, fmt.Errorf("renaming %s: %w", w.tmp, err)
	}
	return true, nil
}

// writeChunk appends the next chunk of entries, and the trailer after the
// last.
func (w *snapshotWriter) writeChunk() error {
	w.clone.Ascend(w.resumeKey, func(key, value string) bool {
		if w.started && key == w.resumeKey {
			return true
		}
		at, expires := int64(0), false
		if w.expiring {
			at, expires = w.clone.Deadline(key)
		}
		kl := uint32(len(key))
		assert(kl&snapEntryExpiring == 0, "a key's length leaves the snapshot's deadline flag clear")
		if expires {
			kl |= snapEntryExpiring
		}
		w.buf = binary.LittleEndian.AppendUint32(w.buf, kl)
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(value)))
		w.buf = append(w.buf, key...)
		w.buf = append(w.buf, value...)
		if expires {
			w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(at))
		}
		w.count++
		w.resumeKey, w.started = key, true
		return len(w.buf) < snapshotChunkBytes
	})
	if len(w.buf) < snapshotChunkBytes {
		w.done = true
		assert(w.count == uint64(w.clone.Len()), "snapshot wrote every key once")
		w.buf = binary.LittleEndian.AppendUint32(w.buf, snapEndMarker)
		w.buf = binary.LittleEndian.AppendUint64(w.buf, w.count)
		covered := w.buf
		if w.mutation == MutSnapshotCRCBeforeTrailer {
			covered = w.buf[:len(w.buf)-4-8]
		}
		w.crc = crc32.Update(w.crc, crcTable, covered)
		w.buf = binary.LittleEndian.AppendUint32(w.buf, w.crc)
	} else {
		w.crc = crc32.Update(w.crc, crcTable, w.buf)
	}
	if err := w.file.Append(w.buf); err != nil {
		return fmt.Errorf("writing %s: %w", w.tmp, err)
	}
	w.bytes += int64(len(w.buf))
	w.unsynced += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// abort drops a failed snapshot. Nothing depended on it: the log it would
// have replaced is still whole.
func (w *snapshotWriter) abort(d Disk) {
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
	_ = d.Remove(w.tmp) // best effort; recovery removes stray .tmp files too
}
