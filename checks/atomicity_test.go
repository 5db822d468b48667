package checks

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"dkv/core"

	"github.com/anishathalye/porcupine"
)

func bulkDel(c int, call, ret int64, o Outcome, keys ...string) Op {
	op := Op{Client: c, Req: int(call), Kind: KindBulkDelete, Call: call, Return: ret, Outcome: o}
	for _, k := range keys {
		op.Items = append(op.Items, core.KV{Key: k})
	}
	return op
}

func settle(op Op, s Settled, by int64) Op { op.Settled, op.EffectBy = s, by; return op }

// bulkGet reads keys (k1, v1, k2, v2, …; "" for a key found absent) at
// one instant.
func bulkGet(c int, call, ret int64, kvs ...string) Op {
	op := Op{Client: c, Req: int(call), Kind: KindBulkGet, Call: call, Return: ret, Outcome: OK}
	for i := 0; i+1 < len(kvs); i += 2 {
		op.Items = append(op.Items, core.KV{Key: kvs[i]})
		var v *string
		if kvs[i+1] != "" {
			v = &kvs[i+1]
		}
		op.Reads = append(op.Reads, v)
	}
	return op
}

type atomicityCase struct {
	name string
	ops  []Op
	bad  bool
}

// run checks each case with CheckAtomicity alone (bad: a finding is
// wanted) and, for the good ones, with every checker: a history that keeps
// every promise passes them all. Ops are added with History.Add, so a
// bulk_get is its gets of one group.
func runAtomicityCases(t *testing.T, cases []atomicityCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &History{ExpirySlop: 1}
			for _, op := range c.ops {
				h.Add(op)
			}
			fs := CheckAtomicity(h)
			if (len(fs) > 0) != c.bad {
				t.Fatalf("got findings %v, want bad=%v", fs, c.bad)
			}
			if c.bad {
				t.Logf("found: %v", fs[0])
				return
			}
			if _, fs := Verdict(h, LinOptions{}); len(fs) > 0 {
				t.Fatalf("a history that keeps its promises failed a checker: %v", fs)
			}
		})
	}
}

// A bulk_delete is all or nothing, as a bulk_set is: once a read shows it
// took effect (it found one of its keys absent where nothing else can have
// deleted it), or it was acknowledged, a later read of its other keys must
// find them absent too, or written after it. (Review 5, finding 1.)
func TestAtomicityBulkDeleteIsAllOrNothing(t *testing.T) {
	runAtomicityCases(t, []atomicityCase{
		{"settled by a restart, a deleted and b not after it", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			settle(bulkDel(1, 10, 20, Unknown, "a", "b"), SettledMaybe, 30),
			final(get(9, "a", "", 40, 41)),
			final(get(9, "b", "B", 42, 43)),
		}, true},
		{"acknowledged, a gone and then b still there", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 100, OK, "a", "b"),
			get(2, "a", "", 20, 21),
			get(2, "b", "B", 30, 31),
		}, true},
		{"unknown, a read present then absent, b still there", []Op{
			set(0, "a", "A", 0, 1, Unknown), set(0, "b", "B", 2, 3, OK),
			get(2, "a", "A", 5, 6),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, true},
		{"a delete before a's last write explains nothing", []Op{
			set(0, "a", "A", 0, 1, OK), del(0, "a", 2, 3, OK), set(0, "a", "A2", 4, 5, OK), set(0, "b", "B", 6, 7, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, true},
		{"whole", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "", 40, 41),
		}, false},
		{"b written again after the bulk_delete's call", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			set(0, "b", "B2", 15, 16, OK),
			get(2, "a", "", 30, 31),
			get(2, "b", "B2", 40, 41),
		}, false},
		{"another delete may have deleted a", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			del(3, "a", 12, 13, Unknown),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, false},
		{"another bulk_delete may have deleted a", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			bulkDel(3, 12, 13, Unknown, "a", "c"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, false},
		{"a was never there", []Op{
			set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, false},
		{"a was written only by a write that may not have applied", []Op{
			set(0, "a", "A", 0, 1, Unknown), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, false},
		{"a's deadline may have passed", []Op{
			ttl(set(0, "a", "A", 0, 1, OK), 25), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, false},
		{"an expire's deadline may have passed", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			expire(3, "a", 20, 4, 5, Unknown),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, false},
		{"a deadline that cannot have passed yet explains nothing", []Op{
			ttl(set(0, "a", "A", 0, 1, OK), 1000), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			get(2, "b", "B", 40, 41),
		}, true},
	})
}

// A bulk op whose outcome its client did not learn, which a read shows took
// effect, took effect by the latest time any of its attempts could (the
// restart that settled it, or the acknowledgement the client never got):
// every read that began after that must see it whole, not only those after
// the read that showed it. One a simulator saw acknowledged took effect
// then, read or not. (Review 5, finding 2.)
func TestAtomicitySettledBulkOpVisibleByItsLatestEffect(t *testing.T) {
	runAtomicityCases(t, []atomicityCase{
		{"settled by a restart, b old after it, a new later", []Op{
			set(0, "b", "0", 0, 5, OK),
			settle(bulk(1, 10, 20, Unknown, "a", "1", "b", "2"), SettledMaybe, 30),
			final(get(9, "b", "0", 100, 110)),
			final(get(9, "a", "1", 120, 130)),
		}, true},
		{"acknowledged unseen, b old after the acknowledgement", []Op{
			set(0, "b", "0", 0, 5, OK),
			settle(bulk(1, 10, 20, Unknown, "a", "1", "b", "2"), SettledApplied, 30),
			get(9, "b", "0", 100, 110),
		}, true},
		{"a bulk_delete settled by a restart", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			settle(bulkDel(1, 10, 20, Unknown, "a", "b"), SettledMaybe, 30),
			final(get(9, "b", "B", 100, 110)),
			final(get(9, "a", "", 120, 130)),
		}, true},
		{"a retry whose attempts all were settled", []Op{
			set(0, "b", "0", 0, 5, OK),
			settle(bulk(1, 10, 20, Unknown, "a", "1", "b", "2"), SettledMaybe, 30),
			settle(bulk(1, 40, 50, Unknown, "a", "1", "b", "2"), SettledMaybe, 60),
			get(9, "b", "0", 70, 80),
			get(9, "a", "1", 120, 130),
		}, true},
		{"a read before the restart may see the old value", []Op{
			set(0, "b", "0", 0, 5, OK),
			settle(bulk(1, 10, 20, Unknown, "a", "1", "b", "2"), SettledMaybe, 30),
			get(9, "b", "0", 25, 26),
			get(9, "a", "1", 120, 130),
		}, false},
		{"an attempt not settled may take effect later", []Op{
			set(0, "b", "0", 0, 5, OK),
			settle(bulk(1, 10, 20, Unknown, "a", "1", "b", "2"), SettledMaybe, 30),
			bulk(1, 40, 50, Unknown, "a", "1", "b", "2"),
			get(9, "b", "0", 70, 80),
			get(9, "a", "1", 120, 130),
		}, false},
		{"settled by a restart and never seen: nothing known", []Op{
			set(0, "b", "0", 0, 5, OK),
			settle(bulk(1, 10, 20, Unknown, "a", "1", "b", "2"), SettledMaybe, 30),
			get(9, "b", "0", 100, 110),
		}, false},
	})
}

// A bulk_get reads its keys at one instant, and so does a scan page, and
// every page of one consistent scan: a bulk op one of its reads saw must
// show whole in its reads of the bulk op's other keys. (Review 5,
// finding 3.)
func TestAtomicityBulkGetIsOneInstant(t *testing.T) {
	page := func(group int, call, ret int64, kvs ...string) Op {
		op := bulkGet(2, call, ret, kvs...)
		op.Group = group
		return op
	}
	var walk History
	g := walk.NewGroup()
	runAtomicityCases(t, []atomicityCase{
		{"half of a concurrent bulk_set", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulk(1, 10, 100, OK, "a", "1", "b", "1"),
			bulkGet(2, 20, 30, "a", "1", "b", "0"),
		}, true},
		{"half of a concurrent bulk_set, keys in the other order", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulk(1, 10, 100, OK, "a", "1", "b", "1"),
			bulkGet(2, 20, 30, "b", "0", "a", "1"),
		}, true},
		{"half of a concurrent bulk_delete", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulkDel(1, 10, 100, OK, "a", "b"),
			bulkGet(2, 20, 30, "a", "", "b", "0"),
		}, true},
		{"the whole of a concurrent bulk_set", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulk(1, 10, 100, OK, "a", "1", "b", "1"),
			bulkGet(2, 20, 30, "a", "1", "b", "1"),
		}, false},
		{"none of a concurrent bulk_set", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulk(1, 10, 100, OK, "a", "1", "b", "1"),
			bulkGet(2, 20, 30, "a", "0", "b", "0"),
		}, false},
		{"a bulk_set, and a write after it", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulk(1, 10, 100, OK, "a", "1", "b", "1"),
			set(3, "b", "2", 15, 16, OK),
			bulkGet(2, 20, 30, "a", "1", "b", "2"),
		}, false},
		{"the pages of one consistent scan", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulk(1, 10, 100, OK, "a", "1", "b", "1"),
			page(g, 20, 30, "a", "1"),
			page(g, 20, 30, "b", "0"),
		}, true},
		{"two scans' pages, each its own instant", []Op{
			set(0, "a", "0", 0, 1, OK), set(0, "b", "0", 2, 3, OK),
			bulk(1, 10, 100, OK, "a", "1", "b", "1"),
			page(0, 20, 30, "a", "1"),
			page(0, 20, 30, "b", "0"),
		}, false},
	})

	// Add gives every get of one bulk_get one group, a group of its own
	// unless the bulk_get names one.
	var h History
	h.Add(bulkGet(1, 1, 2, "a", "", "b", ""))
	h.Add(bulkGet(1, 3, 4, "a", "", "b", ""))
	h.Add(get(1, "a", "", 5, 6))
	given := h.NewGroup()
	h.Add(page(given, 7, 8, "a", ""))
	h.Add(page(given, 7, 8, "b", ""))
	var groups []int
	for _, op := range h.Ops {
		groups = append(groups, op.Group)
	}
	if want := fmt.Sprint([]int{1, 1, 2, 2, 0, 3, 3}); fmt.Sprint(groups) != want {
		t.Fatalf("groups %v, want %s", groups, want)
	}
}

// A presence read (a ttl, an expire or persist answered not_found) that
// found its key absent is a read of that absence, for the atomicity check
// as for the others; one that found it present shows a write that left it
// present, which after a bulk_delete must have come after it. (Review 5,
// finding 4.)
func TestAtomicityPresenceReads(t *testing.T) {
	notFound := func(op Op) Op { return presence(op, false) }
	isThere := func(op Op) Op { return presence(op, true) }
	runAtomicityCases(t, []atomicityCase{
		{"a bulk_set seen, then a ttl finds its other key missing", []Op{
			bulk(1, 10, 20, Unknown, "a", "1", "b", "2"),
			get(2, "a", "1", 30, 40),
			notFound(get(2, "b", "", 50, 60)),
		}, true},
		{"an acknowledged bulk_set, then a ttl finds its key missing", []Op{
			bulk(1, 10, 20, OK, "a", "1", "b", "2"),
			notFound(get(2, "b", "", 50, 60)),
		}, true},
		{"a bulk_delete seen, then a ttl finds its other key there", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			get(2, "a", "", 30, 31),
			isThere(get(2, "b", "", 40, 41)),
		}, true},
		{"a ttl's absence shows a bulk_delete took effect", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			notFound(get(2, "a", "", 30, 31)),
			get(2, "b", "B", 40, 41),
		}, true},
		{"a ttl finds a key a later write left there", []Op{
			set(0, "a", "A", 0, 1, OK), set(0, "b", "B", 2, 3, OK),
			bulkDel(1, 10, 20, Unknown, "a", "b"),
			set(3, "b", "B2", 15, 16, Unknown),
			get(2, "a", "", 30, 31),
			isThere(get(2, "b", "", 40, 41)),
		}, false},
		{"a ttl finds a bulk_set's key there", []Op{
			bulk(1, 10, 20, OK, "a", "1", "b", "2"),
			isThere(get(2, "b", "", 50, 60)),
		}, false},
		{"a ttl finds a key deleted after the bulk_set missing", []Op{
			bulk(1, 10, 20, Unknown, "a", "1", "b", "2"),
			del(3, "b", 15, 45, OK),
			get(2, "a", "1", 30, 40),
			notFound(get(2, "b", "", 50, 60)),
		}, false},
	})
}

// randomBulkHistory makes a history that keeps every promise: clients call
// ops that take effect, whole, at a random instant inside their interval,
// against a real map — bulk_sets, bulk_deletes, bulk_gets (read whole at
// their instant), gets, presence reads, sets (some with a deadline, which
// expires at once when it passes), deletes — with some outcomes hidden as
// unknown (applied or not; some settled, as a simulator settles them, some
// retried with the same values).
func randomBulkHistory(seed uint64, nOps, clients, keys int) *History {
	return randomHistoryTorn(seed, nOps, clients, keys, false)
}

// randomHistoryTorn is randomBulkHistory, with every bulk op of two keys or
// more torn if torn is set: its first key written at one instant, the
// others when it returns.
func randomHistoryTorn(seed uint64, nOps, clients, keys int, torn bool) *History {
	r := rand.New(rand.NewPCG(seed, 1))
	type pending struct {
		op     Op
		effect int64
		apply  bool
		// items, if not nil, are the part of a bulk op this applies;
		// only the part with record set is recorded.
		items  []core.KV
		record bool
	}
	type value struct {
		v        string
		deadline int64 // 0: none
	}
	state := map[string]value{}
	h := &History{ExpirySlop: 1}
	var inflight []pending
	now := int64(0)
	next := make([]int64, clients)
	retry := make([]*Op, clients)
	req := 0
	key := func() string { return fmt.Sprint("k", r.IntN(keys)) }
	keysOf := func() []core.KV {
		var kvs []core.KV
		for range 1 + r.IntN(3) {
			kvs = append(kvs, core.KV{Key: key()})
		}
		return kvs
	}
	lookup := func(k string, at int64) (value, bool) {
		v, ok := state[k]
		if ok && v.deadline != 0 && at >= v.deadline {
			delete(state, k)
			return value{}, false
		}
		return v, ok
	}
	for len(h.Ops) < nOps {
		now += int64(r.IntN(3) + 1)
		for c := 0; c < clients; c++ {
			if next[c] > now {
				continue
			}
			var op Op
			if retry[c] != nil && r.IntN(2) == 0 {
				op = *retry[c] // the same request, sent again
				op.Call, op.Outcome, op.Settled, op.EffectBy = now, OK, SettledNot, 0
			} else {
				req++
				op = Op{Client: c, Req: req, Call: now, Key: key(), Outcome: OK}
				switch r.IntN(12) {
				case 0, 1:
					op.Kind = KindGet
				case 2:
					op.Kind, op.Presence = KindGet, true
				case 3, 4:
					op.Kind, op.Value = KindSet, fmt.Sprint(c, ".", req)
					if r.IntN(4) == 0 {
						op.TTL = int64(5 + r.IntN(40))
					}
				case 5:
					op.Kind = KindDelete
				case 6, 7:
					op.Kind, op.Key, op.Items = KindBulkSet, "", keysOf()
					for j := range op.Items {
						op.Items[j].Value = fmt.Sprint(c, ".", req, "/", j)
					}
				case 8, 9:
					op.Kind, op.Key, op.Items = KindBulkDelete, "", keysOf()
				default:
					op.Kind, op.Key, op.Items = KindBulkGet, "", keysOf()
				}
			}
			retry[c] = nil
			dur := int64(r.IntN(20) + 1)
			op.Return = now + dur
			p := pending{op: op, effect: now + r.Int64N(dur+1), apply: true, record: true}
			if op.IsWrite() && r.IntN(10) == 0 {
				p.op.Outcome = Unknown
				p.apply = r.IntN(2) == 0
				switch r.IntN(3) {
				case 0:
					if p.apply {
						p.op.Settled, p.op.EffectBy = SettledApplied, p.effect+r.Int64N(5)
					}
				case 1:
					p.op.Settled, p.op.EffectBy = SettledMaybe, p.effect+r.Int64N(5)
				}
				if p.op.Kind == KindBulkSet || p.op.Kind == KindBulkDelete {
					retry[c] = &p.op
				}
			}
			if ks := p.op.keys(); torn && len(ks) > 1 && (p.op.Kind == KindBulkSet || p.op.Kind == KindBulkDelete) {
				first := p
				first.record = false
				for _, it := range p.op.Items {
					if it.Key == ks[0] {
						first.items = append(first.items, it)
					} else {
						p.items = append(p.items, it)
					}
				}
				p.effect = p.op.Return
				inflight = append(inflight, first)
			}
			inflight = append(inflight, p)
			next[c] = op.Return + 1
		}
		for {
			p, ok := takeDue(&inflight, now, func(p pending) int64 { return p.effect })
			if !ok {
				break
			}
			at := p.effect
			items := p.op.Items
			if p.items != nil {
				items = p.items
			}
			if p.apply {
				switch p.op.Kind {
				case KindGet:
					v, ok := lookup(p.op.Key, at)
					p.op.Found = ok
					if ok && !p.op.Presence {
						p.op.Value = v.v
					}
				case KindSet:
					v := value{v: p.op.Value}
					if p.op.TTL != 0 {
						v.deadline = p.op.Call + p.op.TTL
					}
					state[p.op.Key] = v
				case KindDelete:
					delete(state, p.op.Key)
				case KindBulkSet:
					for _, it := range items {
						state[it.Key] = value{v: it.Value}
					}
				case KindBulkDelete:
					for _, it := range items {
						delete(state, it.Key)
					}
				case KindBulkGet:
					p.op.Reads = nil
					for _, it := range p.op.Items {
						var s *string
						if v, ok := lookup(it.Key, at); ok {
							s = &v.v
						}
						p.op.Reads = append(p.op.Reads, s)
					}
				}
			}
			if p.record {
				h.Add(p.op)
			}
		}
	}
	return h
}

// Histories that keep every promise pass the atomicity check, and every
// other: its stricter rules (bulk_deletes, settled windows, one instant for
// a bulk_get, presence reads) must not call a good history bad.
func TestRandomAtomicHistoriesPass(t *testing.T) {
	groups, bulkDeletes, absentReads := 0, 0, 0
	for seed := uint64(0); seed < 40; seed++ {
		h := randomBulkHistory(seed, 1500, 5, 4)
		for _, op := range h.Ops {
			switch {
			case op.Kind == KindBulkDelete:
				bulkDeletes++
			case op.Kind == KindGet && op.Group != 0:
				groups++
			}
			if op.Kind == KindGet && !op.Found && op.Outcome == OK {
				absentReads++
			}
		}
		if fs := CheckAtomicity(h); len(fs) > 0 {
			t.Fatalf("seed %d: %v", seed, fs)
		}
		if seed < 10 {
			if r := CheckLinearizable(h, LinOptions{Timeout: 20e9}); r.Result != porcupine.Ok {
				t.Fatalf("seed %d: the generator made a history that is not linearizable: %s on %v", seed, r.Result, r.BadKeys)
			}
		}
	}
	t.Logf("%d bulk_deletes, %d reads of bulk_gets, %d absent reads", bulkDeletes, groups, absentReads)
}

// The same generator with one promise broken — bulk ops applied in two
// halves, the first key at one instant and the rest when the op returns —
// is caught: the stricter rules see what they were written for.
func TestRandomTornBulkOpsCaught(t *testing.T) {
	caught := 0
	const seeds = 20
	for seed := uint64(0); seed < seeds; seed++ {
		if len(CheckAtomicity(randomHistoryTorn(seed, 1500, 5, 4, true))) > 0 {
			caught++
		}
	}
	t.Logf("caught %d of %d torn histories", caught, seeds)
	if caught < seeds/2 {
		t.Fatalf("caught %d of %d torn histories", caught, seeds)
	}
}
