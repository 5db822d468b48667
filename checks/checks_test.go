package checks

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dkv/core"

	"github.com/anishathalye/porcupine"
)

// ops are built with times in whole units to keep the tables readable.
func set(c int, k, v string, call, ret int64, o Outcome) Op {
	return Op{Client: c, Req: int(call), Kind: KindSet, Key: k, Value: v, Call: call, Return: ret, Outcome: o}
}
func del(c int, k string, call, ret int64, o Outcome) Op {
	return Op{Client: c, Req: int(call), Kind: KindDelete, Key: k, Call: call, Return: ret, Outcome: o}
}
func get(c int, k, v string, call, ret int64) Op {
	return Op{Client: c, Req: int(call), Kind: KindGet, Key: k, Value: v, Found: v != "", Call: call, Return: ret, Outcome: OK}
}
func final(op Op) Op { op.Final = true; return op }
func bulk(c int, call, ret int64, o Outcome, kvs ...string) Op {
	op := Op{Client: c, Req: int(call), Kind: KindBulkSet, Call: call, Return: ret, Outcome: o}
	for i := 0; i+1 < len(kvs); i += 2 {
		op.Items = append(op.Items, core.KV{Key: kvs[i], Value: kvs[i+1]})
	}
	return op
}

func TestLinearizable(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"read own write", []Op{set(0, "a", "1", 0, 10, OK), get(0, "a", "1", 20, 30)}, porcupine.Ok},
		{"stale read", []Op{set(0, "a", "1", 0, 10, OK), set(0, "a", "2", 20, 30, OK), get(1, "a", "1", 40, 50)}, porcupine.Illegal},
		{"concurrent read may see either", []Op{set(0, "a", "1", 0, 10, OK), set(0, "a", "2", 20, 30, OK), get(1, "a", "1", 25, 50)}, porcupine.Ok},
		{"read of a value never written", []Op{get(1, "a", "x", 0, 5)}, porcupine.Illegal},
		{"failed write never visible", []Op{set(0, "a", "1", 0, 10, Failed), get(1, "a", "1", 20, 30)}, porcupine.Illegal},
		{"unknown write visible late", []Op{set(0, "a", "1", 0, 10, Unknown), get(1, "a", "", 20, 30), get(1, "a", "1", 40, 50)}, porcupine.Ok},
		{"unknown write cannot be undone", []Op{set(0, "a", "1", 0, 10, Unknown), get(1, "a", "1", 20, 30), get(1, "a", "", 40, 50)}, porcupine.Illegal},
		{"delete", []Op{set(0, "a", "1", 0, 10, OK), del(0, "a", 20, 30, OK), get(1, "a", "", 40, 50)}, porcupine.Ok},
		{"lost delete", []Op{set(0, "a", "1", 0, 10, OK), del(0, "a", 20, 30, OK), get(1, "a", "1", 40, 50)}, porcupine.Illegal},
		{"bulk per key", []Op{bulk(0, 0, 10, OK, "a", "1", "b", "2"), get(1, "a", "1", 20, 30), get(1, "b", "2", 20, 30)}, porcupine.Ok},
		{"bulk repeated key: last wins", []Op{bulk(0, 0, 10, OK, "a", "1", "a", "2"), get(1, "a", "2", 20, 30)}, porcupine.Ok},
		{"bulk repeated key: first lost", []Op{bulk(0, 0, 10, OK, "a", "1", "a", "2"), get(1, "a", "1", 20, 30)}, porcupine.Illegal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &History{Ops: c.ops}
			r := CheckLinearizable(h, LinOptions{})
			if r.Result != c.want {
				t.Fatalf("got %s, want %s", r.Result, c.want)
			}
		})
	}
}

// cond makes op conditional.
func cond(op Op, c core.Condition) Op { op.Cond = c; return op }

var (
	ifAbsent = core.Condition{Kind: core.CondAbsent}
	ifExists = core.Condition{Kind: core.CondExists}
)

func ifValue(v string) core.Condition { return core.Condition{Kind: core.CondValue, Value: v} }

func TestLinearizableConditions(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"if_absent on an empty key", []Op{cond(set(0, "a", "1", 0, 10, OK), ifAbsent), get(1, "a", "1", 20, 30)}, porcupine.Ok},
		{"two if_absent one after the other", []Op{cond(set(0, "a", "1", 0, 10, OK), ifAbsent), cond(set(1, "a", "2", 20, 30, OK), ifAbsent)}, porcupine.Illegal},
		{"two concurrent if_absent", []Op{cond(set(0, "a", "1", 0, 10, OK), ifAbsent), cond(set(1, "a", "2", 5, 15, OK), ifAbsent)}, porcupine.Illegal},
		{"if_absent after a delete", []Op{cond(set(0, "a", "1", 0, 10, OK), ifAbsent), del(1, "a", 20, 30, OK), cond(set(1, "a", "2", 40, 50, OK), ifAbsent)}, porcupine.Ok},
		{"if_exists on an empty key", []Op{cond(set(0, "a", "1", 0, 10, OK), ifExists)}, porcupine.Illegal},
		{"compare and swap", []Op{set(0, "a", "1", 0, 10, OK), cond(set(1, "a", "2", 20, 30, OK), ifValue("1")), get(0, "a", "2", 40, 50)}, porcupine.Ok},
		{"swap from a value that was replaced", []Op{set(0, "a", "1", 0, 10, OK), set(0, "a", "3", 20, 30, OK), cond(set(1, "a", "2", 40, 50, OK), ifValue("1"))}, porcupine.Illegal},
		{"two swaps from one value", []Op{set(0, "a", "1", 0, 10, OK), cond(set(1, "a", "2", 20, 30, OK), ifValue("1")), cond(set(2, "a", "3", 20, 30, OK), ifValue("1"))}, porcupine.Illegal},
		{"compare and delete", []Op{set(0, "a", "1", 0, 10, OK), cond(del(1, "a", 20, 30, OK), ifValue("1")), get(0, "a", "", 40, 50)}, porcupine.Ok},
		{"delete of another value", []Op{set(0, "a", "1", 0, 10, OK), cond(del(1, "a", 20, 30, OK), ifValue("2"))}, porcupine.Illegal},
		// An unknown conditional write applied if its condition held
		// where it took effect, and changed nothing if not.
		{"unknown swap, condition unmet", []Op{set(0, "a", "1", 0, 10, OK), cond(set(1, "a", "2", 20, 30, Unknown), ifValue("9")), get(0, "a", "1", 40, 50)}, porcupine.Ok},
		{"unknown swap applied", []Op{set(0, "a", "1", 0, 10, OK), cond(set(1, "a", "2", 20, 30, Unknown), ifValue("1")), get(0, "a", "2", 40, 50)}, porcupine.Ok},
		{"unknown swap cannot apply unmet", []Op{set(0, "a", "1", 0, 10, OK), cond(set(1, "a", "2", 20, 30, Unknown), ifValue("9")), get(0, "a", "2", 40, 50)}, porcupine.Illegal},
		// An if_exists that applied saw a value that only an unknown
		// set, never read, can have put there: that set is not pruned.
		{"if_exists explained by an unknown set never read", []Op{set(0, "a", "1", 0, 10, Unknown), cond(set(1, "a", "2", 20, 30, OK), ifExists)}, porcupine.Ok},
		{"if_value explained by an unknown set never read", []Op{set(0, "a", "1", 0, 10, Unknown), cond(set(1, "a", "2", 20, 30, OK), ifValue("1"))}, porcupine.Ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &History{Ops: c.ops}
			r := CheckLinearizable(h, LinOptions{})
			if r.Result != c.want {
				t.Fatalf("got %s, want %s", r.Result, c.want)
			}
		})
	}
}

func ttl(op Op, d int64) Op { op.TTL = d; return op }

// presence makes a get a ttl's read of whether the key exists.
func presence(op Op, found bool) Op { op.Presence, op.Found, op.Value = true, found, ""; return op }

// A set with a TTL may be deleted by the node any time from its deadline
// (its call plus the TTL) on, and no earlier; a later write without one
// keeps its value for good; an expired value never comes back.
func TestLinearizableExpiry(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"gone after its deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), get(1, "a", "1", 50, 60), get(1, "a", "", 120, 130)}, porcupine.Ok},
		{"still there after its deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), get(1, "a", "1", 500, 510)}, porcupine.Ok},
		{"gone before its deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), get(1, "a", "", 50, 60)}, porcupine.Illegal},
		{"back after it was gone", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), get(1, "a", "", 120, 130), get(1, "a", "1", 140, 150)}, porcupine.Illegal},
		{"a set without a TTL keeps it", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), set(0, "a", "2", 20, 30, OK), get(1, "a", "", 200, 210)}, porcupine.Illegal},
		{"a set with a later TTL moves it", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), ttl(set(0, "a", "2", 20, 30, OK), 500), get(1, "a", "", 200, 210)}, porcupine.Illegal},
		{"gone after the later deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), ttl(set(0, "a", "2", 20, 30, OK), 500), get(1, "a", "2", 200, 210), get(1, "a", "", 600, 610)}, porcupine.Ok},
		{"if_absent after expiry", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), cond(set(1, "a", "2", 200, 210, OK), ifAbsent), get(0, "a", "2", 300, 310)}, porcupine.Ok},
		{"if_absent before the deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), cond(set(1, "a", "2", 20, 30, OK), ifAbsent)}, porcupine.Illegal},
		// An unknown set with a TTL, whose value no read saw, may explain
		// an absence: it is not pruned.
		{"unknown set with a TTL explains an absence", []Op{set(0, "a", "1", 0, 10, OK), ttl(set(1, "a", "2", 20, 30, Unknown), 50), get(0, "a", "", 200, 210)}, porcupine.Ok},
		// A wide get that finds the key gone, which the order of the
		// writes puts before the deadline (found by review): it had to
		// come before the set of "2", which returned at 40.
		{"gone early, hidden by a wide get", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), get(1, "a", "", 20, 200), set(0, "a", "2", 30, 40, OK), get(2, "a", "2", 50, 60)}, porcupine.Illegal},
		// A ttl reads only whether the key exists.
		{"ttl finds the key", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), presence(get(1, "a", "", 20, 30), true)}, porcupine.Ok},
		{"ttl finds it gone before its deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), presence(get(1, "a", "", 20, 30), false)}, porcupine.Illegal},
		{"ttl finds a key never written", []Op{presence(get(1, "a", "", 20, 30), true)}, porcupine.Illegal},
		{"ttl finds what only an unknown set wrote", []Op{set(0, "a", "1", 0, 10, Unknown), presence(get(1, "a", "", 20, 30), true)}, porcupine.Ok},
		{"gone late, in a wide get", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), get(1, "a", "", 20, 200), set(0, "a", "2", 150, 160, OK), get(2, "a", "2", 170, 180)}, porcupine.Ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := CheckLinearizable(&History{Ops: c.ops}, LinOptions{})
			if r.Result != c.want {
				t.Fatalf("got %s, want %s", r.Result, c.want)
			}
		})
	}
	// The final reads: an acknowledged set with a TTL whose deadline
	// passed is not lost when its key is absent; before it, it is.
	if f := CheckDurability(&History{Ops: []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), final(get(1, "a", "", 200, 210))}}); len(f) != 0 {
		t.Fatalf("an expired key counted as lost: %v", f)
	}
	if f := CheckDurability(&History{Ops: []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), final(get(1, "a", "", 50, 60))}}); len(f) == 0 {
		t.Fatal("a key gone before its deadline was not counted as lost")
	}
}

// ttlRead is a ttl that found k, with a deadline or none.
func ttlRead(c int, k string, deadline bool, call, ret int64) Op {
	op := presence(get(c, k, "", call, ret), true)
	op.Deadline = DeadlineNone
	if deadline {
		op.Deadline = DeadlineSome
	}
	return op
}

// A ttl that found its key says whether it has a deadline, which the
// model knows exactly, though not when it passes.
func TestLinearizableTTLDeadline(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"a set's deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), ttlRead(1, "a", true, 20, 30)}, porcupine.Ok},
		{"a set's deadline missing", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), ttlRead(1, "a", false, 20, 30)}, porcupine.Illegal},
		{"a deadline from nowhere", []Op{set(0, "a", "1", 0, 10, OK), ttlRead(1, "a", true, 20, 30)}, porcupine.Illegal},
		{"taken away by a persist", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), expire(0, "a", 0, 20, 30, OK), ttlRead(1, "a", false, 40, 50)}, porcupine.Ok},
		{"a persist that kept it", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), expire(0, "a", 0, 20, 30, OK), ttlRead(1, "a", true, 40, 50)}, porcupine.Illegal},
		{"kept by an incr", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), incr(0, "a", 1, "2", 20, 30, OK), ttlRead(1, "a", true, 40, 50)}, porcupine.Ok},
		{"dropped by an incr", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), incr(0, "a", 1, "2", 20, 30, OK), ttlRead(1, "a", false, 40, 50)}, porcupine.Illegal},
		{"taken away by a set", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), set(0, "a", "2", 20, 30, OK), ttlRead(1, "a", false, 40, 50)}, porcupine.Ok},
		{"an unknown persist either way", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), expire(0, "a", 0, 20, 30, Unknown), ttlRead(1, "a", true, 40, 50), ttlRead(1, "a", false, 60, 70)}, porcupine.Ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := CheckLinearizable(&History{Ops: c.ops}, LinOptions{})
			if r.Result != c.want {
				t.Fatalf("got %s, want %s", r.Result, c.want)
			}
		})
	}
}

func expire(c int, k string, d, call, ret int64, o Outcome) Op {
	return Op{Client: c, Kind: KindExpire, Key: k, TTL: d, Call: call, Return: ret, Outcome: o}
}

// An expire gives a key that exists a deadline, from its own instant on,
// its value kept; a persist takes the deadline away; an OK one found the
// key there.
func TestLinearizableExpire(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"gone after the expire's deadline", []Op{set(0, "a", "1", 0, 10, OK), expire(0, "a", 100, 20, 30, OK), get(1, "a", "1", 50, 60), get(1, "a", "", 130, 140)}, porcupine.Ok},
		{"gone before the expire's deadline", []Op{set(0, "a", "1", 0, 10, OK), expire(0, "a", 100, 20, 30, OK), get(1, "a", "", 50, 60)}, porcupine.Illegal},
		{"the value is kept", []Op{set(0, "a", "1", 0, 10, OK), expire(0, "a", 100, 20, 30, OK), get(1, "a", "2", 50, 60)}, porcupine.Illegal},
		{"an expire that found a key never written", []Op{expire(0, "a", 100, 20, 30, OK)}, porcupine.Illegal},
		{"an expire that found an expired key", []Op{ttl(set(0, "a", "1", 0, 10, OK), 50), get(1, "a", "", 100, 110), expire(0, "a", 100, 120, 130, OK)}, porcupine.Illegal},
		{"a shorter deadline", []Op{ttl(set(0, "a", "1", 0, 10, OK), 1000), expire(0, "a", 100, 20, 30, OK), get(1, "a", "", 200, 210)}, porcupine.Ok},
		{"a persist keeps the key", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), expire(0, "a", 0, 20, 30, OK), get(1, "a", "", 200, 210)}, porcupine.Illegal},
		{"a persist keeps the key, found later", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), expire(0, "a", 0, 20, 30, OK), get(1, "a", "1", 200, 210)}, porcupine.Ok},
		{"an unknown persist may have found it gone", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), expire(0, "a", 0, 20, 30, Unknown), get(1, "a", "", 200, 210)}, porcupine.Ok},
		{"an unknown expire explains an absence", []Op{set(0, "a", "1", 0, 10, OK), expire(0, "a", 100, 20, 30, Unknown), get(1, "a", "", 200, 210)}, porcupine.Ok},
		{"an expire found what only an unknown set wrote", []Op{set(0, "a", "1", 0, 10, Unknown), expire(1, "a", 100, 20, 30, OK)}, porcupine.Ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := CheckLinearizable(&History{Ops: c.ops}, LinOptions{})
			if r.Result != c.want {
				t.Fatalf("got %s, want %s", r.Result, c.want)
			}
		})
	}
	// The final reads: an acknowledged set whose key an expire gave a
	// deadline that passed is not lost when its key is absent; before
	// that deadline, it is.
	h := &History{Ops: []Op{set(0, "a", "1", 0, 10, OK), expire(0, "a", 100, 20, 30, OK), final(get(1, "a", "", 200, 210))}}
	if f := CheckDurability(h); len(f) != 0 {
		t.Fatalf("a key gone at its expire's deadline counted as lost: %v", f)
	}
	h = &History{Ops: []Op{set(0, "a", "1", 0, 10, OK), expire(0, "a", 100, 20, 30, OK), final(get(1, "a", "", 50, 60))}}
	if f := CheckDurability(h); len(f) == 0 {
		t.Fatal("a key gone before its expire's deadline was not counted as lost")
	}
	// Nor is a bulk_set's key, gone for an expire, a torn bulk_set.
	h = &History{Ops: []Op{bulk(0, 0, 10, OK, "a", "1", "b", "1"), expire(0, "a", 100, 20, 30, OK), get(1, "a", "", 200, 210), get(1, "b", "1", 200, 210)}}
	if f := CheckAtomicity(h); len(f) != 0 {
		t.Fatalf("an expired key of a bulk_set counted as torn: %v", f)
	}
}

func incr(c int, k string, delta int64, answer string, call, ret int64, o Outcome) Op {
	op := Op{Client: c, Req: int(call), Kind: KindIncr, Key: k, Delta: delta, Call: call, Return: ret, Outcome: o}
	if strings.HasPrefix(answer, "!") {
		op.Refusal = answer[1:]
	} else {
		op.Value = answer
	}
	return op
}

// An incr adds to the counter its instant finds (a missing key: 0), keeps
// the key's deadline, and is refused for a value that is not a counter or
// a sum past int64; an unknown one added or did not.
func TestLinearizableIncr(t *testing.T) {
	const max = "9223372036854775807"
	cases := []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"counts from a missing key", []Op{incr(0, "a", 1, "1", 0, 10, OK), incr(0, "a", 5, "6", 20, 30, OK), get(1, "a", "6", 40, 50)}, porcupine.Ok},
		{"a wrong sum", []Op{incr(0, "a", 1, "1", 0, 10, OK), incr(0, "a", 5, "7", 20, 30, OK)}, porcupine.Illegal},
		{"an increment counted twice", []Op{incr(0, "a", 1, "1", 0, 10, OK), incr(0, "a", 1, "2", 20, 30, OK), get(1, "a", "3", 40, 50)}, porcupine.Illegal},
		{"concurrent incrs in either order", []Op{incr(0, "a", 1, "3", 0, 10, OK), incr(1, "a", 2, "2", 0, 10, OK)}, porcupine.Ok},
		{"concurrent incrs, one answer impossible", []Op{incr(0, "a", 1, "1", 0, 10, OK), incr(1, "a", 2, "2", 0, 10, OK)}, porcupine.Illegal},
		{"adds to a set counter", []Op{set(0, "a", "40", 0, 10, OK), incr(0, "a", 2, "42", 20, 30, OK)}, porcupine.Ok},
		{"refused for a value that is no counter", []Op{set(0, "a", "x", 0, 10, OK), incr(0, "a", 2, "!"+core.CodeNotInteger, 20, 30, OK), get(1, "a", "x", 40, 50)}, porcupine.Ok},
		{"refused for a counter", []Op{set(0, "a", "4", 0, 10, OK), incr(0, "a", 2, "!"+core.CodeNotInteger, 20, 30, OK)}, porcupine.Illegal},
		{"refused, yet written", []Op{set(0, "a", "x", 0, 10, OK), incr(0, "a", 2, "!"+core.CodeNotInteger, 20, 30, OK), get(1, "a", "2", 40, 50)}, porcupine.Illegal},
		{"a leading zero is no counter", []Op{set(0, "a", "07", 0, 10, OK), incr(0, "a", 1, "8", 20, 30, OK)}, porcupine.Illegal},
		{"overflow", []Op{set(0, "a", max, 0, 10, OK), incr(0, "a", 1, "!"+core.CodeOverflow, 20, 30, OK), incr(0, "a", -1, "9223372036854775806", 40, 50, OK)}, porcupine.Ok},
		{"a wrapped sum", []Op{set(0, "a", max, 0, 10, OK), incr(0, "a", 1, "-9223372036854775808", 20, 30, OK)}, porcupine.Illegal},
		{"an unknown incr that applied", []Op{incr(0, "a", 5, "", 0, 10, Unknown), incr(1, "a", 1, "6", 20, 30, OK)}, porcupine.Ok},
		{"an unknown incr that did not", []Op{incr(0, "a", 5, "", 0, 10, Unknown), incr(1, "a", 1, "1", 20, 30, OK), get(1, "a", "1", 40, 50)}, porcupine.Ok},
		{"an unknown incr applied half", []Op{incr(0, "a", 5, "", 0, 10, Unknown), get(1, "a", "3", 40, 50)}, porcupine.Illegal},
		{"the deadline is kept", []Op{ttl(set(0, "a", "1", 0, 10, OK), 100), incr(0, "a", 1, "2", 20, 30, OK), get(1, "a", "", 200, 210)}, porcupine.Ok},
		{"an incr found what only an unknown set wrote", []Op{set(0, "a", "7", 0, 10, Unknown), incr(1, "a", 1, "8", 20, 30, OK)}, porcupine.Ok},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := CheckLinearizable(&History{Ops: c.ops}, LinOptions{})
			if r.Result != c.want {
				t.Fatalf("got %s, want %s", r.Result, c.want)
			}
		})
	}
	// The final reads: an acknowledged incr is a write of its answer; one
	// whose answer was lost may be what any counter read came from.
	for _, c := range []struct {
		name string
		ops  []Op
		lost bool
	}{
		{"kept", []Op{incr(0, "a", 1, "1", 0, 10, OK), final(get(9, "a", "1", 100, 110))}, false},
		{"lost", []Op{incr(0, "a", 1, "1", 0, 10, OK), final(get(9, "a", "", 100, 110))}, true},
		{"rolled back", []Op{set(0, "a", "3", 0, 10, OK), incr(0, "a", 1, "4", 20, 30, OK), final(get(9, "a", "3", 100, 110))}, true},
		{"overwritten by an unknown incr", []Op{incr(0, "a", 1, "1", 0, 10, OK), incr(0, "a", 1, "", 20, 30, Unknown), final(get(9, "a", "2", 100, 110))}, false},
		{"a refusal writes nothing", []Op{set(0, "a", "x", 0, 10, OK), incr(0, "a", 1, "!"+core.CodeNotInteger, 20, 30, OK), final(get(9, "a", "x", 100, 110))}, false},
		// An incr keeps its key's deadline: gone at it, its sum is not
		// lost (simulator seeds 867, 1599, 1774); gone before it, it is.
		{"gone at a set's deadline it kept", []Op{ttl(set(0, "a", "1", 0, 10, OK), 50), incr(0, "a", 3, "4", 20, 30, OK), final(get(9, "a", "", 100, 110))}, false},
		{"gone at an expire's deadline it kept", []Op{set(0, "a", "1", 0, 10, OK), expire(0, "a", 50, 12, 14, OK), incr(0, "a", 3, "4", 20, 30, OK), final(get(9, "a", "", 100, 110))}, false},
		{"gone before the deadline it kept", []Op{ttl(set(0, "a", "1", 0, 10, OK), 500), incr(0, "a", 3, "4", 20, 30, OK), final(get(9, "a", "", 100, 110))}, true},
	} {
		if f := CheckDurability(&History{Ops: c.ops}); (len(f) > 0) != c.lost {
			t.Errorf("durability, %s: %v, want lost=%v", c.name, f, c.lost)
		}
	}
	// A counter a bulk_set's key holds after an incr whose answer was
	// lost may be that incr's, not the earlier incr's of the same value:
	// not a torn bulk_set.
	h := &History{Ops: []Op{
		incr(2, "b", 1, "1", 0, 5, OK),
		bulk(0, 10, 20, OK, "a", "x", "b", "y"),
		del(2, "b", 30, 40, OK),
		incr(2, "b", 1, "", 50, 60, Unknown),
		get(1, "b", "1", 70, 80),
	}}
	if f := CheckAtomicity(h); len(f) != 0 {
		t.Fatalf("a counter an unknown incr may have written counted as a torn bulk_set: %v", f)
	}
}

func TestPruningKeepsObservedUnknownWrites(t *testing.T) {
	h := &History{Ops: []Op{
		set(0, "a", "1", 0, 10, Unknown),  // observed: kept
		set(0, "a", "2", 20, 30, Unknown), // never observed: pruned
		get(1, "a", "", 5, 6),
		get(1, "a", "1", 40, 50),
		{Client: 2, Kind: KindGet, Key: "a", Call: 1, Return: 2, Outcome: Unknown}, // pruned
		set(3, "a", "3", 0, 10, Failed),                                            // pruned
	}}
	parts := Partitions(h)
	if len(parts) != 1 || len(parts[0].Ops) != 3 || parts[0].Pruned != 3 {
		t.Fatalf("got %d partitions, first with %d ops and %d pruned; want 1, 3, 3", len(parts), len(parts[0].Ops), parts[0].Pruned)
	}
}

func TestReportWrittenForViolation(t *testing.T) {
	dir := t.TempDir()
	h := &History{Ops: []Op{set(0, "a", "1", 0, 10, OK), set(0, "a", "2", 20, 30, OK), get(1, "a", "1", 40, 50), get(1, "b", "", 0, 1)}}
	r := CheckLinearizable(h, LinOptions{ReportDir: dir, ReportName: "x.html"})
	f := r.Finding()
	if f == nil || r.Report != filepath.Join(dir, "x.html") || !strings.Contains(f.Msg, "key(s) a") {
		t.Fatalf("got finding %v, report %q", f, r.Report)
	}
	data, err := os.ReadFile(r.Report)
	if err != nil || !strings.Contains(string(data), "<html") {
		t.Fatalf("report not an HTML file: %v", err)
	}
}

// The explanation of a violation replays the partition with the model the
// verdict used: a partition whose deadlines all came from a TTL was
// replayed without expiries, and the explanation blamed a get that had
// rightly found the key gone (found by review).
func TestExplanationKnowsExpiries(t *testing.T) {
	h := &History{Ops: []Op{
		set(0, "a", "1", 0, 10, OK), expire(0, "a", 100, 20, 30, OK),
		get(1, "a", "", 200, 210),  // right: the key expired
		get(1, "a", "2", 400, 410), // wrong: no one wrote "2"
	}}
	r := CheckLinearizable(h, LinOptions{})
	f := r.Finding()
	if f == nil {
		t.Fatal("a read of a value no one wrote passed")
	}
	if !strings.Contains(f.Msg, `no order fits op 3: c1#400 get a -> "2"`) {
		t.Fatalf("the explanation does not blame the get of \"2\": %s", f.Msg)
	}
}

func TestDurability(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		want string // substring of the first finding; "" for none
	}{
		{"kept", []Op{set(0, "a", "1", 0, 10, OK), final(get(9, "a", "1", 100, 110))}, ""},
		{"overwritten by a later unknown write", []Op{set(0, "a", "1", 0, 10, OK), set(0, "a", "2", 20, 30, Unknown), final(get(9, "a", "2", 100, 110))}, ""},
		{"overwritten by a concurrent write", []Op{set(0, "a", "1", 0, 10, OK), set(1, "a", "2", 5, 8, OK), final(get(9, "a", "2", 100, 110))}, ""},
		{"lost to absence", []Op{set(0, "a", "1", 0, 10, OK), final(get(9, "a", "", 100, 110))}, "absent"},
		{"rolled back to an older value", []Op{set(0, "a", "1", 0, 10, OK), set(0, "a", "2", 20, 30, OK), final(get(9, "a", "1", 100, 110))}, "finished before"},
		{"deleted, then lost the delete", []Op{set(0, "a", "1", 0, 10, OK), del(0, "a", 20, 30, OK), final(get(9, "a", "1", 100, 110))}, "finished before"},
		{"value from nowhere", []Op{final(get(9, "a", "zz", 100, 110))}, "no client wrote"},
		{"bulk item lost", []Op{bulk(0, 0, 10, OK, "a", "1", "b", "2"), final(get(9, "a", "1", 100, 110)), final(get(9, "b", "", 100, 110))}, "absent"},
		{"failed write not a source", []Op{set(0, "a", "1", 0, 10, OK), set(0, "a", "2", 20, 30, Failed), final(get(9, "a", "2", 100, 110))}, "no client wrote"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := CheckDurability(&History{Ops: c.ops})
			if c.want == "" {
				if len(fs) != 0 {
					t.Fatalf("unexpected finding: %v", fs[0])
				}
				return
			}
			if len(fs) == 0 || !strings.Contains(fs[0].Msg, c.want) {
				t.Fatalf("got %v, want a finding mentioning %q", fs, c.want)
			}
		})
	}
}

func TestAtomicity(t *testing.T) {
	cases := []struct {
		name string
		ops  []Op
		bad  bool
	}{
		{"whole", []Op{bulk(0, 0, 10, OK, "a", "1", "b", "2"), get(1, "a", "1", 20, 30), get(1, "b", "2", 40, 50)}, false},
		{"partial after ack", []Op{bulk(0, 0, 10, OK, "a", "1", "b", "2"), get(1, "b", "", 40, 50)}, true},
		{"partial unknown seen through another key", []Op{
			set(2, "b", "0", 0, 5, OK),
			bulk(0, 10, 20, Unknown, "a", "1", "b", "2"),
			get(1, "a", "1", 30, 40),
			get(1, "b", "0", 50, 60),
		}, true},
		{"concurrent overwrite explains it", []Op{
			bulk(0, 10, 20, Unknown, "a", "1", "b", "2"),
			set(2, "b", "0", 15, 100, OK),
			get(1, "a", "1", 30, 40),
			get(1, "b", "0", 150, 160),
		}, false},
		{"read before visibility is fine", []Op{
			bulk(0, 10, 20, Unknown, "a", "1", "b", "2"),
			get(1, "b", "", 11, 12),
			get(1, "a", "1", 30, 40),
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := CheckAtomicity(&History{Ops: c.ops})
			if (len(fs) > 0) != c.bad {
				t.Fatalf("got findings %v, want bad=%v", fs, c.bad)
			}
		})
	}
}

// randomHistory makes a linearizable history: clients call ops that take
// effect at a random instant inside their interval, against a real map, with
// some outcomes hidden as unknown (then applied or not) — the shape the
// simulator produces.
func randomHistory(seed uint64, nOps, clients, keys int) *History {
	r := rand.New(rand.NewPCG(seed, 0))
	type pending struct {
		op     Op
		effect int64
		apply  bool
	}
	state := map[string]string{}
	h := &History{}
	var inflight []pending
	now := int64(0)
	next := make([]int64, clients)
	req := 0
	for len(h.Ops) < nOps {
		now += int64(r.IntN(3) + 1)
		// Take effect in effect-time order, then record.
		for c := 0; c < clients; c++ {
			if next[c] > now {
				continue
			}
			req++
			key := fmt.Sprint("k", r.IntN(keys))
			op := Op{Client: c, Req: req, Call: now, Key: key, Outcome: OK}
			switch r.IntN(10) {
			case 0, 1, 2, 3:
				op.Kind = KindGet
			case 4, 5, 6:
				op.Kind, op.Value = KindSet, fmt.Sprint(c, ".", req)
			case 7:
				op.Kind = KindDelete
			default:
				op.Kind, op.Key = KindBulkSet, ""
				for j := 0; j < 3; j++ {
					op.Items = append(op.Items, core.KV{Key: fmt.Sprint("k", r.IntN(keys)), Value: fmt.Sprint(c, ".", req, "/", j)})
				}
			}
			dur := int64(r.IntN(20) + 1)
			op.Return = now + dur
			p := pending{op: op, effect: now + int64(r.Int64N(dur+1)), apply: true}
			if r.IntN(20) == 0 {
				p.op.Outcome = Unknown
				p.apply = r.IntN(2) == 0
			}
			inflight = append(inflight, p)
			next[c] = op.Return + 1
		}
		// Apply everything whose effect time has come, oldest first.
		for {
			p, ok := takeDue(&inflight, now, func(p pending) int64 { return p.effect })
			if !ok {
				break
			}
			if p.apply {
				switch p.op.Kind {
				case KindGet:
					p.op.Value, p.op.Found = state[p.op.Key]
				case KindSet:
					state[p.op.Key] = p.op.Value
				case KindDelete:
					delete(state, p.op.Key)
				case KindBulkSet:
					for _, it := range p.op.Items {
						state[it.Key] = it.Value
					}
				}
			}
			h.Ops = append(h.Ops, p.op)
		}
	}
	return h
}

func TestRandomLinearizableHistories(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		h := randomHistory(seed, 2000, 5, 4)
		if r := CheckLinearizable(h, LinOptions{}); r.Result != porcupine.Ok {
			t.Fatalf("seed %d: %s on %v", seed, r.Result, r.BadKeys)
		}
		if fs := CheckAtomicity(h); len(fs) > 0 {
			t.Fatalf("seed %d: %v", seed, fs[0])
		}
	}
}

// The figure: a 10,000-op history checks in at most 2 s. This is a
// benchmark rather than a timed test, so a loaded machine cannot flake CI;
// sim's BenchmarkCheckSimHistory measures the same on a simulator history.
func BenchmarkCheckLinearizable10k(b *testing.B) {
	h := randomHistory(1, 10_000, 8, 8)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := CheckLinearizable(h, LinOptions{})
		if r.Result != porcupine.Ok {
			b.Fatal(r.Result)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/check")
}

func TestTenThousandOpsFigure(t *testing.T) {
	if testing.Short() {
		t.Skip("figure measurement")
	}
	h := randomHistory(7, 10_000, 8, 8)
	start := time.Now()
	r := CheckLinearizable(h, LinOptions{})
	t.Logf("10,000-op history (%d ops after pruning, %d partitions): %s in %v", r.Checked, r.Partitions, r.Result, time.Since(start))
	if r.Result != porcupine.Ok {
		t.Fatal(r.Result)
	}
}

// A bulk_get is one get per key it names; a key named again is added again
// only when its read differs, so that a read no write explains still fails
// the check.
func TestBulkGetRepeatedKeys(t *testing.T) {
	v1, v2 := "1", "2"
	bulkGet := func(reads ...*string) Op {
		op := Op{Client: 1, Req: 5, Kind: KindBulkGet, Call: 5, Return: 6, Outcome: OK, Reads: reads}
		for range reads {
			op.Items = append(op.Items, core.KV{Key: "k"})
		}
		return op
	}
	var h History
	h.Add(set(0, "k", v1, 1, 2, OK))
	h.Add(bulkGet(&v1, &v1, &v1))
	if len(h.Ops) != 2 || h.Ops[1].Kind != KindGet || h.Ops[1].Value != v1 {
		t.Fatalf("the same read three times was added as %d ops: %+v", len(h.Ops)-1, h.Ops[1:])
	}
	if r := CheckLinearizable(&h, LinOptions{}); r.Result != porcupine.Ok {
		t.Fatalf("one set, then one read of it: %v", r.Result)
	}

	var bad History
	bad.Add(set(0, "k", v1, 1, 2, OK))
	bad.Add(bulkGet(&v1, &v2, nil, &v1))
	if len(bad.Ops) != 4 {
		t.Fatalf("reads 1, 2, none, 1 were added as %d ops, want 3 (the second 1 repeats the first)", len(bad.Ops)-1)
	}
	if r := CheckLinearizable(&bad, LinOptions{}); r.Result != porcupine.Illegal {
		t.Fatalf("a read of a value never written: %v, want illegal", r.Result)
	}
}

// takeDue takes out of inflight the one whose effect time (effect) is the
// earliest at or before now, if any: the random histories apply their ops
// in effect-time order.
func takeDue[P any](inflight *[]P, now int64, effect func(P) int64) (P, bool) {
	best := -1
	for i, p := range *inflight {
		if e := effect(p); e <= now && (best < 0 || e < effect((*inflight)[best])) {
			best = i
		}
	}
	if best < 0 {
		var zero P
		return zero, false
	}
	p := (*inflight)[best]
	*inflight = append((*inflight)[:best], (*inflight)[best+1:]...)
	return p, true
}
