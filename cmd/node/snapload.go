package main

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"dkv/core"
	"dkv/disk"
)

// snapLoadDir is the data directory as the node sees it, watching which
// snapshot file recovery reads at start, how large it is, how many keys
// it holds and how long reading it took, for the log line written once
// the node serves (snapLoadDir.report): a node that took minutes to start
// said nothing of the snapshot behind it. Embedded, the Dir keeps every
// optional interface the node looks for (RangeReader, CacheDropper).
type snapLoadDir struct {
	*disk.Dir
	mu sync.Mutex
	// done: recovery is over; later reads (a snapshot sent to a peer)
	// are not watched.
	done bool
	last *snapLoad // the last snapshot file read during recovery
}

type snapLoad struct {
	name   string
	bytes  int64
	keys   int64 // from the file's trailer; -1 if unread
	opened time.Time
	took   time.Duration
}

// snapTrailerBytes is the snapshot's trailer, [0xffffffff u32][count
// u64][crc u32] (core/snapshot.go): the count is the keys in the file.
const snapTrailerBytes = 4 + 8 + 4

func (d *snapLoadDir) OpenRead(name string) (core.ReadHandle, error) {
	h, err := d.Dir.OpenRead(name)
	if err != nil || !strings.HasPrefix(name, "snap-") || !strings.HasSuffix(name, ".snap") {
		return h, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return h, nil
	}
	l := &snapLoad{name: name, bytes: h.Size(), keys: -1, opened: time.Now()}
	d.last = l
	return &snapLoadHandle{ReadHandle: h, d: d, l: l}, nil
}

type snapLoadHandle struct {
	core.ReadHandle
	d *snapLoadDir
	l *snapLoad
}

func (h *snapLoadHandle) Close() error {
	took := time.Since(h.l.opened)
	keys := int64(-1)
	if size := h.Size(); size >= snapTrailerBytes {
		var tr [snapTrailerBytes]byte
		if n, _ := h.ReadAt(tr[:], size-snapTrailerBytes); n == len(tr) && binary.LittleEndian.Uint32(tr[:4]) == 0xffffffff {
			keys = int64(binary.LittleEndian.Uint64(tr[4:12]))
		}
	}
	h.d.mu.Lock()
	h.l.took, h.l.keys = took, keys
	h.d.mu.Unlock()
	return h.ReadHandle.Close()
}

// report ends the watch, once the node has recovered, and says which
// snapshot recovery loaded: the last it read (one that failed its check
// makes recovery fall back to an older one, or fail).
func (d *snapLoadDir) report() (msg string, attrs []any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = true
	l := d.last
	if l == nil {
		return "no snapshot at start: the store was rebuilt from the log alone", []any{"event", "snapshot_load", "snapshot_bytes", 0}
	}
	keys := "an unknown number of keys"
	if l.keys >= 0 {
		keys = fmt.Sprintf("%d keys", l.keys)
	}
	return fmt.Sprintf("loaded the snapshot %s at start: %s, %d bytes (%s), read in %v", l.name, keys, l.bytes, humanBytes(l.bytes), roundTook(l.took)),
		[]any{"event", "snapshot_load", "snapshot_file", l.name, "snapshot_keys", l.keys, "snapshot_bytes", l.bytes, "snapshot_load_seconds", l.took.Seconds()}
}

// roundTook keeps a duration readable: milliseconds from a second up,
// microseconds below (a small snapshot loads in well under one).
func roundTook(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
