package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
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
	return loadSnapshotFrom(name, bytesHandle(data), snapshotReadBytes, mut)
}

// snapshotReadBytes is how much of a snapshot file recovery reads at a
// time. Recovery reads a snapshot through a RangeReader where the disk has
// one, so that it never holds the file whole beside the store it builds
// from it: read whole, a snapshot of a store that filled most of the
// machine's memory took as much again at the next start, and the node that
// had served it could not start (a 276 MB snapshot took a restarted node to
// 713 MB, where it had run at 448 MB; found by review).
const snapshotReadBytes = 1 << 20

// bytesHandle is a ReadHandle over bytes already in memory: a snapshot
// that arrived whole, or a disk that can only read files whole.
type bytesHandle []byte

func (b bytesHandle) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (b bytesHandle) Size() int64  { return int64(len(b)) }
func (b bytesHandle) Close() error { return nil }

// snapReader reads a snapshot file from start to end, chunkBytes at a time
// (more only for an entry larger than that), keeping the crc of every byte
// before the file's last 4, which hold the crc.
type snapReader struct {
	h          ReadHandle
	name       string
	size       int64
	chunkBytes int
	off        int64  // where the next read from the file starts
	mem        []byte // the buffer buf is a part of
	buf        []byte // read, not yet consumed
	crc        uint32
}

// next returns the next n bytes of the file. The caller has made sure the
// file holds them (a length is checked against what is left before it is
// believed). They stay valid until the next call.
func (r *snapReader) next(n int) ([]byte, error) {
	assert(n >= 0 && int64(n-len(r.buf)) <= r.size-r.off, "snapReader: a read past the file's end")
	if len(r.buf) < n {
		want := int(min(int64(max(n-len(r.buf), r.chunkBytes)), r.size-r.off))
		total := len(r.buf) + want
		if cap(r.mem) < total {
			r.mem = make([]byte, total)
		}
		have := copy(r.mem[:total], r.buf) // buf may lie in mem: copy moves
		r.buf = r.mem[:total]
		got, err := r.h.ReadAt(r.buf[have:], r.off)
		if got < want {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("the file ends at offset %d, short of the %d bytes it had when opened", r.off+int64(got), r.size)
			}
			return nil, fmt.Errorf("reading %s: %w", r.name, err)
		}
		// The crc covers every byte before the file's last 4.
		covered := int(max(0, min(int64(want), r.size-4-r.off)))
		r.crc = crc32.Update(r.crc, crcTable, r.buf[have:have+covered])
		r.off += int64(want)
	}
	p := r.buf[:n]
	r.buf = r.buf[n:]
	return p, nil
}

// left is how many bytes of the file are not consumed yet.
func (r *snapReader) left() int64 { return r.size - r.off + int64(len(r.buf)) }

// loadSnapshotFrom checks and decodes the snapshot file h (called name),
// reading it chunkBytes at a time: the entries are decoded as they are
// read, and the store they make is given up if the crc, known at the end,
// does not check out. A read's error is returned as it is, not wrapped in
// ErrCorrupt: a later read may succeed.
func loadSnapshotFrom(name string, h ReadHandle, chunkBytes int, mut Mutation) (*Store, uint64, SnapshotMeta, error) {
	var meta SnapshotMeta
	r := &snapReader{h: h, name: name, size: h.Size(), chunkBytes: chunkBytes}
	size := r.size
	b, inPlace := h.(bytesHandle)
	if inPlace {
		// Held whole already (a snapshot received whole): read in place,
		// not copied a chunk at a time.
		r.buf, r.off = b, size
		if size >= 4 {
			r.crc = crc32.Checksum(b[:size-4], crcTable)
		}
	}
	if size < int64(snapHeaderSize+snapTrailer) {
		return nil, 0, meta, fmt.Errorf("%w: %s: not a snapshot (bad header or too short)", ErrCorrupt, name)
	}
	head, err := r.next(snapHeaderSize)
	if err != nil {
		return nil, 0, meta, err
	}
	magic := string(head[:len(snapMagic)])
	index := binary.LittleEndian.Uint64(head[len(snapMagic):])
	v3 := magic == snapMagic3
	if size >= int64(snapHeaderSize+8+4+snapTrailer) && (magic == snapMagic2 || v3) {
		head, err := r.next(8 + 4)
		if err != nil {
			return nil, 0, meta, err
		}
		meta.Term = binary.LittleEndian.Uint64(head)
		extra := int64(binary.LittleEndian.Uint32(head[8:]))
		if extra > snapExtraMax || int64(snapHeaderSize+8+4)+extra+snapTrailer > size {
			return nil, 0, meta, fmt.Errorf("%w: %s: extra section of %d bytes overruns the file", ErrCorrupt, name, extra)
		}
		p, err := r.next(int(extra))
		if err != nil {
			return nil, 0, meta, err
		}
		meta.Extra = p
		if !inPlace {
			meta.Extra = slices.Clone(p) // p is the reader's buffer
		}
	} else if magic != snapMagic {
		return nil, 0, meta, fmt.Errorf("%w: %s: not a snapshot (bad header or too short)", ErrCorrupt, name)
	}
	// The entries, decoded as they come; an entry that does not decode
	// stops the decoding, and its error is given only if the crc checks
	// out: otherwise the file is damaged, and says so first.
	s := NewStore()
	var bad error
	prev := ""
	n := uint64(0)
	for ; r.left() > snapTrailer && bad == nil; n++ {
		if r.left()-snapTrailer < 8 {
			bad = fmt.Errorf("%w: %s: entry %d truncated", ErrCorrupt, name, n)
			break
		}
		p, err := r.next(8)
		if err != nil {
			return nil, 0, meta, err
		}
		kl := uint64(binary.LittleEndian.Uint32(p[0:4]))
		vl := uint64(binary.LittleEndian.Uint32(p[4:8]))
		tail := uint64(0)
		if v3 && kl&snapEntryExpiring != 0 {
			kl &^= snapEntryExpiring
			tail = 8
		}
		if kl+vl+tail > uint64(r.left()-snapTrailer) {
			bad = fmt.Errorf("%w: %s: entry %d overruns the file", ErrCorrupt, name, n)
			break
		}
		if p, err = r.next(int(kl + vl + tail)); err != nil {
			return nil, 0, meta, err
		}
		key := string(p[:kl])
		// Pair assertion with the writer: keys were written in strict order.
		if n > 0 && key <= prev {
			bad = fmt.Errorf("%w: %s: keys out of order at entry %d", ErrCorrupt, name, n)
			break
		}
		s.tree.ReplaceOrInsert(entry{key: key, value: string(p[kl : kl+vl])})
		if tail != 0 {
			at := int64(binary.LittleEndian.Uint64(p[kl+vl:]))
			if at <= 0 {
				bad = fmt.Errorf("%w: %s: entry %d has deadline %d", ErrCorrupt, name, n, at)
				break
			}
			s.ttl.set(key, at)
		}
		prev = key
	}
	// The rest of the file: what a bad entry left unread, and the trailer.
	for r.left() > snapTrailer {
		if _, err := r.next(int(min(r.left()-snapTrailer, int64(chunkBytes)))); err != nil {
			return nil, 0, meta, err
		}
	}
	trailer, err := r.next(snapTrailer)
	if err != nil {
		return nil, 0, meta, err
	}
	if got, want := r.crc, binary.LittleEndian.Uint32(trailer[12:]); got != want && mut != MutSnapshotChecksumIgnored {
		return nil, 0, meta, fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, name)
	}
	if binary.LittleEndian.Uint32(trailer) != snapEndMarker {
		return nil, 0, meta, fmt.Errorf("%w: %s: missing end marker", ErrCorrupt, name)
	}
	if bad != nil {
		return nil, 0, meta, bad
	}
	if count := binary.LittleEndian.Uint64(trailer[4:]); uint64(s.Len()) != count {
		return nil, 0, meta, fmt.Errorf("%w: %s: holds %d entries, trailer says %d", ErrCorrupt, name, s.Len(), count)
	}
	return s, index, meta, nil
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
