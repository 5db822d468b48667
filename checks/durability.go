package checks

import (
	"fmt"
	"strconv"
)

// writer is one op's effect on one key, for the value-matching checkers.
type writer struct {
	op *Op
	w  KeyWrite
}

// ret is the latest time the writer may have taken effect: its return, or
// never-ending for an unknown outcome.
func (w writer) ret() int64 { return w.op.latestEffect() }

// writersByKey indexes the writes that may have taken effect (ok or unknown).
func writersByKey(h *History) map[string][]writer {
	out := map[string][]writer{}
	for i := range h.Ops {
		op := &h.Ops[i]
		if !op.hasEffect() {
			continue
		}
		for _, w := range op.Writes() {
			out[w.Key] = append(out[w.Key], writer{op: op, w: w})
		}
	}
	return out
}

// explains reports whether the writer's effect is what get observed.
func (w writer) explains(get *Op) bool {
	if !get.Found {
		return !w.w.Present
	}
	if w.w.Any {
		_, err := strconv.ParseInt(get.Value, 10, 64)
		return err == nil // some counter, maybe this one
	}
	return w.w.Present && w.w.Value == get.Value
}

// findingsMax bounds the findings one checker reports: the first few say
// what is wrong, the count says how much.
const findingsMax = 5

// CheckDurability judges the final reads: for every key a final read
// observed, every write of that key that was acknowledged must be what the
// read saw, or have been overwritten by a write that may have come after it
// (one that did not finish before the acknowledged write was called). A
// final read that no write explains, and a key that reads as absent
// although nothing deleted it after an acknowledged write, are findings too.
//
// This is a consequence of linearizability, checked separately because its
// finding — "acknowledged write X was lost" — is the one that matters most
// and is the clearest to act on.
func CheckDurability(h *History) []Finding {
	writers := writersByKey(h)
	// An expire that may have applied gave its key a deadline: once that
	// may have passed, its expiry, a delete after it, explains an absence
	// as a set's with a TTL does.
	expires := map[string][]writer{}
	// deadlines are the writes that may have given their key a deadline
	// (a set with a TTL, an expire): an incr after one keeps it.
	deadlines := map[string][]*Op{}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind == KindExpire && op.TTL != 0 && op.hasEffect() {
			expires[op.Key] = append(expires[op.Key], writer{op: op, w: KeyWrite{Key: op.Key}})
		}
		if (op.Kind == KindExpire || op.Kind == KindSet) && op.TTL != 0 && op.hasEffect() {
			deadlines[op.Key] = append(deadlines[op.Key], op)
		}
	}
	// inherits reports whether the incr c may have kept a deadline that
	// passed by the time of final: one a write that may have come before
	// it gave the key. (Its expiry, a delete after the incr, explains an
	// absence as a set's with a TTL does: seed 867 of the simulator, an
	// acknowledged incr of a key set with a TTL, the key gone at the set's
	// deadline, was judged lost without it.)
	inherits := func(c writer, final *Op) bool {
		if c.op.Kind != KindIncr {
			return false
		}
		for _, d := range deadlines[final.Key] {
			if d.earliestEffect() <= c.ret() && d.earliestEffect()+d.TTL-h.ExpirySlop <= final.Return {
				return true
			}
		}
		return false
	}
	var out []Finding
	lost := 0
	report := func(msg string) {
		lost++
		if len(out) < findingsMax {
			out = append(out, Finding{Check: "durability", Msg: msg})
		}
	}
	for i := range h.Ops {
		final := &h.Ops[i]
		if !final.Final || final.Kind != KindGet || final.Outcome != OK {
			continue
		}
		ws := writers[final.Key]
		var source []writer
		for _, c := range ws {
			if c.explains(final) && c.op.earliestEffect() <= final.Return {
				source = append(source, c)
			}
			if !final.Found && c.op.TTL != 0 && c.w.Present && c.op.earliestEffect()+c.op.TTL-h.ExpirySlop <= final.Return {
				// A set with a TTL whose deadline may have passed: its
				// expiry, a delete after it, explains the absence.
				source = append(source, c)
			}
			if !final.Found && inherits(c, final) {
				source = append(source, c)
			}
		}
		for _, c := range expires[final.Key] {
			if !final.Found && c.op.earliestEffect()+c.op.TTL-h.ExpirySlop <= final.Return {
				source = append(source, c)
			}
		}
		if final.Found && len(source) == 0 {
			report(fmt.Sprintf("final read %s returned a value that no client wrote", final))
			continue
		}
		for _, w := range ws {
			if w.op.Outcome != OK || w.op.Return > final.earliestEffect() {
				continue
			}
			if w.explains(final) {
				continue // what it wrote is what is there (this op or a retry of the same value)
			}
			survived := false
			for _, c := range source {
				if c.ret() >= w.op.earliestEffect() {
					survived = true // c may have overwritten w
					break
				}
			}
			if survived {
				continue
			}
			what := "the key is absent and nothing may have deleted it since"
			if final.Found || len(source) > 0 {
				what = fmt.Sprintf("the value there was written by %s, which finished before it was called", source[len(source)-1].op)
			}
			report(fmt.Sprintf("acknowledged %s was lost: final read %s; %s", w.op, final, what))
		}
	}
	if lost > len(out) {
		out = append(out, Finding{Check: "durability", Msg: fmt.Sprintf("… and %d more lost writes", lost-len(out))})
	}
	return out
}
