package checks

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// CheckAtomicity looks for a read that observed part of a bulk_set or of a
// bulk_delete (a bulk op: all of it or none of it, at one instant; a
// bulk_delete leaves each of its keys absent), and for reads made at one
// instant that disagree about one.
//
// Once a bulk op is known to have taken effect, a read of any of its keys
// that starts later must see the bulk op's value for that key, or a value
// written by a write that may have come after the bulk op (one that did not
// finish before the bulk op's first attempt was called). A bulk op is known
// to have taken effect:
//
//   - when it was acknowledged (an unknown one a simulator saw acknowledged,
//     SettledApplied, at EffectBy);
//   - when a read returned one of a bulk_set's values (values are unique
//     per request: a retry resends the same values), by that read's return;
//   - when a read found one of a bulk_delete's keys absent where nothing
//     else explains it: the key was known present before the read (a read
//     found it, or a write certainly made it so), and no other delete, no
//     deadline (a set's or an expire's TTL) and no other unknown write of
//     it may have taken effect between then and the read;
//   - and, known by one of those, by the latest time any of its attempts
//     could take effect (EffectBy, for one a restart settled), if earlier.
//
// A presence read (a ttl, or an expire or persist answered not_found) that
// found its key absent is a read of the absence; one that found it present
// says only that some write left it present, which after a bulk_delete
// must have come after it.
//
// The reads of one group (Op.Group: one bulk_get, one scan page, or every
// page of one consistent scan) are of one instant: where one of them saw a
// bulk op's value, its reads of the bulk op's other keys must show its
// values too, or values written by writes that may have come after it.
//
// It complements the per-key linearizability check, which lets each key's
// projection of a bulk op take effect at its own instant. The rule is
// sound — a finding is always a real violation — but not complete: a
// partial bulk op hidden behind writes concurrent with it goes unseen. A
// complete check would model all keys in one porcupine partition, which is
// exponential in the number of unknown writes and does not fit the time
// budget for 10,000-op histories. Its cost is one pass over the history, a
// sort per key, and for each read that found a key a bulk_delete names
// absent, a pass over that key's deletes and deadlines.
func CheckAtomicity(h *History) []Finding {
	a := atomicity{
		latest:     map[string]map[observation]source{},
		anyCounter: map[string]int64{},
		present:    map[string][]span{},
		causes:     map[string][]absentCause{},
		reads:      map[string][]*Op{},
		groups:     map[int][]*Op{},
		byReq:      map[bulkID]*bulkOp{},
		bulks:      map[string][]*bulkOp{},
		names:      map[*Op]*bulkOp{},
	}
	a.index(h)
	a.evidence()
	a.sweep()
	a.oneInstant()
	if a.bad > len(a.out) {
		a.out = append(a.out, Finding{Check: "atomicity", Msg: fmt.Sprintf("… and %d more partial reads", a.bad-len(a.out))})
	}
	return a.out
}

// observation is what a get saw of one key.
type observation struct {
	found bool
	value string
}

// observed is what the read g saw of its key.
func observed(g *Op) observation {
	if !g.Found {
		return observation{}
	}
	return observation{true, g.Value}
}

// source is the latest time a write of some observation may take effect,
// and the op.
type source struct {
	ret int64
	op  *Op
}

// span is an interval in which a key was present at some instant.
type span struct{ lo, hi int64 }

// absentCause is an op that may have left its key absent from some time
// (from) to some time (to): a delete within its window, or the expiry of a
// deadline from the deadline on (to never-ending).
type absentCause struct {
	op       *Op
	from, to int64
	bulk     *bulkOp // the bulk_delete it is an attempt of, if it is one
}

type bulkID struct {
	client, req int
	kind        Kind
}

// bulkOp is one logical bulk_set or bulk_delete: every attempt of one
// request.
type bulkOp struct {
	first *Op
	// writes is what it leaves in each key, by key (a slice: a map per
	// bulk op was most of the check's cost).
	writes []keyObservation
	// minCall is the earliest time an attempt may take effect;
	// maxLatest, the latest time the last attempt to take effect may.
	minCall, maxLatest int64
	// visible is when it is known to have taken effect, evidence the op
	// that shows it did, and settled whether visible is maxLatest (the
	// evidence came later).
	visible  int64
	evidence *Op
	settled  bool
}

func (l *bulkOp) isDelete() bool { return l.first.Kind == KindBulkDelete }

// value is what l leaves in key k, if it writes k.
func (l *bulkOp) value(k string) (observation, bool) {
	i := sort.Search(len(l.writes), func(i int) bool { return l.writes[i].key >= k })
	if i < len(l.writes) && l.writes[i].key == k {
		return l.writes[i].o, true
	}
	return observation{}, false
}

type keyObservation struct {
	key string
	o   observation
}

type atomicity struct {
	// latest[key][observation]: the latest time a write of it may take
	// effect, and the op; deletes and deadlines under the key's absent
	// entry.
	latest map[string]map[observation]source
	// anyCounter[key]: the latest time an incr whose answer was lost may
	// have written some counter to key.
	anyCounter map[string]int64
	// present[key]: spans in each of which key certainly was present at
	// some instant (a read found it, a write certainly made it so).
	present map[string][]span
	// causes[key]: the ops that may have left key absent.
	causes map[string][]absentCause
	// reads[key]: the OK reads of key, presence reads included.
	reads map[string][]*Op
	// groups[id]: the OK value reads of one instant, in history order;
	// groupOrder, their ids in order of first appearance.
	groups     map[int][]*Op
	groupOrder []int
	order      []*bulkOp
	byReq      map[bulkID]*bulkOp
	// bulks[key]: the bulk ops that write key, in history order.
	bulks map[string][]*bulkOp
	// names[read]: the bulk op whose effect the read observed.
	names map[*Op]*bulkOp
	out   []Finding
	bad   int
}

// index makes one pass over the history.
func (a *atomicity) index(h *History) {
	note := func(k string, o observation, r int64, op *Op) {
		if a.latest[k] == nil {
			a.latest[k] = map[observation]source{}
		}
		if r >= a.latest[k][o].ret {
			a.latest[k][o] = source{r, op}
		}
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind == KindGet {
			if op.Outcome != OK {
				continue
			}
			a.reads[op.Key] = append(a.reads[op.Key], op)
			if op.Found {
				a.present[op.Key] = append(a.present[op.Key], span{op.earliestEffect(), op.Return})
			}
			if op.Group != 0 && !op.Presence {
				if a.groups[op.Group] == nil {
					a.groupOrder = append(a.groupOrder, op.Group)
				}
				a.groups[op.Group] = append(a.groups[op.Group], op)
			}
			continue
		}
		if !op.hasEffect() {
			continue
		}
		ee, le := op.earliestEffect(), op.latestEffect()
		writes := op.Writes()
		// certain: it took effect by le.
		certain := op.Outcome == OK || op.Settled == SettledApplied
		var l *bulkOp
		if op.Kind == KindBulkSet || op.Kind == KindBulkDelete {
			l = a.logical(op, writes)
			l.minCall = min(l.minCall, ee)
			l.maxLatest = max(l.maxLatest, le)
			if certain && le < l.visible {
				l.visible, l.evidence = le, op
			}
		}
		if certain && (op.Kind == KindExpire || op.Kind == KindIncr && op.Refusal != "") {
			// It found its key (a refused incr, one holding no counter
			// or one it would take past int64).
			a.present[op.Key] = append(a.present[op.Key], span{ee, le})
		}
		if op.TTL != 0 && (op.Kind == KindExpire || op.Kind == KindSet) {
			// Its key may be deleted for the deadline it gave from the
			// deadline on, and so may an incr's that kept it: an absence
			// a write after it explains.
			a.causes[op.Key] = append(a.causes[op.Key], absentCause{op: op, from: ee + op.TTL - h.ExpirySlop, to: math.MaxInt64})
			note(op.Key, observation{}, le, op)
		}
		if op.Kind == KindExpire {
			continue
		}
		for _, w := range writes {
			if w.Present {
				if certain {
					a.present[w.Key] = append(a.present[w.Key], span{ee, le})
				}
			} else {
				a.causes[w.Key] = append(a.causes[w.Key], absentCause{op: op, from: ee, to: le, bulk: l})
			}
			if w.Any {
				// No value to name: it may be what any read of a
				// counter saw.
				if r, ok := a.anyCounter[w.Key]; !ok || le > r {
					a.anyCounter[w.Key] = le
				}
				continue
			}
			note(w.Key, observation{w.Present, w.Value}, le, op)
		}
	}
}

// logical returns the bulk op op is an attempt of.
func (a *atomicity) logical(op *Op, writes []KeyWrite) *bulkOp {
	id := bulkID{op.Client, op.Req, op.Kind}
	if l := a.byReq[id]; l != nil {
		return l
	}
	l := &bulkOp{first: op, minCall: math.MaxInt64, maxLatest: math.MinInt64, visible: math.MaxInt64}
	l.writes = make([]keyObservation, 0, len(writes))
	for _, w := range writes { // one per key
		l.writes = append(l.writes, keyObservation{w.Key, observation{w.Present, w.Value}})
		a.bulks[w.Key] = append(a.bulks[w.Key], l)
	}
	slices.SortFunc(l.writes, func(x, y keyObservation) int { return strings.Compare(x.key, y.key) })
	a.byReq[id] = l
	a.order = append(a.order, l)
	return l
}

// evidence finds the reads that observed a bulk op's effect, and when each
// bulk op is known to have taken effect.
func (a *atomicity) evidence() {
	owner := map[string]map[string]*bulkOp{} // [key][value]: the bulk_set that wrote it
	deleted := map[string]bool{}             // keys a bulk_delete names
	for _, l := range a.order {
		for _, w := range l.writes {
			if !w.o.found {
				deleted[w.key] = true
				continue
			}
			if owner[w.key] == nil {
				owner[w.key] = map[string]*bulkOp{}
			}
			owner[w.key][w.o.value] = l
		}
	}
	for _, k := range sortedKeys(a.reads) {
		// The presence spans by their end, with the latest start of any
		// span ending no later.
		spans := a.present[k]
		if deleted[k] {
			sort.Slice(spans, func(i, j int) bool { return spans[i].hi < spans[j].hi })
			for i := 1; i < len(spans); i++ {
				spans[i].lo = max(spans[i].lo, spans[i-1].lo)
			}
		}
		for _, g := range a.reads[k] {
			var l *bulkOp
			switch {
			case g.Found && !g.Presence:
				l = owner[k][g.Value]
			case !g.Found && deleted[k]:
				l = a.onlyCause(g, spans)
			}
			if l == nil {
				continue
			}
			if g.Group != 0 {
				a.names[g] = l // for oneInstant
			}
			if g.Return < l.visible {
				l.visible, l.evidence = g.Return, g
			}
		}
	}
	for _, l := range a.order {
		// Known to have taken effect, it did by the latest time any of
		// its attempts could.
		if l.evidence != nil && l.maxLatest < l.visible {
			l.visible, l.settled = l.maxLatest, true
		}
	}
}

// onlyCause returns the bulk_delete that alone explains why the read g
// found its key absent, if one does: the key was present at some instant
// before g (in a span of spans ending before g began), and of the ops that
// may have deleted it after that instant and by g's return, every one is
// an attempt of that bulk_delete.
func (a *atomicity) onlyCause(g *Op, spans []span) *bulkOp {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].hi >= g.earliestEffect() })
	if i == 0 {
		return nil // the initial state, absent, may be what g saw
	}
	// The key was present at an instant no earlier than from: a
	// deletion that took effect before cannot explain g.
	from := spans[i-1].lo
	var only *bulkOp
	for _, c := range a.causes[g.Key] {
		if c.from > g.Return || c.to < from {
			continue
		}
		if c.bulk == nil || only != nil && c.bulk != only {
			return nil
		}
		only = c.bulk
	}
	return only
}

// explained reports whether what a read saw of key k (o) may have been
// written after the time t: a write of it may have taken effect then or
// later, or it is a value nobody wrote, which the other checkers report.
func (a *atomicity) explained(k string, o observation, t int64) (src source, ok, yes bool) {
	src, ok = a.latest[k][o]
	switch {
	case o.found && !ok:
		return src, ok, true // a value nobody wrote: the other checkers report it
	case ok && src.ret >= t:
		return src, ok, true // what was seen may have been written after t
	}
	if _, err := strconv.ParseInt(o.value, 10, 64); o.found && err == nil {
		if r, has := a.anyCounter[k]; has && r >= t {
			return src, ok, true // so may an incr whose answer was lost have
		}
	}
	return src, ok, false
}

// latestPresent is the latest time a write that leaves key k present may
// take effect (math.MinInt64: none may).
func (a *atomicity) latestPresent(k string) int64 {
	t := int64(math.MinInt64)
	if r, ok := a.anyCounter[k]; ok {
		t = r
	}
	for o, src := range a.latest[k] {
		if o.found {
			t = max(t, src.ret)
		}
	}
	return t
}

// sweep checks each key's reads against the bulk ops known to have taken
// effect before they began: in call order, over the bulk ops in order of
// visibility, keeping the two with the latest first call (two, so that
// the one whose value the read saw can be passed over), and the bulk_delete
// with the latest, for a read that found the key present.
func (a *atomicity) sweep() {
	for _, k := range sortedKeys(a.reads) {
		var ls []*bulkOp
		for _, l := range a.bulks[k] {
			if l.evidence != nil {
				ls = append(ls, l)
			}
		}
		if len(ls) == 0 {
			continue
		}
		sort.SliceStable(ls, func(i, j int) bool { return ls[i].visible < ls[j].visible })
		gs := append([]*Op(nil), a.reads[k]...)
		sort.SliceStable(gs, func(i, j int) bool { return gs[i].earliestEffect() < gs[j].earliestEffect() })
		var top [2]*bulkOp
		var del *bulkOp
		next := 0
		present := int64(math.MinInt64 + 1) // latestPresent(k), once needed
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
				if l.isDelete() && (del == nil || l.minCall > del.minCall) {
					del = l
				}
			}
			if g.Presence && g.Found {
				// Some value: after a bulk_delete, one written later.
				if present == math.MinInt64+1 {
					present = a.latestPresent(k)
				}
				if del != nil && present < del.minCall {
					a.report(fmt.Sprintf("%s was partly visible: it had taken effect by %s (%s), yet the later %s found %s present, and nothing that may have written it came after",
						del.first, FormatTime(del.visible), a.why(del), g, k))
				}
				continue
			}
			o := observed(g)
			l := top[0]
			if l != nil {
				if v, _ := l.value(k); v == o {
					l = top[1]
				}
			}
			if l == nil {
				continue
			}
			src, ok, yes := a.explained(k, o, l.minCall)
			if yes {
				continue
			}
			a.report(fmt.Sprintf("%s was partly visible: it had taken effect by %s (%s), yet the later %s saw %s",
				l.first, FormatTime(l.visible), a.why(l), g, from(src, ok, "bulk op")))
		}
	}
}

// oneInstant checks each group of reads of one instant: where one of them
// saw a bulk op's value, its reads of the bulk op's other keys must show
// the bulk op's values, or values that may have been written after it.
func (a *atomicity) oneInstant() {
	for _, id := range a.groupOrder {
		group := a.groups[id]
		if len(group) < 2 {
			continue
		}
		byKey := map[string][]*Op{}
		for _, r := range group {
			byKey[r.Key] = append(byKey[r.Key], r)
		}
		done := map[*bulkOp]bool{}
		for _, r := range group {
			l := a.names[r]
			if l == nil || done[l] {
				continue
			}
			done[l] = true
			for _, w := range l.writes {
				k := w.key
				if k == r.Key {
					continue
				}
				for _, r2 := range byKey[k] {
					o := observed(r2)
					if o == w.o {
						continue
					}
					src, ok, yes := a.explained(k, o, l.minCall)
					if yes {
						continue
					}
					a.report(fmt.Sprintf("reads of one instant (group %d) saw part of %s: %s saw its effect, yet %s saw %s",
						id, l.first, r, r2, from(src, ok, "bulk op")))
				}
			}
		}
	}
}

// why says how a bulk op is known to have taken effect by its visible time.
func (a *atomicity) why(l *bulkOp) string {
	if l.settled {
		return fmt.Sprintf("%s shows it did, and none of its attempts could take effect later", l.evidence)
	}
	return l.evidence.String()
}

// from describes the source of what a read saw.
func from(src source, ok bool, what string) string {
	if !ok {
		return "the initial (absent) state"
	}
	return fmt.Sprintf("%s, which finished before the %s was called", src.op, what)
}

func (a *atomicity) report(msg string) {
	a.bad++
	if len(a.out) < findingsMax {
		a.out = append(a.out, Finding{Check: "atomicity", Msg: msg})
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
