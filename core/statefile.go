package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// StateFile keeps one small piece of state durable, such as a Raft node's
// term and vote. The file starts with stateMagic; each Save appends a record
//
//	[length u32][crc32c of payload u32][crc32c of the 8 bytes before u32][payload]
//
// and syncs it; the last valid record is the state. A record that fits in a
// sector (SectorBytes) never straddles two: when it would, the Save pads the
// sector's rest with 0xff bytes (statePad; a run of them is no record, whose
// length is at most stateBytesMax) and the record begins the next one. A sector is written whole or not at all,
// so a small record that a crash cut short reads as zeros, or ends with the
// file; one that is there whole and fails its checksums was damaged at rest.
//
// A record that fails its checksums at the very end of the file, in the
// shape a torn write leaves, is a Save that a crash cut short: the Save
// never returned, so nothing relied on it, and it is ignored (and logged).
// The shapes: the file ends inside the record whose header checks out (so
// its length can be trusted), or the record's sector was never written
// (zeros), or the sector of its padding was never written while the
// record's was; for a record larger than a sector, any of its sectors never
// written. Any other damage — a whole record with flipped bits, a sector of
// other bytes — may hit a state that was relied on (a vote sent), so it is
// refused, as is a bad record followed by a valid one. A state is never
// empty, so that a record of zeros is never valid. The file is rewritten
// from scratch (temporary file, sync, rename, directory sync) once it grows
// past stateFileBytesMax, and when a file of an earlier format is opened:
// the first (no magic, 8-byte headers, whose length could not be trusted)
// or the second (stateMagicV2: records straddled sectors, so that zeros a
// record held in its second sector were taken for a sector never written,
// and damage elsewhere in it for a torn write: the simulator's seed 1100728,
// where a node so forgot the vote it had cast).
type StateFile struct {
	disk Disk
	name string
	file File
	size int64
	// broken: a Save failed part-way, and whatever it left at the end
	// must not have records appended after it.
	broken bool
}

const (
	stateMagic         = "DKVSTAT3"
	stateMagicV2       = "DKVSTAT2" // the same length as stateMagic
	statePad           = 0xff
	stateHeaderBytes   = 12
	stateV1HeaderBytes = 8
	stateBytesMax      = 64 << 10 // one payload
	stateFileBytesMax  = 256 << 10
)

// OpenStateFile opens (or creates) the state file called name and returns
// the last state saved in it, nil if none.
func OpenStateFile(d Disk, name string, logf func(string, ...any)) (*StateFile, []byte, error) {
	names, err := d.List()
	if err != nil {
		return nil, nil, fmt.Errorf("listing data directory: %w", err)
	}
	tmp := name + ".tmp"
	exists := false
	for _, n := range names {
		switch n {
		case tmp:
			// A rewrite that never reached its rename: never relied upon.
			if err := d.Remove(tmp); err != nil {
				return nil, nil, fmt.Errorf("removing %s: %w", tmp, err)
			}
		case name:
			exists = true
		}
	}
	f := &StateFile{disk: d, name: name}
	if !exists {
		if err := f.rewrite(nil); err != nil {
			return nil, nil, err
		}
		return f, nil, nil
	}
	var data []byte
	var state []byte
	var valid int
	// A damaged tail is believed only when two reads agree, as in the log.
	for attempt := 0; ; attempt++ {
		data, err = d.ReadFile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", name, err)
		}
		state, valid, err = parseStates(name, data)
		if err == nil && valid == len(data) {
			break
		}
		again, rerr := d.ReadFile(name)
		if rerr != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", name, rerr)
		}
		if bytes.Equal(again, data) {
			if err != nil {
				return nil, nil, err
			}
			logf("%s: ignoring %d bytes after offset %d (a save cut short by a crash)", name, len(data)-valid, valid)
			break
		}
		if attempt+1 >= readAttempts {
			return nil, nil, fmt.Errorf("%w: %s: reads keep returning different contents; refusing to start, try again", ErrCorrupt, name)
		}
	}
	if !bytes.HasPrefix(data, []byte(stateMagic)) {
		logf("%s: rewriting in the current format", name)
	}
	// The state just read may be in the page cache only, after a process
	// crash between a save's write and its fsync (the simulator's seed
	// 5620), and it must be durable before the node acts on it (votes in
	// its term). Syncing the file as read was not enough: where an fsync
	// had failed (this start's, or a crashed process's), ext4 keeps the
	// pages it could not write readable and clean, and a later fsync
	// reports success without them; the node then acted on a state a
	// power loss took back, and appended records after the hole it left
	// (mesh seed 744). So the state is written afresh, in a file of its
	// own (rewrite: temporary file, sync, rename, directory sync, which
	// also makes the name durable: the simulator's seed 1950265). Where
	// the disk has no room for that copy, the file is made durable in
	// place instead (syncInPlace): a node on a full disk refused to start
	// until space was freed, though it could serve reads (found by
	// review, with real processes on a full tmpfs).
	buf := []byte(stateMagic)
	if state != nil {
		buf = appendState(buf, state)
	}
	if err := f.writeTmp(buf); err != nil {
		if !errors.Is(err, ErrDiskFull) {
			return nil, nil, err
		}
		if err := f.syncInPlace(data, valid, err, logf); err != nil {
			return nil, nil, err
		}
		return f, state, nil
	}
	if err := f.install(len(buf)); err != nil {
		return nil, nil, err
	}
	return f, state, nil
}

// syncInPlace makes the file durable as it was read, where there was no
// room to rewrite it (full, the rewrite's error): the valid prefix of
// data is written over itself and synced, and a torn tail after it cut
// off. It is as sound as the rewrite. Writing the bytes makes their pages
// dirty, so the sync writes them to the medium even where a failed fsync
// had left them clean in the page cache; an error that sync reports is
// this start's own (a descriptor sees the writeback errors after it was
// opened), and refuses the start, as the rewrite's sync does. Bytes are
// written where they already are, so a crash midway leaves each sector
// either as it was on the medium or as it was read: for the sectors that
// differ, those of a save that was never synced, that is a tear of that
// save, which the next open reads as one. On a file system that copies on
// write (btrfs, zfs) the overwrite needs space too, and the start is
// refused as before. A file of an earlier format stays in it, torn tail
// and all, marked broken so that the first Save rewrites it whole.
func (f *StateFile) syncInPlace(data []byte, valid int, full error, logf func(string, ...any)) error {
	tmp := f.name + ".tmp"
	if names, err := f.disk.List(); err != nil {
		return fmt.Errorf("%w; listing the data directory failed too: %v", full, err)
	} else if slices.Contains(names, tmp) {
		// It holds space, and what it holds was never relied upon.
		if err := f.disk.Remove(tmp); err != nil {
			return fmt.Errorf("%w; removing %s failed too: %v", full, tmp, err)
		}
	}
	file, err := f.disk.OpenAppend(f.name)
	if err != nil {
		return fmt.Errorf("%w; opening %s to sync it in place failed too: %v", full, f.name, err)
	}
	current := bytes.HasPrefix(data, []byte(stateMagic))
	inPlace := func() error {
		if file.Size() != int64(len(data)) {
			// No one else writes it while the node holds the directory.
			return fmt.Errorf("%s changed while it was read: %d bytes read, %d now", f.name, len(data), file.Size())
		}
		if err := file.Overwrite(data[:valid], 0); err != nil {
			return err
		}
		// A file of an earlier format keeps its torn tail: cut, one of the
		// first format could be left empty, which no start accepts.
		if valid < len(data) && current {
			if err := file.Truncate(int64(valid)); err != nil {
				return err
			}
		}
		if err := file.Sync(); err != nil {
			return err
		}
		// The file's name may not be durable yet (a rewrite whose
		// directory sync a crash preempted); and the .tmp's removal.
		return f.disk.SyncDir()
	}
	if err := inPlace(); err != nil {
		file.Close()
		return fmt.Errorf("%w; syncing %s in place failed too: %v", full, f.name, err)
	}
	f.file, f.size = file, int64(valid)
	f.broken = !current
	logf("%s: cannot rewrite it, the disk is full (%v): synced it in place instead", f.name, full)
	return nil
}

// parseStates returns the state a file holds and the length of its valid
// prefix, or an error if the file is damaged in a way no crash explains.
func parseStates(name string, data []byte) ([]byte, int, error) {
	v2 := bytes.HasPrefix(data, []byte(stateMagicV2))
	if !v2 && !bytes.HasPrefix(data, []byte(stateMagic)) {
		// Since the second format, a file begins with its magic, synced
		// before the file takes its name (rewrite), and no Save writes
		// that sector's bytes again, so no crash takes it away. Empty or
		// all zeros, the file lost what held it: read as the first
		// format, it had no record and the node forgot its state (a
		// cluster node its term and vote). Such a first-format file (an
		// empty one a crash left before its first Save, or that Save
		// torn to zeros) is older than every build since.
		if allZero(data) {
			return nil, 0, fmt.Errorf("%w: %s: %d bytes, all zeros, without the magic %q every state file begins with: the sector that held the state was lost (damage at rest); refusing to start rather than forget the state",
				ErrCorrupt, name, len(data), stateMagic)
		}
		// A file of this format whose first sector was lost (a write
		// that landed there) must not pass for one of the first format.
		for at := 0; at+stateHeaderBytes <= len(data); at++ {
			if p, _ := stateAt(data, at); p != nil {
				return nil, 0, fmt.Errorf("%w: %s: no magic %q (or %q) at its start, though it holds records of that format (at offset %d): damage at rest; refusing to start",
					ErrCorrupt, name, stateMagic, stateMagicV2, at)
			}
		}
		if len(data) >= 4 && binary.LittleEndian.Uint32(data) > stateBytesMax {
			return nil, 0, fmt.Errorf("%w: %s: neither a state file of this format (magic %q) nor of the first one; refusing to start",
				ErrCorrupt, name, stateMagic)
		}
		state, valid := scanStatesV1(data)
		if valid < len(data) && !tornStateV1(data, valid) {
			return nil, 0, damagedState(name, valid)
		}
		return state, valid, nil
	}
	last, off := scanStates(data, len(stateMagic), !v2)
	torn := tornStateV3
	if v2 {
		torn = tornState
	}
	if off < len(data) && !torn(data, off) {
		return nil, 0, damagedState(name, off)
	}
	return last, off, nil
}

func damagedState(name string, off int) error {
	return fmt.Errorf("%w: %s: bad record at offset %d, and not as a torn write leaves one: damage at rest to a saved state; refusing to start",
		ErrCorrupt, name, off)
}

// scanStates returns the last valid record's payload from off on and the
// end of the valid records. padded: the file is of the current format,
// whose records may follow padding to a sector's end.
func scanStates(data []byte, off int, padded bool) ([]byte, int) {
	var last []byte
	for off < len(data) {
		p, n := stateAt(data, off)
		if p == nil && padded && data[off] == statePad {
			// Padding, unless a record begins here whose length's low
			// byte is statePad (a record is tried first).
			end := min(sectorEnd(off), len(data))
			if !allBytes(data[off:end], statePad) {
				break // a bad record
			}
			if end == len(data) && end%SectorBytes != 0 {
				break // the file ends in the padding: torn
			}
			off = end
			continue
		}
		if p == nil {
			break
		}
		last, off = p, off+n
	}
	return last, off
}

// stateAfter reports whether a valid record starts past off. Each Save is
// synced before the next is written: a valid record after a bad one proves
// the bad one was synced, so it was damaged at rest, not torn.
func stateAfter(data []byte, off int) bool {
	for at := off + 1; at+stateHeaderBytes <= len(data); at++ {
		if p, _ := stateAt(data, at); p != nil {
			return true
		}
	}
	return false
}

// sectorEnd is the end of the sector that holds offset off.
func sectorEnd(off int) int { return (off/SectorBytes + 1) * SectorBytes }

func allBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}

// tornStateV3 reports whether the bad record at off, the file's last, has
// the shape of a Save cut short, in the current format. A record that fits
// in a sector was written in one, whole or not at all: found whole (its
// header checks out and the file holds its length) and bad, it was
// damaged at rest. Only a larger one may have lost a sector to a tear.
func tornStateV3(data []byte, off int) bool {
	if tornPadding(data, off) {
		return true
	}
	if stateAfter(data, off) {
		return false
	}
	if len(data)-off < stateHeaderBytes {
		return true // cut by the file's end within the header (or padding)
	}
	if !stateHeaderOK(data[off:]) {
		if data[off] == statePad {
			// Padding that zeros follow to the sector's end (a part
			// never written) is a tear's, as is padding the file's end
			// cuts; padding with other bytes in it was damaged.
			end := min(sectorEnd(off), len(data))
			pad := off
			for pad < end && data[pad] == statePad {
				pad++
			}
			return allZero(data[pad:end])
		}
		// A header that was written is whole; one that was not reads
		// as zeros, as does the rest of its sector.
		return unwrittenSector(data, off, off, off+stateHeaderBytes)
	}
	n := stateHeaderBytes + int(binary.LittleEndian.Uint32(data[off:]))
	if off+n > len(data) {
		return true // cut by the file's end, by a length to trust
	}
	if n <= SectorBytes && off+n <= sectorEnd(off) {
		return false // whole in its sector, and bad: damaged at rest
	}
	return unwrittenSector(data, off, off, off+n)
}

// tornPadding reports whether the bad bytes at off are the padding of a
// Save cut short whose record follows them, the file's last: the padding
// and the record lie in two sectors, each written whole or not at all, so
// a tear may keep the record and lose the padding, which then reads as
// zeros to its sector's end. That valid record is the one exception to
// stateAfter's proof; it is the cut Save's own, and is ignored with it.
func tornPadding(data []byte, off int) bool {
	at := sectorEnd(off)
	if off%SectorBytes == 0 || at >= len(data) || !allZero(data[off:at]) {
		return false
	}
	p, n := stateAt(data, at)
	// The record is the file's last, and one that a Save beginning at
	// off would have padded: it fits in a sector but not in off's.
	return p != nil && at+n == len(data) && n <= SectorBytes && off+n > at
}

// stateAt decodes the record at off: its payload and length, or nil.
func stateAt(data []byte, off int) ([]byte, int) {
	if len(data)-off < stateHeaderBytes || !stateHeaderOK(data[off:]) {
		return nil, 0
	}
	n := int(binary.LittleEndian.Uint32(data[off:]))
	if n == 0 || n > stateBytesMax || off+stateHeaderBytes+n > len(data) {
		return nil, 0
	}
	p := data[off+stateHeaderBytes : off+stateHeaderBytes+n]
	if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(data[off+4:]) {
		return nil, 0
	}
	return p, stateHeaderBytes + n
}

func stateHeaderOK(h []byte) bool {
	return crc32.Checksum(h[:8], crcTable) == binary.LittleEndian.Uint32(h[8:12])
}

// tornState reports whether the bad record at off, the file's last, has the
// shape of a Save cut short, in the second format, whose records straddled
// sectors (see tornShape, the log's like test).
func tornState(data []byte, off int) bool {
	if stateAfter(data, off) {
		return false
	}
	if len(data)-off < stateHeaderBytes {
		return true // cut by the file's end within the header
	}
	end := off + stateHeaderBytes // the header, if it is damaged
	if stateHeaderOK(data[off:]) {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if off+stateHeaderBytes+n > len(data) {
			return true // cut by the file's end, by a length to trust
		}
		end = off + stateHeaderBytes + n
	}
	return unwrittenSector(data, off, off, end)
}

// scanStatesV1 returns the last valid record's payload and the length of
// the valid prefix of a file of the first format.
func scanStatesV1(data []byte) ([]byte, int) {
	var last []byte
	off := 0
	for len(data)-off >= stateV1HeaderBytes {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 || n > stateBytesMax || off+stateV1HeaderBytes+n > len(data) {
			break
		}
		p := data[off+stateV1HeaderBytes : off+stateV1HeaderBytes+n]
		if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(data[off+4:]) {
			break
		}
		last = p
		off += stateV1HeaderBytes + n
	}
	return last, off
}

// tornStateV1 is tornState for the first format, whose lengths have no
// check of their own: a bad record is taken as torn only if it is cut by
// the file's end or has a sector of zeros.
func tornStateV1(data []byte, off int) bool {
	for at := off + 1; at+stateV1HeaderBytes <= len(data); at++ {
		if _, valid := scanStatesV1(data[at:]); valid > 0 {
			return false // a valid record after the bad one
		}
	}
	if len(data)-off < stateV1HeaderBytes {
		return true
	}
	end := off + stateV1HeaderBytes
	if n := int(binary.LittleEndian.Uint32(data[off:])); n > 0 && n <= stateBytesMax {
		if off+stateV1HeaderBytes+n > len(data) {
			return true
		}
		end = off + stateV1HeaderBytes + n
	}
	return unwrittenSector(data, off, off, end)
}

// appendState appends a record of p to dst, the file's content from its
// start (see appendStateAt).
func appendState(dst, p []byte) []byte { return appendStateAt(dst, 0, p) }

// appendStateAt appends a record of p to dst, whose first byte lands at
// offset base of the file: after padding to the next sector first where a
// record that fits in one would otherwise straddle two.
func appendStateAt(dst []byte, base int64, p []byte) []byte {
	at := int(base) + len(dst)
	if n := stateHeaderBytes + len(p); n <= SectorBytes && at+n > sectorEnd(at) {
		for range sectorEnd(at) - at {
			dst = append(dst, statePad)
		}
	}
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(p, crcTable))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:start+8], crcTable))
	return append(dst, p...)
}

// rewrite replaces the file with one holding state (none when nil).
func (f *StateFile) rewrite(state []byte) error {
	buf := []byte(stateMagic)
	if state != nil {
		buf = appendState(buf, state)
	}
	if err := f.writeTmp(buf); err != nil {
		return err
	}
	return f.install(len(buf))
}

// writeTmp writes buf, a whole file's content, to the temporary file and
// syncs it; an error leaves the file under the name as it was.
func (f *StateFile) writeTmp(buf []byte) error {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
	tmp := f.name + ".tmp"
	file, err := f.disk.Create(tmp)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	if err := file.Append(buf); err != nil {
		file.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	return nil
}

// install gives the temporary file that writeTmp wrote, size bytes, the
// file's name.
func (f *StateFile) install(size int) error {
	tmp := f.name + ".tmp"
	if err := f.disk.Rename(tmp, f.name); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	if err := f.disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the directory after writing %s: %w", f.name, err)
	}
	file, err := f.disk.OpenAppend(f.name)
	if err != nil {
		return fmt.Errorf("opening %s: %w", f.name, err)
	}
	f.file, f.size = file, int64(size)
	return nil
}

// Save makes p the durable state. After an error the file still holds the
// state saved before, or (a sync that failed, a rename whose directory sync
// failed) possibly p: the caller must not act on p, and may try again,
// which rewrites the file whole.
func (f *StateFile) Save(p []byte) error {
	assert(len(p) > 0 && len(p) <= stateBytesMax, "StateFile.Save: state empty or over stateBytesMax")
	if f.size > stateFileBytesMax || f.broken {
		f.broken = true
		if err := f.rewrite(p); err != nil {
			return err
		}
		f.broken = false
		return nil
	}
	buf := appendStateAt(nil, f.size, p)
	if err := f.file.Append(buf); err != nil {
		f.broken = true
		return fmt.Errorf("writing %s: %w", f.name, err)
	}
	if err := f.file.Sync(); err != nil {
		f.broken = true
		// The record may stay readable in the page cache though it never
		// reached the disk (GroupCommit.cutUnsynced says how ext4 does
		// that): a node that stops on this error would read it back at
		// restart, take a term or vote that was never durable, and append
		// durable records after a hole that a power loss opens, which the
		// next start must refuse as damage. Cut it out; the next Save
		// rewrites the file whole anyway.
		if cutErr := f.file.Truncate(f.size); cutErr != nil {
			return fmt.Errorf("syncing %s: %w; cutting the record back out failed too (%v)", f.name, err, cutErr)
		}
		if syncErr := f.file.Sync(); syncErr != nil {
			return fmt.Errorf("syncing %s: %w; syncing it cut back failed too (%v)", f.name, err, syncErr)
		}
		return fmt.Errorf("syncing %s: %w", f.name, err)
	}
	f.size += int64(len(buf))
	return nil
}

// Close closes the file.
func (f *StateFile) Close() {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
}
