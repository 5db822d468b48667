package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dkv/core"
)

// readUntil reads from nc until what it read holds want.
func readUntil(t *testing.T, nc net.Conn, want string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), want) {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("reading until %q: %v; read %q", want, err, got)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}

// fakeMemory points the memory files at a test's own and restores them:
// meminfo, and the limits v2 and v1 of the cgroup mounts' roots, which
// /proc/self/cgroup (absent) makes the process's cgroups.
func fakeMemory(t *testing.T, meminfo, v2, v1 string) string {
	t.Helper()
	dir := t.TempDir()
	old := []string{meminfoPath, selfCgroupPath, cgroupV2Root, cgroupV1Root}
	meminfoPath, selfCgroupPath = filepath.Join(dir, "meminfo"), filepath.Join(dir, "self-cgroup")
	cgroupV2Root, cgroupV1Root = filepath.Join(dir, "v2"), filepath.Join(dir, "v1")
	t.Cleanup(func() { meminfoPath, selfCgroupPath, cgroupV2Root, cgroupV1Root = old[0], old[1], old[2], old[3] })
	writeFile(t, meminfoPath, meminfo)
	writeFile(t, filepath.Join(cgroupV2Root, "memory.max"), v2)
	writeFile(t, filepath.Join(cgroupV1Root, "memory.limit_in_bytes"), v1)
	return dir
}

// writeFile writes content to p, making its directories; "" leaves p
// absent.
func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if content == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const meminfo8GiB = "MemTotal:        8388608 kB\nMemFree:         1000 kB\n"

// --max-data-bytes: given, or half of the least of the machine's memory,
// its cgroup's limit and the runtime's soft limit (a tenth with indexes,
// which the data bytes do not count).
func TestDataBoundDefaultsToHalfTheMemoryThereIs(t *testing.T) {
	cases := []struct {
		name            string
		meminfo, v2, v1 string
		flag            string
		given           bool
		limit           int64
		indexes         bool
		want            int64
		from            string
	}{
		{"machine", meminfo8GiB, "", "", "", false, 0, false, 4 << 30, "the machine's memory"},
		{"cgroup v2 lower", meminfo8GiB, "2147483648\n", "", "", false, 0, false, 1 << 30, "the cgroup's memory limit"},
		{"cgroup v2 no limit", meminfo8GiB, "max\n", "", "", false, 0, false, 4 << 30, "the machine's memory"},
		{"cgroup v1 lower", meminfo8GiB, "", "1073741824\n", "", false, 0, false, 512 << 20, "the cgroup's memory limit"},
		{"cgroup v1 unlimited", meminfo8GiB, "", "9223372036854771712\n", "", false, 0, false, 4 << 30, "the machine's memory"},
		{"memory limit lowest", meminfo8GiB, "2147483648\n", "", "", false, 512 << 20, false, 256 << 20, "--memory-limit"},
		{"nothing known", "", "", "", "", false, 0, false, 0, "no memory size known"},
		{"garbled meminfo", "MemTotal: lots kB\n", "", "", "", false, 0, false, 0, "no memory size known"},
		{"given", meminfo8GiB, "", "", "3GiB", true, 0, false, 3 << 30, "--max-data-bytes"},
		{"given none", meminfo8GiB, "", "", "0", true, 0, false, 0, "--max-data-bytes 0"},
		{"memory limit without its unit", meminfo8GiB, "", "", "", false, 12, false, 1 << 20, "--memory-limit"},
		{"indexes", meminfo8GiB, "", "", "", false, 0, true, 8 << 30 / 10, "a tenth (--enable-indexes) of the machine's memory"},
		{"indexes, cgroup lower", meminfo8GiB, "2147483648\n", "", "", false, 0, true, 2 << 30 / 10, "the cgroup's memory limit"},
		{"indexes, given", meminfo8GiB, "", "", "3GiB", true, 0, true, 3 << 30, "--max-data-bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fakeMemory(t, c.meminfo, c.v2, c.v1)
			b, err := resolveDataBound(c.flag, c.given, c.limit, "--memory-limit", c.indexes)
			if err != nil {
				t.Fatal(err)
			}
			if b.bytes != c.want || !strings.Contains(b.from, c.from) {
				t.Fatalf("%d bytes (%s), want %d (%s)", b.bytes, b.from, c.want, c.from)
			}
		})
	}
	for _, bad := range []string{"512", "lots", "-1", "1.5GiB", "1GB"} {
		if _, err := resolveDataBound(bad, true, 0, "--memory-limit", false); err == nil || !strings.Contains(err.Error(), "--max-data-bytes") {
			t.Errorf("--max-data-bytes %s: %v, want refused", bad, err)
		}
	}
	if o, err := parseFlags([]string{"--max-data-bytes", "64MiB"}, io.Discard); err != nil || o.single.Limits.DataBytesMax != 64<<20 {
		t.Fatalf("--max-data-bytes 64MiB reached the node as %+v (%v)", o, err)
	}
}

// The cgroup limit that bounds the process is its own cgroup's, or a
// parent's, seldom the mount's root: a systemd unit's MemoryMax= is in
// /sys/fs/cgroup/system.slice/NAME.service/memory.max, and the root of a
// cgroup v2 mount has no memory.max at all. The default bound must come
// from the least limit on the way up, v2 or v1.
func TestDataBoundReadsTheProcesssOwnCgroupAndItsParents(t *testing.T) {
	const unit = "/system.slice/dkv.service"
	cases := []struct {
		name, self string
		files      map[string]string // under the fake cgroup mounts
		want       int64
	}{
		{"v2 unit MemoryMax", "0::" + unit + "\n",
			map[string]string{"v2" + unit + "/memory.max": "2147483648\n", "v2/system.slice/memory.max": "max\n"}, 1 << 30},
		{"v2 slice lower than its unit", "0::" + unit + "\n",
			map[string]string{"v2" + unit + "/memory.max": "max\n", "v2/system.slice/memory.max": "1073741824\n"}, 512 << 20},
		{"v1 memory controller", "4:memory:/process_api/abc\n3:cpuset:/\n0::/\n",
			map[string]string{"v1/process_api/abc/memory.limit_in_bytes": "1073741824\n", "v1/memory.limit_in_bytes": "9223372036854771712\n"}, 512 << 20},
		{"v1 controllers joined", "5:cpu,memory:/pod/x\n",
			map[string]string{"v1/pod/memory.limit_in_bytes": "2147483648\n"}, 1 << 30},
		{"path not under the mount (no cgroup namespace)", "0::/docker/abc\n",
			map[string]string{"v2/memory.max": "2147483648\n"}, 1 << 30},
		{"path climbing out of the mount", "0::/../../../etc\n",
			map[string]string{"v2/memory.max": "2147483648\n"}, 1 << 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := fakeMemory(t, meminfo8GiB, "", "")
			writeFile(t, selfCgroupPath, c.self)
			for name, content := range c.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			b, err := resolveDataBound("", false, 0, "--memory-limit", false)
			if err != nil {
				t.Fatal(err)
			}
			if b.bytes != c.want {
				t.Fatalf("%d bytes (%s), want %d, half the cgroup's limit", b.bytes, b.from, c.want)
			}
		})
	}
}

// A real server with a bound answers store_full over JSON and OOM over
// RESP past it, keeps serving, takes deletes, and after a SIGKILL holds
// every write it acknowledged and none it refused.
func TestDataBoundRefusesWritesAndLosesNothingAcrossSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := start(t, dir, "--max-data-bytes", "1MiB")
	if !strings.Contains(s.log(), "the store holds at most 1048576 data bytes") {
		t.Fatalf("the start-up log does not give the bound:\n%s", s.log())
	}
	value := strings.Repeat("v", 100_000)
	var acked, refused []string
	for i := range 15 {
		key := fmt.Sprintf("k%02d", i)
		r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"set","key":%q,"value":%q}`, key, value))[0]
		switch code(r) {
		case "":
			acked = append(acked, key)
		case core.CodeStoreFull:
			refused = append(refused, key)
		default:
			t.Fatalf("set %s: %+v", key, r.Error)
		}
	}
	if len(acked) != 10 || len(refused) != 5 {
		t.Fatalf("%d sets of 100 kB taken and %d refused under a 1 MiB bound, want 10 and 5", len(acked), len(refused))
	}
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(roundTripTimeout))
	fmt.Fprintf(nc, "*3\r\n$3\r\nSET\r\n$4\r\nresp\r\n$%d\r\n%s\r\n", len(value), value)
	buf := make([]byte, 512)
	n, err := nc.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "-OOM ") || !strings.Contains(string(buf[:n]), "--max-data-bytes") {
		t.Fatalf("RESP SET past the bound: %q (%v), want -OOM naming --max-data-bytes", buf[:n], err)
	}
	// INFO gives the bound and the count in fields of their own, and no
	// maxmemory: Redis compares that with used_memory, the whole heap.
	fmt.Fprintf(nc, "INFO memory\r\n")
	info := readUntil(t, nc, "maxmemory_policy")
	for _, want := range []string{"dkv_max_data_bytes:1048576\r\n", "maxmemory:0\r\n", "used_memory_dataset:"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO memory lacks %q:\n%s", want, info)
		}
	}
	// A delete is taken, and makes room for one more.
	if r := roundTrip(t, s.addr, `{"op":"delete","key":"k00"}`, fmt.Sprintf(`{"op":"set","key":"k99","value":%q}`, value)); code(r[0]) != "" || code(r[1]) != "" {
		t.Fatalf("delete, then set: %+v %+v", r[0].Error, r[1].Error)
	}
	acked = append(acked[1:], "k99")
	st := roundTrip(t, s.addr, `{"op":"status"}`)[0].Status
	if st == nil || st.DataBytesMax != 1<<20 || st.DataBytes <= 1<<20-100_100 || st.DataBytes > 1<<20 {
		t.Fatalf("status: %+v, want data bytes just under a bound of 1 MiB", st)
	}
	s.cmd.Process.Kill()
	<-s.exited
	s = start(t, dir, "--max-data-bytes", "1MiB")
	for _, k := range acked {
		if r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"get","key":%q}`, k))[0]; code(r) != "" || *r.Value != value {
			t.Errorf("after SIGKILL, acknowledged %s: %+v", k, r.Error)
		}
	}
	for _, k := range append(refused, "k00", "resp") {
		if r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"get","key":%q}`, k))[0]; code(r) != core.CodeNotFound {
			t.Errorf("after SIGKILL, %s (refused or deleted): %+v, want not_found", k, r)
		}
	}
	if r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"set","key":"more","value":%q}`, value))[0]; code(r) != core.CodeStoreFull {
		t.Fatalf("after the restart, a set past the bound: %+v, want store_full", r)
	}
}

// --max-index-bytes: given, or a quarter of the least of the machine's
// memory, its cgroup's limit and the runtime's soft limit; taken only with
// --enable-indexes.
func TestIndexBoundDefaultsToAQuarterOfTheMemory(t *testing.T) {
	fakeMemory(t, meminfo8GiB, "", "")
	for _, c := range []struct {
		flag  string
		given bool
		limit int64
		want  int64
		from  string
	}{
		{"", false, 0, 2 << 30, "a quarter of the machine's memory"},
		{"", false, 1 << 30, 256 << 20, "a quarter of --memory-limit"},
		{"512MiB", true, 0, 512 << 20, "--max-index-bytes"},
		{"0", true, 0, 0, "--max-index-bytes 0"},
	} {
		b, err := resolveIndexBound(c.flag, c.given, c.limit, "--memory-limit")
		if err != nil || b.bytes != c.want || !strings.Contains(b.from, c.from) {
			t.Errorf("%q: %d bytes (%s), %v; want %d (%s)", c.flag, b.bytes, b.from, err, c.want, c.from)
		}
	}
	if _, err := resolveIndexBound("512", true, 0, "--memory-limit"); err == nil || !strings.Contains(err.Error(), "--max-index-bytes 512 is under") {
		t.Errorf("--max-index-bytes 512: %v, want refused for its missing unit", err)
	}
	if _, err := parseFlags([]string{"--max-index-bytes", "64MiB"}, io.Discard); err == nil || !strings.Contains(err.Error(), "add --enable-indexes") {
		t.Errorf("--max-index-bytes without --enable-indexes: %v, want refused", err)
	}
	o, err := parseFlags([]string{"--enable-indexes", "--max-index-bytes", "64MiB"}, io.Discard)
	if err != nil || o.single.Limits.IndexBytesMax != 64<<20 {
		t.Fatalf("--max-index-bytes 64MiB reached the node as %+v (%v)", o, err)
	}
}

// A node with indexes refuses the writes that set values once its indexes
// hold --max-index-bytes, by their own estimate, though the data bytes
// are far under their bound (short values: an embedding alone is about
// 950 bytes); over RESP too; it loses none of the writes it took across
// SIGKILL, and after the restart, whose rebuild brings the indexes back
// to the bound, it refuses again; deletes make room.
func TestIndexBoundRefusesWritesAndLosesNothingAcrossSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := start(t, dir, "--enable-indexes", "--max-index-bytes", "2MiB")
	if !strings.Contains(s.log(), "the search indexes hold at most 2097152 bytes") {
		t.Fatalf("the start-up log does not give the bound:\n%s", s.log())
	}
	var acked []string
	refusedAt := -1
	for b := 0; b < 100 && refusedAt < 0; b++ {
		var items []string
		for i := range 100 {
			items = append(items, fmt.Sprintf(`{"key":"k%05d","value":"river bank %d"}`, b*100+i, i))
		}
		r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"bulk_set","items":[%s]}`, strings.Join(items, ",")))[0]
		switch code(r) {
		case "":
			for i := range 100 {
				acked = append(acked, fmt.Sprintf("k%05d", b*100+i))
			}
		case core.CodeStoreFull:
			if !strings.Contains(r.Error.Message, "--max-index-bytes") {
				t.Fatalf("the refusal does not name the bound: %s", r.Error.Message)
			}
			refusedAt = b * 100
		default:
			t.Fatalf("bulk set %d: %+v", b, r.Error)
		}
	}
	if refusedAt < 0 {
		t.Fatal("10,000 short values fit in 2 MiB of indexes")
	}
	st := roundTrip(t, s.addr, `{"op":"status"}`)[0].Status
	if st == nil || st.IndexBytesMax != 2<<20 || st.Indexes == nil || st.Indexes.TextBytes+st.Indexes.VectorBytes < 2<<20 || st.DataBytes*10 > 2<<20 {
		t.Fatalf("status: %+v, want the indexes past 2 MiB with a tenth of that in data bytes", st)
	}
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(roundTripTimeout))
	fmt.Fprintf(nc, "*3\r\n$3\r\nSET\r\n$4\r\nresp\r\n$5\r\nwater\r\n")
	buf := make([]byte, 512)
	n, err := nc.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "-OOM ") || !strings.Contains(string(buf[:n]), "--max-index-bytes") {
		t.Fatalf("RESP SET past the bound: %q (%v), want -OOM naming --max-index-bytes", buf[:n], err)
	}
	s.cmd.Process.Kill()
	<-s.exited
	s = start(t, dir, "--enable-indexes", "--max-index-bytes", "2MiB", "--index-inline-values", "100000")
	for _, k := range []string{acked[0], acked[len(acked)/2], acked[len(acked)-1]} {
		if r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"get","key":%q}`, k))[0]; code(r) != "" {
			t.Errorf("after SIGKILL, acknowledged %s: %+v", k, r.Error)
		}
	}
	if r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"get","key":"k%05d"}`, refusedAt))[0]; code(r) != core.CodeNotFound {
		t.Errorf("after SIGKILL, the refused k%05d: %+v, want not_found", refusedAt, r)
	}
	if r := roundTrip(t, s.addr, `{"op":"set","key":"more","value":"boat"}`)[0]; code(r) != core.CodeStoreFull {
		t.Fatalf("after the restart, a set past the bound: %+v, want store_full", r)
	}
	var dels []string
	for _, k := range acked[:len(acked)/2] {
		dels = append(dels, fmt.Sprintf("%q", k))
	}
	if r := roundTrip(t, s.addr, fmt.Sprintf(`{"op":"bulk_delete","keys":[%s]}`, strings.Join(dels, ",")))[0]; code(r) != "" {
		t.Fatalf("bulk delete past the bound: %+v", r.Error)
	}
	// The bound reads the indexes' estimate, which lags the deletes by the
	// removals still queued for the index worker and the similarity
	// index's deferred work (ARCHITECTURE, "the search indexes' memory"):
	// a CI run under load refused the next set while they ran. Once the
	// indexes have settled, half the values gone must make room.
	waitIndexesSettled(t, s.addr)
	if r := roundTrip(t, s.addr, `{"op":"set","key":"more","value":"boat"}`)[0]; code(r) != "" {
		t.Fatalf("a set once half the values are deleted: %+v", r.Error)
	}
}

// waitIndexesSettled waits, at most 10 s, until the node at addr reports
// its indexes with no call queued for the worker, no vector waiting to be
// linked and no deferred work left.
func waitIndexesSettled(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := roundTrip(t, addr, `{"op":"status"}`)[0].Status
		ix := st.Indexes
		if ix != nil && ix.Rebuild == nil && ix.Queued == 0 && ix.Pending == 0 && ix.WorkLeft == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the indexes have not settled in 10 s: %+v", ix)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
