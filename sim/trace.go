package sim

import (
	"fmt"
	"strings"

	"dkv/checks"
)

// Trace is the record of a run: a hash of every entry, for the determinism
// check, and the last entries in full, for the failure report. Entries are
// kept as fields and formatted only when printed, because a run makes
// millions of them.
type Trace struct {
	hash uint64
	n    int64
	tail []traceEntry
	next int
}

type traceEntry struct {
	at   int64
	who  Addr
	kind string
	a, b int64
	s    string
}

// FNV-1a's parameters; the hash is FNV-1a over the entries' fields.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// NewTrace keeps the last tailLen entries.
func NewTrace(tailLen int) *Trace {
	return &Trace{hash: fnvOffset, tail: make([]traceEntry, 0, tailLen)}
}

// Add records one entry: at virtual time at, endpoint who did kind, with two
// numbers and a string whose meaning depends on kind.
func (t *Trace) Add(at int64, who Addr, kind string, a, b int64, s string) {
	h := t.hash
	for _, x := range [4]uint64{uint64(at), uint64(who), uint64(a), uint64(b)} {
		h = (h ^ x) * fnvPrime
	}
	for i := 0; i < len(kind); i++ {
		h = (h ^ uint64(kind[i])) * fnvPrime
	}
	h = (h ^ 0xff) * fnvPrime // separates kind from s
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	t.hash = h
	t.n++
	if cap(t.tail) == 0 {
		return
	}
	e := traceEntry{at: at, who: who, kind: kind, a: a, b: b, s: s}
	if len(t.tail) < cap(t.tail) {
		t.tail = append(t.tail, e)
		return
	}
	t.tail[t.next] = e
	t.next = (t.next + 1) % len(t.tail)
}

// Hash is the hash of every entry so far; two runs of one seed must agree.
func (t *Trace) Hash() uint64 { return t.hash }

// Len is the number of entries so far.
func (t *Trace) Len() int64 { return t.n }

// Tail formats the last entries, oldest first.
func (t *Trace) Tail() []string {
	out := make([]string, 0, len(t.tail))
	for i := range t.tail {
		e := t.tail[(t.next+i)%len(t.tail)]
		var b strings.Builder
		fmt.Fprintf(&b, "%s %-4s %-12s", checks.FormatTime(e.at), e.who, e.kind)
		if e.a != 0 || e.b != 0 {
			fmt.Fprintf(&b, " %d %d", e.a, e.b)
		}
		if e.s != "" {
			b.WriteString(" ")
			if len(e.s) > 120 {
				b.WriteString(e.s[:117] + "...")
			} else {
				b.WriteString(e.s)
			}
		}
		out = append(out, b.String())
	}
	return out
}
