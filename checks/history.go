package checks

import (
	"fmt"
	"math"
	"strings"

	"dkv/core"
)

// Kind is the operation a client called.
type Kind uint8

// The operations that change or observe the store's state. Ping and status
// are not recorded: they observe no key.
const (
	KindGet Kind = iota + 1
	KindSet
	KindDelete
	KindBulkSet
	// KindBulkDelete deletes every key of Items (their values unused).
	KindBulkDelete
	// KindBulkGet reads every key of Items at one instant; Reads holds what
	// it found. History.Add records it as one get per key (see Add).
	KindBulkGet
	// KindExpire gives Key, if it exists, the deadline TTL after it
	// applies (an expire), or none (TTL 0: a persist), its value kept. An
	// OK one found the key; one answered not_found is recorded as the
	// read it amounts to, a get of whether the key exists (Presence).
	KindExpire
	// KindIncr adds Delta to Key's counter (a missing key counting as 0),
	// its deadline kept. An OK one answered the new value (Value), or a
	// refusal (Refusal: not_integer, overflow) that wrote nothing.
	KindIncr
)

func (k Kind) String() string {
	switch k {
	case KindGet:
		return "get"
	case KindSet:
		return "set"
	case KindDelete:
		return "delete"
	case KindBulkSet:
		return "bulk_set"
	case KindBulkDelete:
		return "bulk_delete"
	case KindBulkGet:
		return "bulk_get"
	case KindExpire:
		return "expire"
	case KindIncr:
		return "incr"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Outcome is what the client learnt about its call.
type Outcome uint8

const (
	// OK: the server acknowledged the call.
	OK Outcome = iota + 1
	// Failed: the call certainly had no effect (the server said so, or it
	// never reached a server).
	Failed
	// Unknown: the client gave up waiting; the call may or may not have
	// taken effect, at any time after it was made.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// Op is one call by a client and what came of it. Times are in one time base
// for the whole history (the simulator's virtual nanoseconds).
type Op struct {
	Client int
	// Req groups the attempts of one logical request: a client that retries
	// sends the same request (same values) again, and every attempt is an Op
	// of its own, because each may have taken effect.
	Req   int
	Kind  Kind
	Key   string    // get, set, delete
	Value string    // set: the value written; get: the value read, if Found
	Found bool      // get: the key existed
	Items []core.KV // bulk_set, in request order (a repeated key: last wins); bulk_delete's and bulk_get's keys
	// Cond is a set's or a delete's condition. An OK conditional write
	// applied, so its condition held at its instant; one whose outcome is
	// unknown applied if it held, or had no effect. A write refused with
	// condition_failed is recorded as the get it amounts to: a read of the
	// value the refusal reported.
	Cond core.Condition
	// Presence marks a get that read only whether the key exists (a
	// ttl), not its value: Value is empty.
	Presence bool
	// Deadline is what a ttl that found its key said of its deadline.
	Deadline DeadlineRead
	// TTL is a set's or an expire's ttl_ms, in the history's time base
	// (0: the key stays; an expire with none is a persist). The node may delete the key once that long has passed since
	// it took the set, less History.ExpirySlop: a read that finds the key
	// gone is explained by an expiry in between, and no earlier one.
	TTL int64
	// Delta is an incr's; Refusal, the code of an OK incr's refusal (""
	// for one that answered a value).
	Delta   int64
	Refusal string
	// Reads is what an OK bulk_get read, one per item of Items: nil for a
	// missing key.
	Reads []*string
	// Call is when the client sent the call, Return when it got the answer
	// or, for Unknown, when it gave up.
	Call, Return int64
	Outcome      Outcome
	// Final marks a read of the final phase: faults stopped, every node
	// recovered from its disk, nothing else in flight. Durability is judged
	// on these.
	Final bool
	// Note says more about the outcome, e.g. the error code of a failure.
	Note string
	// Settled and EffectBy are what a simulator learnt about an Unknown op
	// that its client did not (see Settled). Only a host for which those
	// facts hold may set them: a single node, yes; a cluster, where another
	// node may commit a dead leader's write later, no. They narrow the op's
	// window, which keeps porcupine's search small and the check strict.
	Settled  Settled
	EffectBy int64
	// Taken, when non-zero, is when a node took the request from its
	// queue: no op can take effect before a node has it, so the op's window
	// starts there rather than at Call. A simulator knows this for any kind
	// of node; it narrows the windows of requests that waited in a queue.
	Taken int64
	// Group, when non-zero, names the reads made at one instant: the gets
	// History.Add makes of one bulk_get (or of one scan page, recorded as
	// one) share one, which Add draws itself when the bulk_get has none.
	// A recorder gives a bulk_get a group of its own drawing
	// (History.NewGroup) where its instant is shared with other bulk_gets:
	// the pages of one consistent scan, which all read the view of its
	// first page's instant. CheckAtomicity holds a group to one instant.
	Group int
}

// DeadlineRead is what a read said of its key's deadline.
type DeadlineRead uint8

const (
	// DeadlineUnread: the op did not read it (every op but a ttl that
	// found its key).
	DeadlineUnread DeadlineRead = iota
	// DeadlineNone: the key had no deadline (no ttl_ms in the answer).
	DeadlineNone
	// DeadlineSome: the key had one, passed or not.
	DeadlineSome
)

// earliestEffect is the earliest time the op may take effect.
func (op *Op) earliestEffect() int64 { return max(op.Call, op.Taken) }

// Settled is what became of an op whose client gave up on it.
type Settled uint8

const (
	// SettledNot: nothing is known; the op may take effect at any later
	// time.
	SettledNot Settled = iota
	// SettledNoEffect: the request never reached a node (the network lost
	// it, or the node died with it still queued), or the node refused it
	// with an error that promises no effect.
	SettledNoEffect
	// SettledApplied: the node acknowledged it at EffectBy; the answer was
	// lost or came too late.
	SettledApplied
	// SettledMaybe: the node died with the op in hand; the restart at
	// EffectBy settled whether its disk kept it. It took effect by then or
	// never.
	SettledMaybe
)

// latestEffect is the latest time the op may take effect: its return, or
// for an unknown outcome what the simulator knows, else never-ending.
func (op *Op) latestEffect() int64 {
	if op.Outcome != Unknown {
		return op.Return
	}
	if op.Settled == SettledApplied || op.Settled == SettledMaybe {
		return op.EffectBy
	}
	return math.MaxInt64
}

// hasEffect reports whether the op may have changed the state.
func (op *Op) hasEffect() bool {
	return op.IsWrite() && op.Outcome != Failed && !(op.Outcome == Unknown && op.Settled == SettledNoEffect)
}

// IsWrite reports whether the op may change the state.
func (op *Op) IsWrite() bool { return op.Kind != KindGet && op.Kind != KindBulkGet }

// Writes returns the key/value pairs the op writes, with a repeated key of a
// bulk_set resolved to its last value. A delete is a pair with present=false.
// An incr whose answer is not known wrote some counter (Any).
func (op *Op) Writes() []KeyWrite {
	switch op.Kind {
	case KindIncr:
		switch {
		case op.Outcome == Unknown:
			return []KeyWrite{{Key: op.Key, Present: true, Any: true}}
		case op.Refusal == "":
			return []KeyWrite{{Key: op.Key, Value: op.Value, Present: true}}
		}
		return nil
	case KindSet:
		return []KeyWrite{{Key: op.Key, Value: op.Value, Present: true}}
	case KindDelete:
		return []KeyWrite{{Key: op.Key}}
	case KindBulkDelete:
		out := make([]KeyWrite, 0, len(op.Items))
		for _, k := range op.keys() {
			out = append(out, KeyWrite{Key: k})
		}
		return out
	case KindBulkSet:
		out := make([]KeyWrite, 0, len(op.Items))
		for i, it := range op.Items {
			last := true
			for _, later := range op.Items[i+1:] {
				if later.Key == it.Key {
					last = false
					break
				}
			}
			if last {
				out = append(out, KeyWrite{Key: it.Key, Value: it.Value, Present: true})
			}
		}
		return out
	}
	return nil
}

// Seen is what a client last saw of each key's value, read or written (a
// key it saw absent is not in it): what a test's client compares its
// if_value writes with, as a compare-and-set loop does.
type Seen map[string]string

// Note records what an acknowledged op says of its key's value.
func (s Seen) Note(op *Op) {
	switch {
	case op.Presence:
		// Whether the key exists, not what it holds.
	case op.Kind == KindSet || op.Kind == KindGet && op.Found || op.Kind == KindIncr && op.Refusal == "":
		s[op.Key] = op.Value
	case op.Kind == KindDelete || op.Kind == KindGet:
		delete(s, op.Key)
	}
}

// KeyWrite is the effect of a write on one key.
type KeyWrite struct {
	Key     string
	Value   string
	Present bool // false: a delete
	// Any: an incr whose answer was lost wrote a counter, which one is
	// not known (Value is empty).
	Any bool
}

// String renders the op for findings, e.g.
// "c2#17 set k1=\"c2.17\" [1.200ms, 1.450ms] ok".
func (op *Op) String() string {
	var b strings.Builder
	kind := op.Kind.String()
	if op.Kind == KindGet && op.Presence {
		kind = "ttl" // a read of whether the key exists
	}
	fmt.Fprintf(&b, "c%d#%d %s", op.Client, op.Req, kind)
	switch op.Kind {
	case KindGet:
		fmt.Fprintf(&b, " %s", op.Key)
		if op.Outcome == OK {
			if op.Presence && op.Found {
				b.WriteString(" -> found")
			} else if op.Found {
				fmt.Fprintf(&b, " -> %q", clip(op.Value))
			} else {
				b.WriteString(" -> not_found")
			}
		}
	case KindSet:
		fmt.Fprintf(&b, " %s=%q", op.Key, clip(op.Value))
	case KindDelete:
		fmt.Fprintf(&b, " %s", op.Key)
	case KindIncr:
		fmt.Fprintf(&b, " %s %+d", op.Key, op.Delta)
		switch {
		case op.Outcome != OK:
		case op.Refusal != "":
			b.WriteString(" -> " + op.Refusal)
		default:
			fmt.Fprintf(&b, " -> %s", op.Value)
		}
	case KindExpire:
		if op.TTL == 0 {
			fmt.Fprintf(&b, " %s persist", op.Key)
		} else {
			fmt.Fprintf(&b, " %s ttl=%s", op.Key, FormatTime(op.TTL))
		}
	case KindBulkDelete, KindBulkGet:
		for _, it := range op.Items {
			b.WriteString(" " + it.Key)
		}
	case KindBulkSet:
		b.WriteString(" {")
		for i, it := range op.Items {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s=%q", it.Key, clip(it.Value))
		}
		b.WriteString("}")
	}
	if op.Cond.Kind != core.CondNone {
		fmt.Fprintf(&b, " %s", clipCond(op.Cond))
	}
	fmt.Fprintf(&b, " [%s, %s] %s", FormatTime(op.Call), FormatTime(op.Return), op.Outcome)
	if op.Note != "" {
		fmt.Fprintf(&b, " (%s)", op.Note)
	}
	if op.Outcome == Unknown {
		switch op.Settled {
		case SettledNoEffect:
			b.WriteString(" [no effect]")
		case SettledApplied:
			fmt.Fprintf(&b, " [acknowledged at %s]", FormatTime(op.EffectBy))
		case SettledMaybe:
			fmt.Fprintf(&b, " [settled by restart at %s]", FormatTime(op.EffectBy))
		}
	}
	if op.Final {
		b.WriteString(" final")
	}
	return b.String()
}

// clip keeps long padded values readable in findings.
func clip(s string) string {
	if len(s) <= 24 {
		return s
	}
	return s[:20] + "…"
}

// clipCond renders a condition with its value clipped.
func clipCond(c core.Condition) string {
	if c.Kind == core.CondValue {
		c.Value = clip(c.Value)
	}
	return c.String()
}

// FormatTime renders virtual nanoseconds as seconds with microseconds.
func FormatTime(ns int64) string {
	return fmt.Sprintf("%d.%06ds", ns/1e9, (ns%1e9)/1e3)
}

// History is every op of a run, in the order the clients made them.
type History struct {
	Ops []Op
	// ExpirySlop is how much earlier than its TTL after its call a key
	// may expire: the nodes' calendar clocks' disagreement with the
	// history's time base, and the rounding of deadlines to milliseconds.
	ExpirySlop int64
	// groups is the last group drawn (NewGroup).
	groups int
}

// NewGroup draws a group for reads made at one instant (Op.Group), unique
// in h: what a recorder gives every page of one consistent scan.
func (h *History) NewGroup() int {
	h.groups++
	return h.groups
}

// Add appends op and returns its index. A bulk_get is appended as one get
// per key, each with the bulk_get's interval and outcome, and the index
// returned is the first's: every check then judges each key's read as it
// judges a get's. That a bulk_get saw all its keys at one instant is kept
// as their Group (the bulk_get's, or one drawn here if it has none), which
// CheckAtomicity judges. A key the
// bulk_get names again is appended again only if its read differs (or
// there was no read): the same read of the same key over the same interval
// says nothing new, and each copy was one more op for porcupine to order
// against its twins (a seed with one key and bulk_gets of up to six kept
// 25 ops open at once, and its check ran out of time).
func (h *History) Add(op Op) int {
	if op.Kind != KindBulkGet {
		h.Ops = append(h.Ops, op)
		return len(h.Ops) - 1
	}
	if op.Group == 0 {
		op.Group = h.NewGroup()
	}
	first := len(h.Ops)
	for i, it := range op.Items {
		if op.Outcome == OK && readAgain(op, i) {
			continue
		}
		g := op
		g.Kind, g.Key, g.Items, g.Reads = KindGet, it.Key, nil, nil
		if op.Outcome == OK {
			if len(op.Reads) != len(op.Items) {
				panic("checks: an OK bulk_get's Reads must match its Items")
			}
			if v := op.Reads[i]; v != nil {
				g.Found, g.Value = true, *v
			}
		}
		h.Ops = append(h.Ops, g)
	}
	return first
}

// readAgain reports whether item i of an OK bulk_get repeats an earlier
// item's key with the same read.
func readAgain(op Op, i int) bool {
	for j := range i {
		if op.Items[j].Key != op.Items[i].Key {
			continue
		}
		a, b := op.Reads[j], op.Reads[i]
		if (a == nil) == (b == nil) && (a == nil || *a == *b) {
			return true
		}
	}
	return false
}

// Count returns how many ops have each outcome.
func (h *History) Count() (ok, failed, unknown int) {
	for i := range h.Ops {
		switch h.Ops[i].Outcome {
		case OK:
			ok++
		case Failed:
			failed++
		case Unknown:
			unknown++
		}
	}
	return
}

// Finding is one broken promise, in words a human can act on.
type Finding struct {
	Check string // "linearizability", "durability", "atomicity", ...
	Msg   string
	// Report is the path of an HTML visualisation, if one was written.
	Report string
}

func (f Finding) String() string {
	s := f.Check + ": " + f.Msg
	if f.Report != "" {
		s += "\n  report: " + f.Report
	}
	return s
}
