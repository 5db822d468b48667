package nodeproc

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// A process's log is kept bounded: its first lines and its latest, with
// the count of what was dropped between them, however long it runs.
func TestStderrIsBounded(t *testing.T) {
	var b lockedBuffer
	line := strings.Repeat("x", 200)
	const lines = 200_000 // 40 MB of log
	for i := range lines {
		b.writeLine(fmt.Sprintf("%07d %s", i, line))
	}
	got := b.String()
	if len(got) > stderrBytesMax+100 {
		t.Fatalf("kept %d bytes of log, more than %d", len(got), stderrBytesMax)
	}
	first, last := fmt.Sprintf("%07d ", 0), fmt.Sprintf("%07d ", lines-1)
	if !strings.HasPrefix(got, first) || !b.contains(first) {
		t.Errorf("the first line is gone")
	}
	if !strings.HasSuffix(got, last+line+"\n") || !b.contains(last) {
		t.Errorf("the last line is gone")
	}
	if !strings.Contains(got, "bytes of log lines dropped here]\n") {
		t.Errorf("the log does not say lines were dropped")
	}
	// Every kept line is whole.
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if !strings.HasPrefix(l, "[nodeproc") && len(l) != 8+len(line) {
			t.Fatalf("a line cut: %.40q (%d bytes)", l, len(l))
		}
	}
}

// StartAll of a cluster one of whose nodes exits at once (its client
// port taken) reports that node's failure and leaves no node running; it
// panicked, reading the exited node's process as nil.
func TestStartAllWithANodeThatExitsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/node and runs three processes")
	}
	dir := t.TempDir()
	bin, err := Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	held, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	c, err := NewClusterOnPorts(bin, filepath.Join(dir, "data"), ports[:3], ports[3:])
	if err != nil {
		t.Fatal(err)
	}
	defer c.KillAll()
	err = c.StartAll()
	if err == nil || !strings.Contains(err.Error(), "node 2") {
		t.Fatalf("StartAll with node 2's port taken: %v, want node 2's failure", err)
	}
	for i := range c.Size() {
		if c.Node(i) != nil {
			t.Errorf("node %d runs after StartAll failed", i)
		}
	}
}
