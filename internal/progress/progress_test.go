package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dkv/internal/syncbuf"
)

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var nilFile *os.File
	for name, out := range map[string]io.Writer{"file": f, "pipe": w, "buffer": &bytes.Buffer{}, "nil file": nilFile} {
		if IsTerminal(out) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
}

// Off a terminal (as under go test), a phase shorter than the line interval
// prints nothing at all, and a nil writer nothing ever.
func TestProgressOffATerminalIsQuiet(t *testing.T) {
	var out syncbuf.Buffer
	var n atomic.Int64
	p := Start(&out, Spec{Title: "populating", Total: 100, Unit: "keys", Count: n.Load})
	for range 30 {
		n.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
	p.Finish()
	p.Finish() // a deferred finish after the explicit one
	if out.String() != "" {
		t.Fatalf("progress wrote %q off a terminal within %v", out.String(), LineEvery)
	}
	var none *Bar = Start(nil, Spec{Title: "x", Total: 1, Count: n.Load})
	none.Clear()
	none.Finish()
}

// Off a terminal, a line per interval: plain, whole lines a log can keep.
func TestProgressLinesOffATerminal(t *testing.T) {
	var out syncbuf.Buffer
	var n atomic.Int64
	n.Store(25)
	p := StartOn(&out, false, 20*time.Millisecond, Spec{
		Title: "durability: 100 SIGKILLs", Total: 100, Unit: "kills", Count: n.Load,
		Detail: func() string { return "3 lost" },
	})
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.Finish()
	s := out.String()
	if strings.ContainsAny(s, "\r\x1b") {
		t.Fatalf("carriage return or escape off a terminal: %q", s)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("%d lines in 5 s at one per 20 ms: %q", len(lines), s)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "durability: 100 SIGKILLs: 25/100 kills (25%), 3 lost, ") || !strings.HasSuffix(l, " elapsed") {
			t.Errorf("line %q", l)
		}
	}
}

// On a terminal, a bar redrawn in place, which finish takes off the line.
func TestProgressBarOnATerminal(t *testing.T) {
	var out syncbuf.Buffer
	var n atomic.Int64
	n.Store(40)
	p := StartOn(&out, true, time.Hour, Spec{Title: "populating 1000 keys", Total: 1000, Unit: "keys", Count: n.Load})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "40/1000") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.Finish()
	s := out.String()
	if !strings.Contains(s, "populating 1000 keys") || !strings.Contains(s, "40/1000") || !strings.Contains(s, "\r") {
		t.Fatalf("no bar drawn in place: %q", s)
	}
	// The clearing: the line overwritten with blanks, the cursor back at its start.
	segs := strings.Split(s, "\r")
	if len(segs) < 3 || segs[len(segs)-1] != "" || strings.Trim(segs[len(segs)-2], " ") != "" || len(segs[len(segs)-2]) == 0 {
		t.Fatalf("bar left on the line after finish: %q", s)
	}
}
