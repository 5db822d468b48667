package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
)

// The write-ahead log is a sequence of segment files named after the index
// of their first record, so that the order of names is the order of the log
// and a snapshot at index S makes every segment before the one holding S+1
// removable as a whole.
const (
	walPrefix = "wal-"
	walSuffix = ".log"
)

func walName(first uint64) string {
	return fmt.Sprintf("%s%020d%s", walPrefix, first, walSuffix)
}

func parseIndexName(name, prefix, suffix string) (uint64, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[len(prefix):len(name)-len(suffix)], 10, 64)
	return v, err == nil
}

type segment struct {
	name  string
	first uint64 // index of its first record
	bytes int64
}

// Log is the open write-ahead log: its segments, the last of which is open
// for appending, and the index the next record will carry. The single node
// and the cluster node keep their records in it; GroupCommit batches writes
// into it.
type Log struct {
	disk      Disk
	segments  []segment
	file      File // the last segment
	nextIndex uint64
	mutation  Mutation // a planted bug, for the simulator's tests (SingleConfig)
	// strays: a roll failed (createSegment) since the directory was last
	// cleaned of its file, which may still be there (its remove failed
	// too) or come back after a crash (its remove was not made durable).
	strays bool
}

// scanSegment decodes the records of one segment. It returns the records and
// the length of the valid prefix. A record that does not decode is a torn
// tail when nothing valid follows it, or follows it only within the same
// (unsynced, final) batch, and when the damage has the shape a torn write
// leaves (tornShape); otherwise it is corruption and scanSegment returns an
// error naming the file and offset.
func scanSegment(name string, data []byte, expectIndex uint64) ([]Record, int, error) {
	return scanSegmentWith(name, data, expectIndex, nil, MutNone)
}

// scanSegmentWith is scanSegment with the owner's payload decoder (OpenLog's
// decode; nil: none) and a planted mutation (Log.mutation).
func scanSegmentWith(name string, data []byte, expectIndex uint64, decode func(Record) error, mut Mutation) ([]Record, int, error) {
	var recs []Record
	off := 0
	for off < len(data) {
		rec, n, err := decodeRecord(data[off:])
		if err == nil && rec.Index != expectIndex {
			err = fmt.Errorf("index %d where %d was expected", rec.Index, expectIndex)
		}
		if err != nil {
			if allZero(data[off:]) || mut == MutDamageTakenForTornTail {
				return recs, off, nil // reserved space, or a tail torn to zeros
			}
			if laterBatchSynced(data, off+1, expectIndex, endsBatch(data[off:], expectIndex)) {
				return nil, 0, fmt.Errorf("%w: %s: bad record at offset %d (%v) with valid records after it; refusing to start",
					ErrCorrupt, name, off, err)
			}
			if !tornShape(data, off, expectIndex, decode) {
				return nil, 0, fmt.Errorf("%w: %s: bad record at offset %d (%v) in the final batch, and not as a torn write leaves one (no sector of it unwritten, nor cut by the file's end): damage at rest to a synced record; refusing to start",
					ErrCorrupt, name, off, err)
			}
			return recs, off, nil
		}
		recs = append(recs, rec)
		expectIndex++
		off += n
	}
	return recs, off, nil
}

// SectorBytes is the unit the log assumes a disk writes atomically: after
// a power loss each sector of an unsynced write holds either all of its new
// bytes or none of them, in any order. 512 bytes is the smallest sector
// disks have; a disk with larger atomic units still satisfies it.
const SectorBytes = 512

// tornShape reports whether the bad record at off, in the final batch,
// looks like a torn write rather than damage to synced data. Only one batch
// is ever unsynced (GroupCommit), so a torn write can have left its sectors
// unwritten (zeros: the log's space is fresh or reserved as zeros) in any
// order — from off on in off's own sector, whose bytes before off may be
// older records (the batch may start mid-sector, or where a new leader's
// entries cut the log) — or been cut short, leaving the file's data to end
// inside the record; but every byte it did write is the record's own, so a
// header that is there is the header of record expectIndex. A record that is whole but for a few flipped bits (damage at
// rest), or a sector of other bytes (a write that landed in the wrong
// place), has none of these shapes.
func tornShape(data []byte, off int, expectIndex uint64, decode func(Record) error) bool {
	if len(data)-off < recordHeaderBytes {
		return true // cut by the file's end within the header
	}
	// The header's extent, unless it is credible: then the record's.
	end := off + recordHeaderBytes
	typ := data[off+8] & recordTypeMask
	length := int(binary.LittleEndian.Uint32(data[off:]))
	if typ != 0 && typ <= recordTypeLast && binary.LittleEndian.Uint64(data[off+9:]) == expectIndex &&
		length >= 9 && length+8 <= recordBytesMax {
		if lengthDamaged(data[off:], length, expectIndex, SectorBytes-off%SectorBytes, decode) {
			return false
		}
		if off+8+length > len(data) {
			return true // cut by the file's end
		}
		end = off + 8 + length
	}
	// A write cut short (an I/O error or a full disk part-way, then a
	// crash before the undo) leaves the record's first bytes and zeros
	// after them to the end of the file: the file's data ends inside it.
	// (A whole record may itself end in a few zero bytes, the high bytes
	// of a number: fewer than zeroTailMin of them do not count.)
	if z := dataEnd(data); z < end && len(data)-z >= zeroTailMin {
		return true
	}
	return unwrittenSector(data, off, off, end)
}

// zeroTailMin is the run of zeros at the end of a log's data, from inside
// a record, that shows a write cut short rather than the record's own
// zero bytes.
const zeroTailMin = 8

// dataEnd is where the trailing zeros of data begin.
func dataEnd(data []byte) int {
	z := len(data)
	for z >= 8 && binary.LittleEndian.Uint64(data[z-8:]) == 0 {
		z -= 8
	}
	for z > 0 && data[z-1] == 0 {
		z--
	}
	return z
}

// endsBatch reports whether b starts with the header of record index that
// marks the end of its batch, whatever the rest of the record holds.
func endsBatch(b []byte, index uint64) bool {
	return recordHeaderAt(b, index) && b[8]&recordBatchEnd != 0
}

// recordHeaderAt reports whether b starts with a header's type and index
// for record index (its length and checksum aside).
func recordHeaderAt(b []byte, index uint64) bool {
	return len(b) >= recordHeaderBytes && b[8]&recordTypeMask != 0 && b[8]&recordTypeMask <= recordTypeLast &&
		binary.LittleEndian.Uint64(b[9:]) == index
}

// lengthDamaged reports whether the record at the start of b (record
// index), which does not check out with its stated length, does with
// another: then its bytes are all there and only the length field was hit.
// Without this test a damaged length that points past the end of the file,
// or into the reserved zeros after the log's end, would pass for a torn
// write and cut synced records. The lengths tried: the stated one with one
// bit flipped, and those that end the record where a header of record
// index+1 starts, where the trailing zeros start (or up to zeroTailMin
// bytes into them: a record may end in zeros), or at the end of the data.
//
// head is how many of the record's bytes its first sector holds. When
// they are fewer than the length field's 4 and read as zeros, a torn
// write that left that sector unwritten and wrote the next ones leaves
// exactly the right length with its low head bytes zeroed, and the rest
// of the record whole: a length that fits by giving those bytes back
// proves nothing, and is not counted. (The same bytes could be damage at
// rest that zeroed them in a synced record; no single-copy log can tell
// the two apart, and a torn write is by far the likelier. A length whose
// other bytes are zeros too was never credible, and always taken as torn.)
//
// A length that fits the checksum must also frame a payload that decode,
// the owner's decoder (OpenLog), accepts. A write cut short leaves the
// record's first bytes and zeros, and some forty lengths to try over
// them: each fits the stored checksum by chance once in 2^32 (seed 91098
// of the mesh simulator found one, 150 with bit 9 set), but the payload
// such a length frames, the record's first bytes and then zeros, almost
// never decodes. A record whose length alone was damaged at rest decodes
// at its true length, as every record its owner wrote does (recovery
// replays each one through the same decoder), so this gives up no real
// damage. A type decode cannot tell (ErrForeignLog), or no decode, leaves
// the checksum's word final.
func lengthDamaged(b []byte, length int, index uint64, head int, decode func(Record) error) bool {
	want := binary.LittleEndian.Uint32(b[4:8])
	unwrittenHead := head < 4 && allZero(b[:head])
	var field [4]byte
	fits := func(l int) bool {
		if l < 9 || 8+l > len(b) || 8+l > recordBytesMax {
			return false
		}
		if unwrittenHead && l>>(8*head) == length>>(8*head) {
			return false // differs from the stored length only in the unwritten bytes
		}
		binary.LittleEndian.PutUint32(field[:], uint32(l))
		c := crc32.Update(0, crcTable, field[:])
		if crc32.Update(c, crcTable, b[8:8+l]) != want {
			return false
		}
		if decode == nil {
			return true
		}
		err := decode(Record{Type: b[8] & recordTypeMask, BatchEnd: b[8]&recordBatchEnd != 0, Index: index, Payload: recordPayload(b[8], index, b[recordHeaderBytes:8+l])})
		return err == nil || errors.Is(err, ErrForeignLog)
	}
	for bit := range 32 {
		if fits(length ^ 1<<bit) {
			return true
		}
	}
	z := dataEnd(b)
	for end := z; end <= min(z+zeroTailMin, len(b)); end++ {
		if fits(end - 8) {
			return true
		}
	}
	for at := recordHeaderBytes; at+recordHeaderBytes <= z; at++ {
		if recordHeaderAt(b[at:], index+1) && fits(at-8) {
			return true
		}
	}
	return false
}

// unwrittenSector reports whether a sector overlapping data[off:end] holds
// only zeros from the unsynced write's start (from) on, as a sector that a
// torn write never wrote does.
func unwrittenSector(data []byte, from, off, end int) bool {
	end = min(end, len(data))
	for s := off / SectorBytes * SectorBytes; s < end; s += SectorBytes {
		if allZero(data[max(s, from):min(s+SectorBytes, len(data))]) {
			return true
		}
	}
	return false
}

// laterBatchSynced reports whether data from offset from holds a valid record
// that proves a batch after the damaged one was complete: a record ending a
// batch that is itself followed by another valid record. Only the final
// batch can be torn (each batch is synced before the next is written), so
// such a proof means the damage hit synced data.
//
// The scan tries every offset, but rejects candidates on their header before
// paying for a checksum, so it is linear in practice.
//
// sawBatchEnd says the damaged record itself ends its batch (its header is
// there and says so): then one valid record after it is proof enough.
func laterBatchSynced(data []byte, from int, expectIndex uint64, sawBatchEnd bool) bool {
	for off := from; off+recordHeaderBytes <= len(data); {
		if binary.LittleEndian.Uint32(data[off:]) == 0 {
			// No record starts where its length would be zero: skip the
			// run of zeros (reserved space) to 3 bytes before the next
			// non-zero byte, the first place a length could end.
			next := off + 4
			for next < len(data) && data[next] == 0 {
				next++
			}
			off = max(off+1, next-3)
			continue
		}
		if !plausibleHeader(data[off:], expectIndex) {
			off++
			continue
		}
		rec, n, err := decodeRecord(data[off:])
		if err != nil {
			off++
			continue
		}
		if sawBatchEnd {
			return true
		}
		if rec.BatchEnd {
			sawBatchEnd = true
		}
		off += n
	}
	return false
}

func plausibleHeader(b []byte, expectIndex uint64) bool {
	length := binary.LittleEndian.Uint32(b[0:4])
	if length < 9 || int(length)+8 > recordBytesMax || int(length)+8 > len(b) {
		return false
	}
	typ := b[8] & recordTypeMask
	if typ == 0 || typ > recordTypeLast {
		return false
	}
	index := binary.LittleEndian.Uint64(b[9:17])
	return index >= expectIndex && index < expectIndex+1<<32
}

// OpenLog recovers the log from disk. Records with index <= snapIndex are
// skipped (the snapshot holds them); apply is called for every later record
// in order. Segments that hold only records the snapshot covers are removed.
//
// decode decodes a record's payload as apply would, without applying it,
// and returns an error wrapping ErrForeignLog for a type the node does not
// write. Recovery asks it about records it frames itself, to tell a torn
// write from damage at rest (lengthDamaged); nil asks nothing.
//
// A directory with a snapshot and no log segment at all is taken for one
// whose log starts afresh after the snapshot, as a cluster node's does
// when a crash came in the middle of installing a leader's snapshot
// (Reset). The single node's log is never so (openLog).
func OpenLog(d Disk, names []string, snapIndex uint64, decode, apply func(Record) error, logf func(string, ...any)) (*Log, error) {
	return openLogWith(d, names, snapIndex, decode, apply, logf, MutNone, false, replayProgressBytes)
}

// openLog is the single node's OpenLog, with a planted mutation
// (SingleConfig.Mutation), which refuses a snapshot without a log segment
// after it. Its log never lacks one: before each snapshot the log rolls to
// a new segment named one past the snapshot's index, made durable (Roll),
// and neither the cleanup after a snapshot nor recovery removes the last
// segment. So a directory with a snapshot and no segment lost its log to
// something else (segments deleted to free space, a backup that copied
// the snapshot alone), and the writes acknowledged after the snapshot
// with it: started, the node served the snapshot's state as if it were
// the whole, without a word (found by review, with a real server).
func openLog(d Disk, names []string, snapIndex uint64, decode, apply func(Record) error, logf func(string, ...any), mut Mutation) (*Log, error) {
	return openLogWith(d, names, snapIndex, decode, apply, logf, mut, true, replayProgressBytes)
}

// logMissing refuses a snapshot at snapIndex (0: none) with no log segment
// among names after it (see openLog).
func logMissing(snapIndex uint64, names []string) error {
	if snapIndex == 0 || slices.ContainsFunc(names, IsLogFile) {
		return nil
	}
	return fmt.Errorf("%w: %s holds the writes through index %d, but no log segment follows it (%s, made before the snapshot, is never removed): the log of the writes after the snapshot is missing; refusing to start. To start from the snapshot alone, losing those writes, create the empty file %s in the data directory",
		ErrCorrupt, snapName(snapIndex), snapIndex, walName(snapIndex+1), walName(snapIndex+1))
}

// LogMissing refuses a data directory whose snapshot has no log segment
// after it, as the single node does (openLog), for a node whose log, like
// the single node's, rolls to a new segment before each snapshot and never
// lacks one otherwise: a mesh node. (OpenLog takes such a directory for a
// log that starts afresh after the snapshot, as a cluster node's may after
// a crash in a snapshot's install.)
func (r *Recovered) LogMissing() error { return logMissing(r.Index, r.Names) }

// replayProgressBytes: recovery logs how far its replay has come each time
// it has read another this many bytes of log. The log since the last
// snapshot may be as large as the snapshot (Snapshotter), gigabytes that
// take seconds to replay (about a second a gigabyte on the development
// VM), and the node said nothing between its start and the end of it.
const replayProgressBytes = 1 << 30

// openLogWith is OpenLog with a planted mutation; needLog: a snapshot
// without a log segment after it is refused (openLog); progressBytes: see
// replayProgressBytes.
func openLogWith(d Disk, names []string, snapIndex uint64, decode, apply func(Record) error, logf func(string, ...any), mut Mutation, needLog bool, progressBytes int64) (*Log, error) {
	assert(progressBytes > 0, "openLog: progressBytes must be positive")
	w := &Log{disk: d, nextIndex: snapIndex + 1, mutation: mut}
	for _, name := range names {
		if first, ok := parseIndexName(name, walPrefix, walSuffix); ok {
			w.segments = append(w.segments, segment{name: name, first: first})
		}
	}
	// Names are zero-padded, so the sorted listing is in log order.
	if err := w.removeEmptySegments(logf); err != nil {
		return nil, err
	}
	// An empty last segment may be a failed roll's file that a crash
	// brought back (see removeEmptySegments): then the segment before it
	// is the log's true last, and may end in a tail (below), and records
	// past the empty file's name.
	emptyLast := false
	if n := len(w.segments); n >= 2 {
		size, err := fileSize(d, w.segments[n-1].name)
		if err != nil {
			return nil, err
		}
		emptyLast = size == 0
	}
	if emptyLast && w.segments[len(w.segments)-1].first <= snapIndex {
		last := w.segments[len(w.segments)-1]
		// Named inside the snapshot: a fresh segment is named one past
		// the log's last record, which the snapshot never passes, so this
		// is a failed roll's file, and the log went on in the segment
		// before it (a cluster node snapshots at the index it applied,
		// which may lie past a failed roll's). Taken for where the log
		// went on, it had the segment before removed as covered, and the
		// start refused ("log ends at index 5 before the snapshot's 10").
		logf("removing %s, an empty log segment a failed roll left (named inside the snapshot at index %d)", last.name, snapIndex)
		if err := d.Remove(last.name); err != nil {
			return nil, fmt.Errorf("removing %s: %w", last.name, err)
		}
		w.segments = w.segments[:len(w.segments)-1]
		emptyLast = false
	}
	// A segment whose successor starts at or before snapIndex+1 holds nothing
	// the snapshot lacks: a crash came between snapshot and cleanup.
	before := len(w.segments)
	if err := w.removeCovered(snapIndex, emptyLast, decode); err != nil {
		return nil, fmt.Errorf("removing log segments covered by the snapshot: %w", err)
	}
	if removed := before - len(w.segments); removed > 0 {
		logf("removed %d log segments covered by the snapshot at index %d", removed, snapIndex)
	}
	if len(w.segments) == 0 {
		if needLog {
			if err := logMissing(snapIndex, nil); err != nil {
				return nil, err
			}
		}
		if err := w.createSegment(snapIndex + 1); err != nil {
			return nil, err
		}
		return w, nil
	}
	if w.segments[0].first > snapIndex+1 {
		return nil, fmt.Errorf("%w: log starts at index %d but the snapshot ends at %d: records are missing",
			ErrCorrupt, w.segments[0].first, snapIndex)
	}
	emptyLast = emptyLast && len(w.segments) >= 2
	expect := w.segments[0].first
	read, nextProgress := int64(0), progressBytes
	for i := 0; i < len(w.segments); i++ { // the failed roll's file may go
		seg := &w.segments[i]
		if seg.first != expect && i > 0 && i == len(w.segments)-1 && seg.first < expect {
			// An empty last segment named inside the one before: a failed
			// roll's file, which a crash brought back (see
			// removeEmptySegments). The one before is the last.
			if size, err := fileSize(d, seg.name); err != nil || size > 0 {
				return nil, fmt.Errorf("%w: %s starts at index %d, expected %d", ErrCorrupt, seg.name, seg.first, expect)
			}
			logf("removing %s, an empty log segment a failed roll left", seg.name)
			if err := d.Remove(seg.name); err != nil {
				return nil, fmt.Errorf("removing %s: %w", seg.name, err)
			}
			w.segments = w.segments[:i]
			prev := w.segments[i-1].name
			f, err := d.OpenAppend(prev)
			if err != nil {
				return nil, fmt.Errorf("opening %s: %w", prev, err)
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, fmt.Errorf("syncing %s: %w", prev, err)
			}
			w.file = f
			break
		}
		if seg.first != expect {
			return nil, fmt.Errorf("%w: %s starts at index %d, expected %d", ErrCorrupt, seg.name, seg.first, expect)
		}
		last := i == len(w.segments)-1
		beforeEmpty := emptyLast && i == len(w.segments)-2
		if (last || beforeEmpty) && mut != MutFailedSyncKept {
			// Only the last segment can hold what an earlier life failed
			// to sync (or the one before a failed roll's file): every
			// segment before it was synced before the next was created,
			// and a failed fsync stops the node. Its clean
			// pages are dropped so that a batch whose fsync failed the
			// ext4 way, if a crash came before its cut, or a crashed
			// process's tail whose fsync failed at the last start, is read
			// as the medium holds it (CacheDropper), not as written.
			dropCache(d, seg.name, logf)
		}
		data, recs, valid, err := readSegment(d, seg.name, expect, decode, mut)
		if err != nil {
			return nil, err
		}
		if valid < len(data) && !last {
			// Every segment but the last was synced before the next one was
			// created, so a bad tail here is damage, not a torn write...
			next := w.segments[i+1]
			if !beforeEmpty || next.first > expect+uint64(len(recs)) {
				return nil, fmt.Errorf("%w: %s: bad record at offset %d in a sealed segment; refusing to start",
					ErrCorrupt, seg.name, valid)
			}
			// ...unless the next is an empty file named at most one past
			// this one's valid records: a roll cuts the segment to its
			// last record, durably, before it makes the next, so a tail
			// here means that roll failed (its directory sync), the log
			// went on in this segment (reserved zeros behind it at once,
			// then batches), and a crash brought the file back. A roll
			// that did its work named the next segment one past this
			// one's whole records: a tail that cut one of them leaves
			// that name out of reach, and is refused above.
			logf("removing %s, an empty log segment a failed roll left; %s is the log's last", next.name, seg.name)
			if err := d.Remove(next.name); err != nil {
				return nil, fmt.Errorf("removing %s: %w", next.name, err)
			}
			w.segments = w.segments[:i+1]
			last = true
		}
		for _, rec := range recs {
			if rec.Index > snapIndex {
				if err := apply(rec); err != nil {
					return nil, fmt.Errorf("%w: %s: record %d: %w", ErrCorrupt, seg.name, rec.Index, err)
				}
			}
		}
		expect += uint64(len(recs))
		seg.bytes = int64(valid)
		if read += int64(len(data)); read >= nextProgress && i < len(w.segments)-1 {
			logf("replaying the log: %d of %d segments read (%d MiB), through index %d",
				i+1, len(w.segments), read>>20, expect-1)
			nextProgress = (read/progressBytes + 1) * progressBytes
		}
		if last {
			f, err := d.OpenAppend(seg.name)
			if err != nil {
				return nil, fmt.Errorf("opening %s: %w", seg.name, err)
			}
			if valid < len(data) {
				if allZero(data[valid:]) {
					// The space reserved ahead of the log (Reserve), which
					// every start after a clean stop finds: not a warning,
					// or operators learn to ignore the log's warnings.
					logf("trimming the zeroed tail of %s at offset %d (%d bytes: log space reserved ahead, or a torn write of zeros)", seg.name, valid, len(data)-valid)
				} else if err := keepCut(d, seg.name, valid, data[valid:], logf); err != nil {
					f.Close()
					return nil, err
				} else {
					logf("truncating torn tail of %s at offset %d (%d bytes)", seg.name, valid, len(data)-valid)
				}
				if err := f.Truncate(int64(valid)); err != nil {
					return nil, fmt.Errorf("truncating %s: %w", seg.name, err)
				}
			}
			// After a process crash the tail may be in the page cache only:
			// make it durable before anything is served from it, or a later
			// power loss could take back what was already read.
			sync := f.Sync
			if mut == MutRecoveredTailNotSynced {
				sync = func() error { return nil }
			}
			if err := sync(); err != nil {
				return nil, fmt.Errorf("syncing %s: %w", seg.name, err)
			}
			w.file = f
		}
	}
	if expect <= snapIndex {
		return nil, fmt.Errorf("%w: log ends at index %d before the snapshot's %d", ErrCorrupt, expect-1, snapIndex)
	}
	w.nextIndex = expect
	return w, nil
}

// removeEmptySegments removes the empty segments but the last, before
// recovery reads the log. An empty segment holds no record, but its name
// says where the records after it begin, and one can lie: a roll whose
// directory sync failed leaves the new segment's file (createSegment
// removes it, but not durably), while the batch goes on in the segment
// before and the next roll makes another name. Believed, it made the next
// start refuse the log, and it would have let the cleanup of segments a
// snapshot covers remove the segment before it, which holds records the
// snapshot lacks. No roll makes a segment after an empty one, so only the
// last may be empty by right: a fresh segment, whose name (one past the
// log's last record) the cleanup of what a snapshot covers relies on. A
// failed roll's file that is last is told by its name (openLog).
func (w *Log) removeEmptySegments(logf func(string, ...any)) error {
	if len(w.segments) < 2 {
		return nil
	}
	last := w.segments[len(w.segments)-1]
	kept := w.segments[:0]
	for _, seg := range w.segments[:len(w.segments)-1] {
		size, err := fileSize(w.disk, seg.name)
		if err != nil {
			return err
		}
		if size > 0 {
			kept = append(kept, seg)
			continue
		}
		logf("removing %s, an empty log segment a failed roll left", seg.name)
		if err := w.disk.Remove(seg.name); err != nil {
			return fmt.Errorf("removing %s: %w", seg.name, err)
		}
	}
	w.segments = append(kept, last)
	return nil
}

// fileSize is the size of the file called name.
func fileSize(d Disk, name string) (int64, error) {
	f, err := d.OpenAppend(name)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", name, err)
	}
	defer f.Close()
	return f.Size(), nil
}

// keepCut saves the bytes a torn tail cut from a segment, up to their last
// non-zero byte, in a side file of the data directory before they are
// truncated. A torn write and damage at rest cannot always be told apart at
// the end of the log, and the cut record may have been acknowledged:
// nothing may vanish without a trace. The file is named after the segment
// and the offset (wal-….log.cut-<offset>, then .2, .3, … for later cuts at
// the same offset), which recovery never reads.
func keepCut(d Disk, segName string, offset int, cut []byte, logf func(string, ...any)) error {
	end := len(cut)
	for end > 0 && cut[end-1] == 0 {
		end--
	}
	// Crashes in a row often tear the log at the same offset (the first
	// batch after a restart goes where the last cut was): each cut gets a
	// file of its own, never the truncation of an earlier one's.
	names, err := d.List()
	if err != nil {
		return fmt.Errorf("listing the data directory to save the bytes cut from %s: %w", segName, err)
	}
	name := fmt.Sprintf("%s.cut-%d", segName, offset)
	for n := 2; slices.Contains(names, name); n++ {
		name = fmt.Sprintf("%s.cut-%d.%d", segName, offset, n)
	}
	f, err := d.Create(name)
	if err == nil {
		err = f.Append(cut[:end])
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = d.SyncDir()
	}
	if err != nil {
		return fmt.Errorf("saving the %d bytes cut from the torn tail of %s at offset %d in %s (refusing to cut them without a copy; free space and start again): %w",
			end, segName, offset, name, err)
	}
	logf("kept the %d bytes cut from %s at offset %d in %s", end, segName, offset, name)
	return nil
}

// readAttempts bounds how many times recovery reads a file that looks
// damaged. A bit flipped on the way from the medium is transient; cutting
// acknowledged records off as a "torn tail" because of one would lose them.
// So damage is believed only when two reads agree on every byte.
const readAttempts = 4

// readSegment reads and scans a segment. A clean read is used at once. A
// read that shows damage (a torn tail or corruption) is used only once a
// second read returns the very same bytes; reads that keep disagreeing are
// refused, and a later start tries again.
func readSegment(d Disk, name string, expect uint64, decode func(Record) error, mut Mutation) ([]byte, []Record, int, error) {
	type seen struct {
		crc  uint32
		size int
	}
	var earlier []seen
	for range readAttempts {
		data, err := d.ReadFile(name)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("reading %s: %w", name, err)
		}
		recs, valid, err := scanSegmentWith(name, data, expect, decode, mut)
		if err == nil && allZero(data[valid:]) {
			return data, recs, valid, nil // clean, perhaps with reserved space
		}
		this := seen{crc32.Checksum(data, crcTable), len(data)}
		if slices.Contains(earlier, this) {
			return data, recs, valid, err // the damage is on the medium
		}
		earlier = append(earlier, this)
	}
	return nil, nil, 0, fmt.Errorf("%w: %s: %d reads returned %d different contents (transient read errors); refusing to start, try again",
		ErrCorrupt, name, readAttempts, len(earlier))
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// reserveBytes is how far ahead of the log's end a Reserver file is kept
// zero-filled, so that the fsyncs of the batches written there flush data
// alone.
const reserveBytes = 1 << 20

// Reserve keeps zero-filled space ahead of the end, where the file can. It
// is an optimisation: an error leaves the log usable.
func (w *Log) Reserve() error {
	if r, ok := w.file.(Reserver); ok {
		return r.Reserve(reserveBytes)
	}
	return nil
}

// createSegment starts a new last segment whose first record is first, and
// makes its existence durable before any record in it is acknowledged.
func (w *Log) createSegment(first uint64) error {
	name := walName(first)
	f, err := w.disk.Create(name)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	syncDir := w.disk.SyncDir
	if w.mutation == MutNewSegmentDirNotSynced {
		syncDir = func() error { return nil }
	}
	if err := syncDir(); err != nil {
		f.Close()
		// Left behind, the empty file would sit before the next segment
		// under a name that no longer fits the records (the batch goes
		// to the old segment, the next roll makes another name), and the
		// next start would refuse the log. Recovery removes one that a
		// crash brings back (openLog).
		w.strays = true
		if rmErr := w.disk.Remove(name); rmErr != nil {
			return fmt.Errorf("syncing directory after creating %s: %w (and removing it: %v)", name, err, rmErr)
		}
		return fmt.Errorf("syncing directory after creating %s: %w", name, err)
	}
	if w.file != nil {
		w.file.Close()
	}
	w.file = f
	w.segments = append(w.segments, segment{name: name, first: first})
	return nil
}

// Roll seals the current segment and starts a new one whose first record
// will be first. It is called only between batches, with no sync in flight.
func (w *Log) Roll(first uint64) error {
	last := w.segments[len(w.segments)-1]
	if last.bytes == 0 {
		assert(last.first == first, "an empty segment is named after its first record")
		return nil // already fresh
	}
	// A sealed segment must end with its last record: recovery calls
	// anything after it in a sealed segment damage. Drop reserved zeros,
	// durably, before a later segment exists.
	if _, ok := w.file.(Reserver); ok && w.mutation != MutRollKeepsReservedZeros {
		if err := w.Truncate(last.bytes); err != nil {
			return err
		}
		if err := w.Sync(); err != nil {
			return err
		}
	}
	return w.createSegment(first)
}

// Size is the length of the last segment.
func (w *Log) Size() int64 { return w.segments[len(w.segments)-1].bytes }

// Append writes p at the end of the last segment. On error an unknown
// prefix of p may be on disk: the caller truncates back.
func (w *Log) Append(p []byte) error {
	seg := &w.segments[len(w.segments)-1]
	err := w.file.Append(p)
	if err != nil {
		seg.bytes = w.file.Size()
		return fmt.Errorf("writing %s: %w", seg.name, err)
	}
	seg.bytes += int64(len(p))
	return nil
}

// Truncate cuts the last segment back to size bytes, undoing a failed batch.
func (w *Log) Truncate(size int64) error {
	seg := &w.segments[len(w.segments)-1]
	if err := w.file.Truncate(size); err != nil {
		return fmt.Errorf("truncating %s: %w", seg.name, err)
	}
	seg.bytes = size
	return nil
}

// Sync makes the last segment durable.
func (w *Log) Sync() error {
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", w.segments[len(w.segments)-1].name, err)
	}
	return nil
}

// RemoveBefore removes sealed segments whose records all have index <= upTo.
func (w *Log) RemoveBefore(upTo uint64) error { return w.removeCovered(upTo, false, nil) }

// removeCovered is RemoveBefore at recovery, where the last segment may be
// empty (emptyLast). Such a segment's name is no proof of where the one
// before it ends: it may be a failed roll's file that a crash brought back
// (see removeEmptySegments), whose records went to the segment before. So
// that segment is read, and kept if it holds a record past upTo (the
// reading of the log then removes the empty file). Taken for proof, a
// failed roll's file named one past a snapshot had the segment before
// removed with the records after the snapshot (simulator, cluster seed
// 106716: a leader lost its term's first entry, counted toward its
// commit). A segment that cannot be read is kept too, for the reading of
// the log to judge.
func (w *Log) removeCovered(upTo uint64, emptyLast bool, decode func(Record) error) error {
	for len(w.segments) >= 2 && w.segments[1].first <= upTo+1 {
		if first := w.segments[0].first; emptyLast && len(w.segments) == 2 {
			_, recs, _, err := readSegment(w.disk, w.segments[0].name, first, decode, w.mutation)
			if err != nil || first+uint64(len(recs)) > upTo+1 {
				return nil
			}
		}
		if err := w.disk.Remove(w.segments[0].name); err != nil {
			return fmt.Errorf("removing %s: %w", w.segments[0].name, err)
		}
		w.segments = w.segments[1:]
	}
	return nil
}

// TotalBytes is the size of every segment.
func (w *Log) TotalBytes() int64 {
	var n int64
	for _, s := range w.segments {
		n += s.bytes
	}
	return n
}

// Close closes the last segment. The log must not be used afterwards.
func (w *Log) Close() {
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
}

// NextIndex is the index the next record will carry.
func (w *Log) NextIndex() uint64 { return w.nextIndex }

// Segments is the number of segment files.
func (w *Log) Segments() int { return len(w.segments) }

// FirstIndex is the index of the first record the log's oldest segment holds
// (or would hold, when it is empty).
func (w *Log) FirstIndex() uint64 { return w.segments[0].first }

func (w *Log) lastName() string { return w.segments[len(w.segments)-1].name }

// TruncateFrom removes every record with index >= from, durably, so that
// the next record appended carries index from. A replicated log needs it
// when a new leader overwrites entries this node had not committed. It may
// reach back into sealed segments: those after the cut are removed (the
// directory synced), and the one holding the cut is reopened for appending.
// It must not be called while a sync is in flight.
func (w *Log) TruncateFrom(from uint64) error {
	if from >= w.nextIndex {
		return nil
	}
	assert(from >= w.segments[0].first, "TruncateFrom: cut below the oldest segment")
	// A failed roll's file is named where the segment before it ended
	// then, and recovery trusts that name (a file named inside the
	// records before it is taken for such a file and removed). A cut
	// below it made the name a lie: a crash brought the file back named
	// past the log's end, and the next start refused the good log. So it
	// goes for good first.
	if err := w.removeStrays(); err != nil {
		return fmt.Errorf("cutting the log at %d: %w", from, err)
	}
	keep := len(w.segments)
	for keep > 1 && w.segments[keep-1].first > from {
		keep--
	}
	// The segments past the cut go last first, each removal durable
	// before the next: a crash then leaves the log whole up to wherever
	// the cut had come, never with a gap. Synced once after them all, a
	// power loss could keep a removal and lose a later one's (nothing
	// orders directory changes that no sync covered), and the next start
	// found a segment after a gap, and refused the log (simulator, cluster
	// seed 115081: wal-292 removed, wal-294 back).
	for i := len(w.segments) - 1; i >= keep; i-- {
		if i == len(w.segments)-1 && w.file != nil {
			w.file.Close()
			w.file = nil
		}
		if err := w.disk.Remove(w.segments[i].name); err != nil {
			return fmt.Errorf("removing %s: %w", w.segments[i].name, err)
		}
		w.segments = w.segments[:i]
		if err := w.disk.SyncDir(); err != nil {
			return fmt.Errorf("syncing the directory after cutting the log at %d: %w", from, err)
		}
	}
	seg := &w.segments[keep-1]
	if w.file == nil {
		f, err := w.disk.OpenAppend(seg.name)
		if err != nil {
			return fmt.Errorf("opening %s: %w", seg.name, err)
		}
		w.file = f
	}
	// Find where record from starts: the segment is scanned once, which is
	// rare enough (a leader change with uncommitted entries) not to matter.
	off := int64(0)
	if from > seg.first {
		data, err := w.disk.ReadFile(seg.name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", seg.name, err)
		}
		recs, valid, err := scanSegment(seg.name, data[:min(int64(len(data)), seg.bytes)], seg.first)
		if err != nil {
			return err
		}
		n := from - seg.first
		if uint64(len(recs)) < n {
			return fmt.Errorf("%w: %s holds %d records, cutting at index %d needs %d", ErrCorrupt, seg.name, len(recs), from, n)
		}
		off = int64(valid)
		for _, r := range recs[n:] {
			off -= int64(recordHeaderBytes + len(r.Payload))
		}
	}
	if err := w.Truncate(off); err != nil {
		return err
	}
	if err := w.Sync(); err != nil {
		return err
	}
	w.nextIndex = from
	return nil
}

// removeStrays removes, durably, the files that failed rolls may have
// left in the directory (strays), if any roll failed since it last did:
// every log segment there that is not one of the log's.
func (w *Log) removeStrays() error {
	if !w.strays {
		return nil
	}
	names, err := w.disk.List()
	if err != nil {
		return fmt.Errorf("listing the directory for the files of failed rolls: %w", err)
	}
	for _, name := range names {
		if !IsLogFile(name) || slices.ContainsFunc(w.segments, func(s segment) bool { return s.name == name }) {
			continue
		}
		if err := w.disk.Remove(name); err != nil {
			return fmt.Errorf("removing %s, a failed roll's file: %w", name, err)
		}
	}
	if err := w.disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the directory after removing the files of failed rolls: %w", err)
	}
	w.strays = false
	return nil
}

// Reset removes every segment and starts an empty log whose next record
// carries index next: a replicated node does it after installing a
// snapshot that replaces everything it had.
func (w *Log) Reset(next uint64) error {
	if err := w.removeStrays(); err != nil {
		return fmt.Errorf("starting the log afresh at %d: %w", next, err)
	}
	if w.file != nil {
		w.file.Close()
		w.file = nil
	}
	for _, seg := range w.segments {
		if err := w.disk.Remove(seg.name); err != nil {
			return fmt.Errorf("removing %s: %w", seg.name, err)
		}
	}
	w.segments = w.segments[:0]
	// createSegment syncs the directory, which makes the removals durable
	// with the creation.
	if err := w.createSegment(next); err != nil {
		return err
	}
	w.nextIndex = next
	return nil
}

// IsLogFile reports whether name is a log segment's.
func IsLogFile(name string) bool {
	_, ok := parseIndexName(name, walPrefix, walSuffix)
	return ok
}
