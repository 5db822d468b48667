package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// The store's bound (--max-data-bytes, core.Limits.DataBytesMax). Without
// one a store grows until the kernel's OOM killer ends the process, and a
// node whose log holds more than memory can take dies again in every
// replay of it: the data is then out of reach until it moves to a larger
// machine. With one, a write that would pass it is refused (store_full),
// and the node goes on serving reads, deletes and overwrites that shrink.
//
// The default is a share of the memory the process may use: the machine's
// (MemTotal of /proc/meminfo), or its cgroup's limit (memory.max, v2;
// memory.limit_in_bytes, v1) where that is lower, as in a container, or
// --memory-limit where that is lower still. The share, dataBytesShare,
// leaves room for what the data bytes do not count: the collector's
// headroom (--gc-percent; the default 50 lets the heap reach 1.5 × the
// live data), the items a snapshot's frozen copy holds while writes
// replace them, and connections' buffers.
const dataBytesShare = 0.5

// dataBytesShareIndexed is the share with --enable-indexes, whose indexes
// the data bytes do not count: measured on 60,000 values of 1,000 bytes
// of English text, the node's RSS was 6.6 times its data bytes above the
// 52 MB it holds empty (the full-text index's postings, about 1.9 times
// the data bytes by its own estimate, the vectors 0.9, the collector's
// headroom over both), against 1.5 times without indexes. At half the
// memory an indexed node would meet the OOM killer at a third of its
// bound; at a tenth its RSS stays near two thirds of the memory.
const dataBytesShareIndexed = 0.1

// dataBytesMin is the least --max-data-bytes taken (but 0, none): less is
// a slip of the unit (--max-data-bytes 512 meant 512MiB), which would
// refuse every write.
const dataBytesMin = 1 << 20

// Where the process's memory bounds are read from (variables so that the
// tests can point them at files of their own): the machine's memory, the
// process's cgroups (/proc/self/cgroup), and the roots where the cgroup
// hierarchies are mounted (v2's, and v1's memory controller's).
var (
	meminfoPath    = "/proc/meminfo"
	selfCgroupPath = "/proc/self/cgroup"
	cgroupV2Root   = "/sys/fs/cgroup"
	cgroupV1Root   = "/sys/fs/cgroup/memory"
)

// dataBound is --max-data-bytes resolved: the bound, and where it came
// from, for the start-up log.
type dataBound struct {
	bytes int64 // 0: none
	from  string
}

// resolveDataBound reads --max-data-bytes (given: whether it was), or
// derives the default from the memory the process may use (memoryLimit:
// the runtime's soft limit in bytes, 0 none, which limitName names), a
// smaller share of it when the node keeps indexes.
func resolveDataBound(flagValue string, given bool, memoryLimit int64, limitName string, indexes bool) (dataBound, error) {
	if given {
		return parseBound("--max-data-bytes", flagValue)
	}
	share, shareName := dataBytesShare, "half"
	if indexes {
		share, shareName = dataBytesShareIndexed, "a tenth (--enable-indexes)"
	}
	return memoryBound(memoryLimit, limitName, share, shareName), nil
}

// indexBytesShare is the default share of the memory for the search
// indexes' bound (--max-index-bytes), beside the data's tenth: their own
// estimate of their bytes (textidx's and vecidx's Stats) leaves out the
// collector's headroom over them, about half as much again, so a quarter
// keeps the indexes' RSS near two fifths of the memory, and with the
// data's some three fifths. Without it, short values made the indexes
// many times the data bytes the data bound counts: 500,000 values of two
// common words, 25 MB of data, 651 MiB of RSS (a value's embedding is
// about 950 bytes), and a restart's rebuild took the node there again.
const indexBytesShare = 0.25

// resolveIndexBound is resolveDataBound for --max-index-bytes.
func resolveIndexBound(flagValue string, given bool, memoryLimit int64, limitName string) (dataBound, error) {
	if given {
		return parseBound("--max-index-bytes", flagValue)
	}
	return memoryBound(memoryLimit, limitName, indexBytesShare, "a quarter"), nil
}

// parseBound reads a bound's flag: bytes with a unit, at least
// dataBytesMin, or 0 for none.
func parseBound(flagName, flagValue string) (dataBound, error) {
	n, err := parseBytes(flagValue)
	if err != nil {
		return dataBound{}, fmt.Errorf("%s: %v", flagName, err)
	}
	if n != 0 && n < dataBytesMin {
		return dataBound{}, fmt.Errorf("%s %d is under %d (1MiB): give a unit (as 512MiB or 4GiB), or 0 for no bound", flagName, n, dataBytesMin)
	}
	if n == 0 {
		return dataBound{from: flagName + " 0"}, nil
	}
	return dataBound{bytes: n, from: flagName}, nil
}

// memoryBound is share (named shareName) of the memory the process may
// use, or none where no memory size is known.
func memoryBound(memoryLimit int64, limitName string, share float64, shareName string) dataBound {
	mem, from := processMemory(memoryLimit, limitName)
	if mem == 0 {
		return dataBound{from: "no memory size known on this system"}
	}
	// Never under dataBytesMin, the least the flag takes: a unit left off
	// --memory-limit (12 for 12GiB) made a bound of 6 bytes, and every
	// write was refused (found by review).
	bound := max(int64(float64(mem)*share), dataBytesMin)
	return dataBound{bytes: bound, from: fmt.Sprintf("%s of %s, %s", shareName, from, humanBytes(mem))}
}

// processMemory is the least of the bounds on this process's memory that
// can be read, and which it is; 0 if none can.
func processMemory(memoryLimit int64, limitName string) (int64, string) {
	var least int64
	var from string
	take := func(n int64, what string) {
		if n > 0 && (least == 0 || n < least) {
			least, from = n, what
		}
	}
	take(memTotal(), "the machine's memory")
	take(cgroupLimit(), "the cgroup's memory limit")
	take(memoryLimit, limitName)
	return least, from
}

// memTotal is /proc/meminfo's MemTotal in bytes, 0 if it cannot be read.
func memTotal() int64 {
	f, err := os.Open(meminfoPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemTotal:       24730096 kB
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[0] == "MemTotal:" && fields[2] == "kB" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil || kb <= 0 || kb > math.MaxInt64>>10 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupLimit is the least memory limit of the process's cgroup and the
// cgroups above it (v2's memory.max, v1's memory.limit_in_bytes), 0 if
// none sets one or none can be read. The process's cgroup is seldom the
// root of the mount: a systemd unit's MemoryMax= is the memory.max of
// /sys/fs/cgroup/system.slice/NAME.service, and a limit on a parent (a
// slice, a pod) bounds every cgroup under it; reading only the mount's
// root missed them all (found by review), and the bound defaulted to half
// the machine's memory, past the limit, where the OOM killer ends the
// process. Where the path /proc/self/cgroup names is not under the mount
// (a container that sees its own cgroup as the root, without a cgroup
// namespace) the walk up finds the mount's root, which is that cgroup.
// v1 writes "no limit" as a huge number, which the machine's memory, the
// lower, then stands in for.
func cgroupLimit() int64 {
	var v2, v1 string // the process's cgroup paths, "" when unknown
	if b, err := os.ReadFile(selfCgroupPath); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			// hierarchy-ID:controller-list:cgroup-path
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 {
				continue
			}
			switch {
			case f[0] == "0" && f[1] == "":
				v2 = f[2]
			case slices.Contains(strings.Split(f[1], ","), "memory"):
				v1 = f[2]
			}
		}
	}
	var least int64
	for _, h := range []struct{ root, path, file string }{
		{cgroupV2Root, v2, "memory.max"},
		{cgroupV1Root, v1, "memory.limit_in_bytes"},
	} {
		if n := leastLimitUp(h.root, h.path, h.file); n > 0 && (least == 0 || n < least) {
			least = n
		}
	}
	return least
}

// cgroupDepthMax bounds the walk up a cgroup path: the kernel nests
// cgroups at most this deep by default (cgroup.max.depth), and a path from
// a damaged file must not cost more.
const cgroupDepthMax = 64

// leastLimitUp is the least limit that file gives in the cgroup at path
// under root and in each cgroup above it up to root, 0 if none gives one.
func leastLimitUp(root, path, file string) int64 {
	root = filepath.Clean(root)
	dir := filepath.Join(root, path)
	if rel, err := filepath.Rel(root, dir); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		dir = root // a path that climbs out of the mount: its root only
	}
	var least int64
	for range cgroupDepthMax {
		if n := readLimit(filepath.Join(dir, file)); n > 0 && (least == 0 || n < least) {
			least = n
		}
		if dir == root {
			break
		}
		dir = filepath.Dir(dir)
	}
	return least
}

// readLimit is the limit in a cgroup's memory.max or
// memory.limit_in_bytes, 0 for none ("max") or if it cannot be read.
func readLimit(p string) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// humanBytes writes n in the largest binary unit that leaves a whole
// number above 1, to one decimal: 23.6GiB.
func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

// envMemoryLimit is the runtime's memory limit as $GOMEMLIMIT set it (a
// negative SetMemoryLimit only reads it), 0 for none.
func envMemoryLimit() int64 {
	n := debug.SetMemoryLimit(-1)
	if n == math.MaxInt64 {
		return 0
	}
	return n
}
