package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"dkv/disk"
)

// latencies collects per-operation latencies for percentiles.
type latencies []time.Duration

func (l latencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

// percentiles returns the latency at each of ps (in percent), sorting once.
func (l latencies) percentiles(ps ...float64) []time.Duration {
	out := make([]time.Duration, len(ps))
	if len(l) == 0 {
		return out
	}
	s := slices.Clone(l)
	slices.Sort(s)
	for i, p := range ps {
		out[i] = s[int(p/100*float64(len(s)-1))]
	}
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// inPlaceRecordBytes is about one Set's log record of a 100-byte value.
const inPlaceRecordBytes = 128

// inPlaceSyncRate measures, in dir, what dkv's log pays per write: a small
// record written into space that was zero-filled and synced beforehand,
// then fdatasync. With no file size to commit, that fdatasync flushes data
// alone and is faster than rawSyncRate's, which appends.
func inPlaceSyncRate(dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-in-place-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Enough for any run: at 20,000 syncs/s for d.
	space := int64(inPlaceRecordBytes) * int64(20_000*d.Seconds()+1)
	if _, err := f.Write(make([]byte, space)); err != nil {
		return 0, err
	}
	if err := disk.Datasync(int(f.Fd())); err != nil {
		return 0, err
	}
	rec := make([]byte, inPlaceRecordBytes)
	n := 0
	start := time.Now()
	for off := int64(0); time.Since(start) < d && off+inPlaceRecordBytes <= space; off += inPlaceRecordBytes {
		if _, err := f.WriteAt(rec, off); err != nil {
			return 0, err
		}
		if err := disk.Datasync(int(f.Fd())); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// rawSyncRate measures 4 KiB write+fdatasync per second in dir: the
// baseline that group commit is judged against.
func rawSyncRate(dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-baseline-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := disk.Datasync(int(f.Fd())); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}
