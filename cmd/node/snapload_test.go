package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/disk"
)

// A node that starts from a snapshot says which file it loaded, how many
// keys and bytes it holds and how long it took; one without says so.
func TestStartLogsTheSnapshotItLoads(t *testing.T) {
	dir := t.TempDir()
	flags := []string{"--segment-bytes", "4096", "--snapshot-log-bytes", "8192"}
	s := start(t, dir, flags...)
	if !strings.Contains(s.log(), "no snapshot at start") {
		t.Errorf("a node on an empty directory did not say it loaded no snapshot; log:\n%s", s.log())
	}
	c := dial(t, s.addr)
	var snaps []string
	for i := 0; len(snaps) == 0; i++ {
		if i == 5000 {
			t.Fatalf("no snapshot after %d writes; log:\n%s", i, s.log())
		}
		if err := c.Set(context.Background(), fmt.Sprint("k", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // the snapshot is written in the background
			snaps, _ = filepath.Glob(filepath.Join(dir, "snap-*.snap"))
		}
	}
	kill(s)
	snaps, _ = filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	slices.Sort(snaps)
	newest := filepath.Base(snaps[len(snaps)-1])
	st, err := os.Stat(filepath.Join(dir, newest))
	if err != nil {
		t.Fatal(err)
	}
	d, err := disk.Open(dir, disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, _, _, _, err := core.ReadSnapshot(d, newest)
	d.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = start(t, dir, flags...)
	defer kill(s)
	m := regexp.MustCompile(`loaded the snapshot (\S+) at start: (\d+) keys, (\d+) bytes \([^)]*\), read in (\S+)`).FindStringSubmatch(s.log())
	if m == nil {
		t.Fatalf("no line on the snapshot loaded at start; log:\n%s", s.log())
	}
	t.Log(m[0])
	keys, _ := strconv.Atoi(m[2])
	size, _ := strconv.ParseInt(m[3], 10, 64)
	if m[1] != newest || keys != store.Len() || size != st.Size() {
		t.Errorf("logged %s, %d keys, %d bytes; want %s, %d keys, %d bytes", m[1], keys, size, newest, store.Len(), st.Size())
	}
	if _, err := time.ParseDuration(m[4]); err != nil {
		t.Errorf("load time %q: %v", m[4], err)
	}
}
