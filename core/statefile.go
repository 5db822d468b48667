package core

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// StateFile keeps one small piece of state durable, such as a Raft node's
// term and vote. Each Save appends a record
//
//	[length u32][crc32c u32][payload]
//
// and syncs it; the last valid record is the state. A record that fails its
// checksum at the very end of the file is a Save that a crash cut short: the
// Save never returned, so nothing relied on it, and it is ignored (and
// logged). A state is never empty: eight zero bytes, as a tail that a
// crash left zero-filled reads, would pass for an empty state's record
// (length 0, and 0 is the crc32c of nothing), so a record of length 0 ends
// the scan like any damaged one. The file is rewritten from scratch
// (temporary file, sync, rename, directory sync) once it grows past
// stateFileBytesMax.
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
	stateHeaderBytes  = 8
	stateBytesMax     = 64 << 10 // one payload
	stateFileBytesMax = 256 << 10
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
		state, valid = scanStates(data)
		if valid == len(data) {
			break
		}
		again, err := d.ReadFile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", name, err)
		}
		if bytes.Equal(again, data) {
			logf("%s: ignoring %d bytes after offset %d (a save cut short by a crash)", name, len(data)-valid, valid)
			break
		}
		if attempt+1 >= readAttempts {
			return nil, nil, fmt.Errorf("%w: %s: reads keep returning different contents; refusing to start, try again", ErrCorrupt, name)
		}
	}
	if valid < len(data) || len(data) > stateFileBytesMax {
		if err := f.rewrite(state); err != nil {
			return nil, nil, err
		}
		return f, state, nil
	}
	file, err := d.OpenAppend(name)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", name, err)
	}
	f.file, f.size = file, int64(len(data))
	return f, state, nil
}

// scanStates returns the last valid record's payload and the length of the
// valid prefix.
func scanStates(data []byte) ([]byte, int) {
	var last []byte
	off := 0
	for len(data)-off >= stateHeaderBytes {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 || n > stateBytesMax || off+stateHeaderBytes+n > len(data) {
			break
		}
		p := data[off+stateHeaderBytes : off+stateHeaderBytes+n]
		if crc32.Checksum(p, crcTable) != binary.LittleEndian.Uint32(data[off+4:]) {
			break
		}
		last = p
		off += stateHeaderBytes + n
	}
	return last, off
}

func appendState(dst, p []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(p, crcTable))
	return append(dst, p...)
}

// rewrite replaces the file with one holding state (none when nil).
func (f *StateFile) rewrite(state []byte) error {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
	tmp := f.name + ".tmp"
	file, err := f.disk.Create(tmp)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	var buf []byte
	if state != nil {
		buf = appendState(nil, state)
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
	if err := f.disk.Rename(tmp, f.name); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	if err := f.disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the directory after writing %s: %w", f.name, err)
	}
	file, err = f.disk.OpenAppend(f.name)
	if err != nil {
		return fmt.Errorf("opening %s: %w", f.name, err)
	}
	f.file, f.size = file, int64(len(buf))
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
	buf := appendState(nil, p)
	if err := f.file.Append(buf); err != nil {
		f.broken = true
		return fmt.Errorf("writing %s: %w", f.name, err)
	}
	if err := f.file.Sync(); err != nil {
		f.broken = true
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
