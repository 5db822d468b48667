package checks

import (
	"fmt"
	"math"
	"slices"
)

// CheckAtomicity looks for a read that observed part of a bulk_set: once a
// bulk_set is known to have taken effect — it was acknowledged, or some get
// returned one of its values — a get of any of its keys that starts later
// must see the bulk_set's value for that key, or a value written by a write
// that may have come after the bulk_set (one that did not finish before the
// bulk_set's first attempt was called).
//
// It complements the per-key linearizability check, which lets each key's
// projection of a bulk_set take effect at its own instant. The rule is
// sound — a finding is always a real violation — but not complete: a
// partial bulk_set hidden behind writes concurrent with it goes unseen. A
// complete check would model all keys in one porcupine partition, which is
// exponential in the number of unknown writes and does not fit the time
// budget for 10,000-op histories.
func CheckAtomicity(h *History) []Finding {
	writers := writersByKey(h)
	gets := map[string][]*Op{}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind == KindGet && op.Outcome == OK {
			gets[op.Key] = append(gets[op.Key], op)
		}
	}
	// One logical bulk_set is every attempt of one request.
	type logical struct {
		attempts []*Op
	}
	var order []int
	byReq := map[[2]int]*logical{}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind != KindBulkSet || !op.hasEffect() {
			continue
		}
		id := [2]int{op.Client, op.Req}
		if byReq[id] == nil {
			byReq[id] = &logical{}
			order = append(order, i)
		}
		byReq[id].attempts = append(byReq[id].attempts, op)
	}
	var out []Finding
	bad := 0
	for _, i := range order {
		first := &h.Ops[i]
		l := byReq[[2]int{first.Client, first.Req}]
		writes := first.Writes()
		minCall := int64(math.MaxInt64)
		visible := int64(math.MaxInt64)
		var evidence *Op
		for _, a := range l.attempts {
			minCall = min(minCall, a.Call)
			if a.Outcome == OK && a.Return < visible {
				visible, evidence = a.Return, a
			}
		}
		for _, w := range writes {
			for _, g := range gets[w.Key] {
				if g.Found && g.Value == w.Value && g.Return < visible {
					visible, evidence = g.Return, g
				}
			}
		}
		if evidence == nil {
			continue
		}
		for _, w := range writes {
			for _, g := range gets[w.Key] {
				if g.Call <= visible || (g.Found && g.Value == w.Value) {
					continue
				}
				explained, sources := false, 0
				var stale *Op
				for _, c := range writers[w.Key] {
					if !c.explains(g) || slices.Contains(l.attempts, c.op) {
						continue
					}
					sources++
					if c.ret() >= minCall {
						explained = true
						break
					}
					stale = c.op
				}
				// A value no write explains is CheckDurability's and the
				// linearizability check's to report; here it would be
				// misread as the initial state.
				if explained || (g.Found && sources == 0) {
					continue
				}
				bad++
				if len(out) >= findingsMax {
					continue
				}
				from := "the initial (absent) state"
				if stale != nil {
					from = fmt.Sprintf("%s, which finished before the bulk_set was called", stale)
				}
				out = append(out, Finding{Check: "atomicity", Msg: fmt.Sprintf(
					"%s was partly visible: it had taken effect by %s (%s), yet the later %s saw %s",
					first, FormatTime(visible), evidence, g, from)})
			}
		}
	}
	if bad > len(out) {
		out = append(out, Finding{Check: "atomicity", Msg: fmt.Sprintf("… and %d more partial reads", bad-len(out))})
	}
	return out
}
