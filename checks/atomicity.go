package checks

import (
	"fmt"
	"math"
	"sort"
	"strconv"
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
//
// Values are unique per request (a retry resends the same values), which is
// what lets a read name the write it saw.
func CheckAtomicity(h *History) []Finding {
	// latest[key][value]: the latest time a write of value to key may take
	// effect, and the op; deletes are under the key's absent entry.
	type source struct {
		ret int64
		op  *Op
	}
	latest := map[string]map[observation]source{}
	// anyCounter[key]: the latest time an incr whose answer was lost may
	// have written some counter to key.
	anyCounter := map[string]int64{}
	gets := map[string][]*Op{}
	// One logical bulk_set is every attempt of one request.
	type logical struct {
		first            *Op
		minCall, visible int64
		evidence         *Op
		values           map[string]string
	}
	var order []*logical
	byReq := map[[2]int]*logical{}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind == KindGet {
			if op.Outcome == OK && !op.Presence {
				gets[op.Key] = append(gets[op.Key], op)
			}
			continue
		}
		if !op.hasEffect() {
			continue
		}
		if op.Kind == KindExpire && op.TTL != 0 {
			// Its key may be deleted for the deadline it gave, as a set's
			// with a TTL may.
			if latest[op.Key] == nil {
				latest[op.Key] = map[observation]source{}
			}
			if gone := (observation{}); op.latestEffect() >= latest[op.Key][gone].ret {
				latest[op.Key][gone] = source{op.latestEffect(), op}
			}
			continue
		}
		for _, w := range op.Writes() {
			if w.Any {
				// No value to name: it may be what any read of a
				// counter saw.
				if r := op.latestEffect(); r >= anyCounter[w.Key] {
					anyCounter[w.Key] = r
				}
				continue
			}
			if latest[w.Key] == nil {
				latest[w.Key] = map[observation]source{}
			}
			o := observation{w.Present, w.Value}
			if r := op.latestEffect(); r >= latest[w.Key][o].ret {
				latest[w.Key][o] = source{r, op}
			}
			// A set with a TTL may be deleted for it at any time after:
			// an absence a write after it explains.
			if gone := (observation{}); op.TTL != 0 && w.Present && op.latestEffect() >= latest[w.Key][gone].ret {
				latest[w.Key][gone] = source{op.latestEffect(), op}
			}
		}
		if op.Kind != KindBulkSet {
			continue
		}
		id := [2]int{op.Client, op.Req}
		l := byReq[id]
		if l == nil {
			l = &logical{first: op, minCall: math.MaxInt64, visible: math.MaxInt64, values: map[string]string{}}
			for _, w := range op.Writes() {
				l.values[w.Key] = w.Value
			}
			byReq[id] = l
			order = append(order, l)
		}
		l.minCall = min(l.minCall, op.earliestEffect())
		if op.Outcome == OK && op.Return < l.visible {
			l.visible, l.evidence = op.Return, op
		}
	}
	// A get that returned one of a bulk_set's values shows it took effect.
	for _, l := range order {
		for k, v := range l.values {
			for _, g := range gets[k] {
				if g.Found && g.Value == v && g.Return < l.visible {
					l.visible, l.evidence = g.Return, g
				}
			}
		}
	}
	// Per key: sweep the gets in call order over the bulk_sets in order of
	// visibility, keeping the two with the latest first call (two, so that
	// the one whose value the get saw can be passed over).
	var keys []string
	for k := range gets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Finding
	bad := 0
	for _, k := range keys {
		var ls []*logical
		for _, l := range order {
			if _, ok := l.values[k]; ok && l.evidence != nil {
				ls = append(ls, l)
			}
		}
		if len(ls) == 0 {
			continue
		}
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].visible < ls[j].visible })
		gs := append([]*Op(nil), gets[k]...)
		sort.SliceStable(gs, func(i, j int) bool { return gs[i].earliestEffect() < gs[j].earliestEffect() })
		var top [2]*logical
		next := 0
		for _, g := range gs {
			for next < len(ls) && ls[next].visible < g.earliestEffect() {
				l := ls[next]
				next++
				switch {
				case top[0] == nil || l.minCall > top[0].minCall:
					top[0], top[1] = l, top[0]
				case top[1] == nil || l.minCall > top[1].minCall:
					top[1] = l
				}
			}
			l := top[0]
			if l != nil && g.Found && l.values[k] == g.Value {
				l = top[1]
			}
			if l == nil {
				continue
			}
			src, ok := latest[k][observation{g.Found, g.Value}]
			if g.Found && !ok {
				continue // a value nobody wrote: the other checkers report it
			}
			if ok && src.ret >= l.minCall {
				continue // what g saw may have been written after the bulk_set
			}
			if _, err := strconv.ParseInt(g.Value, 10, 64); g.Found && err == nil && anyCounter[k] >= l.minCall {
				continue // so may an incr whose answer was lost have
			}
			bad++
			if len(out) >= findingsMax {
				continue
			}
			from := "the initial (absent) state"
			if ok {
				from = fmt.Sprintf("%s, which finished before the bulk_set was called", src.op)
			}
			out = append(out, Finding{Check: "atomicity", Msg: fmt.Sprintf(
				"%s was partly visible: it had taken effect by %s (%s), yet the later %s saw %s",
				l.first, FormatTime(l.visible), l.evidence, g, from)})
		}
	}
	if bad > len(out) {
		out = append(out, Finding{Check: "atomicity", Msg: fmt.Sprintf("… and %d more partial reads", bad-len(out))})
	}
	return out
}

// observation is what a get saw of one key.
type observation struct {
	found bool
	value string
}
