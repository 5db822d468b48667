package realnet

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A flood of one kind of line gets its first line, then, when the interval
// ends, a line with the count held back, even if no line of the kind comes
// after: the count went out only with the kind's next line, and a flood
// that stopped left it unsaid.
func TestLogLimiterSaysWhatItHeldBackWhenTheFloodStops(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	l := &logLimiter{out: func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}, last: make(map[string]*logLine), every: 50 * time.Millisecond}
	for i := range 100 {
		l.logf("dial 1", "cannot connect to peer 1: attempt %d", i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(lines)
		got := strings.Join(lines, "\n")
		mu.Unlock()
		if n >= 2 {
			if n != 2 || !strings.Contains(lines[0], "attempt 0") || !strings.Contains(lines[1], `99 more lines of the kind "dial 1"`) {
				t.Fatalf("lines:\n%s\nwant the first attempt, then a count of 99 held back", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no count of the lines held back within 10 s; lines:\n%s", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
