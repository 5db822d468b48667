package checks

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"dkv/core"
)

// The porcupine model is a single register per key: the history is split by
// key (a bulk_set appears in the partition of each key it writes, as a write
// of that key's value), and each partition is checked alone. That is sound
// and complete for single-key operations, since linearizability is
// compositional (Herlihy & Wing): the whole history is linearizable iff
// every per-object history is. It is what keeps long histories cheap — a
// 10,000-op history over 8 keys is 8 searches of ~1,250 ops instead of one
// of 10,000 — but it cannot tell that a bulk_set took effect on all its
// keys at one instant; CheckAtomicity covers that.

// regInput is one op projected on one key.
type regInput struct {
	kind  Kind // KindGet, KindSet (also a projected bulk_set), KindDelete, KindExpire or KindIncr
	value string
	delta int64 // an incr's
	bulk  bool  // projected from a bulk_set, for the report
	// optional: the write took effect within its interval or not at all
	// (SettledMaybe). Only the nondeterministic model accepts it.
	optional bool
	// cond is a conditional write's condition: an applied one held it;
	// with mayFail (its outcome unknown) the write, where the condition
	// does not hold, changes nothing.
	cond    core.Condition
	mayFail bool
	// expireFrom, for a set or an expire with a TTL, is the earliest
	// time its key may expire (0: never); at is the latest time the op
	// may take effect, by which an expiry of the value before it
	// happened, if at all.
	expireFrom, at int64
}

// regOutput is what a get returned; writes have no output but an incr's.
// presence: the get read only whether the key exists (a ttl). An incr
// answered value (found), or refused (its code), or its answer was lost
// (unknown).
type regOutput struct {
	value    string
	found    bool
	presence bool
	deadline DeadlineRead // a ttl's, of a key it found
	refused  string
	unknown  bool
}

// regState is one key's content, and from when the node may delete it for
// its deadline (0: never). floor is the latest time an expiry the
// linearization took could have happened: no op after it may take effect
// before (one whose latest effect is earlier would have had to come first).
type regState struct {
	value      string
	present    bool
	expireFrom int64
	floor      int64
}

// regStep is the register's sequential specification.
func regStep(s regState, in regInput, output any) (bool, regState) {
	if in.cond.Kind != core.CondNone && !in.cond.Holds(s.value, s.present) {
		return in.mayFail, s
	}
	switch in.kind {
	case KindSet:
		return true, regState{value: in.value, present: true, expireFrom: in.expireFrom}
	case KindDelete:
		return true, regState{}
	case KindExpire:
		// Only where the key exists (its condition, CondExists).
		return true, regState{value: s.value, present: true, expireFrom: in.expireFrom}
	case KindGet:
		out := output.(regOutput)
		switch {
		case out.found != s.present:
			return false, s
		case !out.found:
			return true, s
		case out.presence:
			// A ttl: whether the key has a deadline is exact in the
			// model (expireFrom 0: none), though when it passes is not.
			return out.deadline == DeadlineUnread || (out.deadline == DeadlineSome) == (s.expireFrom != 0), s
		}
		return out.value == s.value, s
	case KindIncr:
		out := output.(regOutput)
		sum, refusal := incremented(s, in.delta)
		if refusal != "" {
			return out.unknown || out.refused == refusal, s
		}
		next := regState{value: sum, present: true, expireFrom: s.expireFrom} // its deadline kept
		return out.unknown || out.refused == "" && out.value == sum, next
	}
	return false, s
}

// incremented is what an incr by delta makes of s: the counter's new
// value, or the code it is refused with. Written apart from core's, so
// that a mistake in one shows against the other: a counter is an int64 in
// the one decimal form strconv writes.
func incremented(s regState, delta int64) (sum, refusal string) {
	var old int64
	if s.present {
		n, err := strconv.ParseInt(s.value, 10, 64)
		if err != nil || strconv.FormatInt(n, 10) != s.value {
			return "", core.CodeNotInteger
		}
		old = n
	}
	r := old + delta // wraps on overflow, which the signs then show
	if (delta > 0 && r < old) || (delta < 0 && r > old) {
		return "", core.CodeOverflow
	}
	return strconv.FormatInt(r, 10), ""
}

func describeOp(input, output any) string {
	in := input.(regInput)
	opt := ""
	if in.cond.Kind != core.CondNone {
		opt = " " + clipCond(in.cond)
	}
	if in.optional {
		opt += " (or nothing)"
	}
	switch in.kind {
	case KindSet:
		if in.bulk {
			return fmt.Sprintf("bulk_set %q%s", clip(in.value), opt)
		}
		return fmt.Sprintf("set %q%s", clip(in.value), opt)
	case KindDelete:
		return "delete" + opt
	case KindExpire:
		if in.expireFrom == 0 {
			return "persist" + opt
		}
		return fmt.Sprintf("expire (may go from %.6fs)%s", float64(in.expireFrom)/1e9, opt)
	case KindIncr:
		out := output.(regOutput)
		switch {
		case out.unknown:
			return fmt.Sprintf("incr %+d -> ?%s", in.delta, opt)
		case out.refused != "":
			return fmt.Sprintf("incr %+d -> %s%s", in.delta, out.refused, opt)
		}
		return fmt.Sprintf("incr %+d -> %s%s", in.delta, out.value, opt)
	case KindGet:
		out := output.(regOutput)
		if !out.found {
			return "get -> not_found"
		}
		switch {
		case out.presence && out.deadline == DeadlineNone:
			return "ttl -> found, no deadline"
		case out.presence && out.deadline == DeadlineSome:
			return "ttl -> found, a deadline"
		case out.presence:
			return "ttl -> found"
		}
		return fmt.Sprintf("get -> %q", clip(out.value))
	}
	return "?"
}

func describeState(state any) string {
	s := state.(regState)
	switch {
	case !s.present:
		return "(absent)"
	case s.expireFrom != 0:
		return fmt.Sprintf("%q (may expire from %.6fs)", clip(s.value), float64(s.expireFrom)/1e9)
	}
	return fmt.Sprintf("%q", clip(s.value))
}

func describeMeta(info any) string {
	if info == nil {
		return ""
	}
	return fmt.Sprint(info)
}

func hashState(state any) uint64 {
	s := state.(regState)
	h := uint64(14695981039346656037)
	if s.present {
		h ^= 1
	}
	for i := 0; i < len(s.value); i++ {
		h = (h ^ uint64(s.value[i])) * 1099511628211
	}
	h = (h ^ uint64(s.expireFrom)) * 1099511628211
	return (h ^ uint64(s.floor)) * 1099511628211
}

// RegisterModel is the porcupine model of one key of the store.
var RegisterModel = porcupine.Model{
	Init: func() any { return regState{} },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.optional {
			panic("checks: an optional op needs OptionalRegisterModel")
		}
		return regStep(state.(regState), in, output)
	},
	Hash:                      hashState,
	DescribeOperation:         describeOp,
	DescribeState:             describeState,
	DescribeOperationMetadata: describeMeta,
}

// OptionalRegisterModel also takes optional writes: ops that took effect
// within their interval or not at all. Its states are sets of register
// states (porcupine's power-set construction), so it is used only for
// partitions that hold such ops.
var OptionalRegisterModel = (&porcupine.NondeterministicModel{
	Init: func() []any { return []any{regState{}} },
	Step: func(state, input, output any) []any {
		s, in := state.(regState), input.(regInput)
		pres := []regState{s}
		if e := expired(s, in.at); e != s {
			pres = append(pres, e) // the node may have deleted it before
		}
		var out []any
		for _, pre := range pres {
			if in.at < pre.floor {
				continue // it had to take effect before an expiry taken already
			}
			ok, next := regStep(pre, in, output)
			next.floor = pre.floor
			switch {
			case !ok:
			case in.optional && next != pre:
				out = append(out, pre, next)
			default:
				out = append(out, next)
			}
		}
		return out
	},
	Hash:                      hashState,
	DescribeOperation:         describeOp,
	DescribeState:             describeState,
	DescribeOperationMetadata: describeMeta,
}).ToModel()

// expired is s after the node deleted its key for its deadline, if that
// may have happened by at: else s itself.
func expired(s regState, at int64) regState {
	if s.present && s.expireFrom != 0 && at >= s.expireFrom {
		return regState{floor: max(s.floor, s.expireFrom)}
	}
	return s
}

// Partition is one key's share of a history, ready for porcupine.
type Partition struct {
	Key string
	Ops []porcupine.Operation
	// Pruned counts ops left out because they cannot matter (see
	// Partitions).
	Pruned int
	// Optional counts optional writes, Expiring writes with a TTL: the
	// partition needs OptionalRegisterModel.
	Optional, Expiring int
}

// Model is the porcupine model the partition needs.
func (p *Partition) Model() porcupine.Model {
	if p.Optional > 0 || p.Expiring > 0 {
		return OptionalRegisterModel
	}
	return RegisterModel
}

// Partitions splits h by key, in key order, and leaves out what cannot
// change the verdict:
//
//   - failed ops: they had no effect. (If the store wrongly applied one, its
//     value shows up in a read that no remaining op explains: a violation.)
//     So are unknown ops a simulator knows had no effect (SettledNoEffect).
//   - gets with an unknown outcome: a read has no effect, and there is no
//     result to check.
//   - sets (and bulk_set projections) with an unknown outcome whose value no
//     get of that key ever returned. Taking effect or not is then
//     indistinguishable: the value was never observed, so dropping the op
//     from a linearization of the others leaves every read explained, and an
//     unknown op may always be placed at the very end (or, if optional, not
//     at all). Unknown ops never return, so each one left in makes
//     porcupine's search wider; this rule removes most of them. (An op the
//     simulator knows was acknowledged must happen in its window, so it
//     stays.)
//
// An op with an unknown outcome gets a return time after every other event,
// which is how porcupine expresses "may take effect at any later time" —
// unless a simulator settled it: acknowledged at EffectBy (it then counts
// as an ok op returning then), or settled by a restart at EffectBy (an
// optional write returning then).
func Partitions(h *History) []Partition {
	end := int64(0)
	for i := range h.Ops {
		end = max(end, h.Ops[i].Call, h.Ops[i].Return)
	}
	end++
	// Values each key's successful gets observed, and those an if_value
	// write may have found there. An if_exists write that may have
	// applied observed that some value was there, which an unknown set of
	// any value may explain: on its key, no unknown set is left out.
	seen := map[string]map[string]bool{}
	see := func(key, value string) {
		if seen[key] == nil {
			seen[key] = map[string]bool{}
		}
		seen[key][value] = true
	}
	sawPresence := map[string]bool{}
	for i := range h.Ops {
		op := &h.Ops[i]
		switch {
		case op.Kind == KindGet && op.Outcome == OK && op.Found && op.Presence:
			sawPresence[op.Key] = true // some value, which an unknown set may explain
		case op.Kind == KindGet && op.Outcome == OK && op.Found:
			see(op.Key, op.Value)
		case op.Cond.Kind == core.CondValue && op.Outcome != Failed:
			see(op.Key, op.Cond.Value)
		case op.Cond.Kind == core.CondExists && op.Outcome != Failed, op.Kind == KindExpire && op.Outcome != Failed:
			sawPresence[op.Key] = true
		case op.Kind == KindIncr && op.Outcome != Failed:
			// It read the value it added to, which an unknown set may
			// have written; and an unknown one may have added to it.
			sawPresence[op.Key] = true
		}
	}
	byKey := map[string]*Partition{}
	var keys []string
	part := func(key string) *Partition {
		p := byKey[key]
		if p == nil {
			p = &Partition{Key: key}
			byKey[key] = p
			keys = append(keys, key)
		}
		return p
	}
	for i := range h.Ops {
		op := &h.Ops[i]
		if !op.hasEffect() && op.Kind != KindGet || op.Outcome == Failed {
			for _, w := range op.keys() {
				part(w).Pruned++
			}
			continue
		}
		ret := op.latestEffect()
		if ret == math.MaxInt64 {
			ret = end
		}
		meta := &opRef{i, op}
		if op.Kind == KindGet {
			if op.Outcome == Unknown {
				part(op.Key).Pruned++
				continue
			}
			p := part(op.Key)
			p.Ops = append(p.Ops, porcupine.Operation{
				ClientId: op.Client, Call: op.earliestEffect(), Return: ret, Metadata: meta,
				Input:  regInput{kind: KindGet, at: ret},
				Output: regOutput{value: op.Value, found: op.Found, presence: op.Presence, deadline: op.Deadline},
			})
			continue
		}
		// add adds the op's write of one key to its partition: with the
		// deadline it gives, if it gives one (the node took the write no
		// earlier than its earliest effect, and the deadline is that plus
		// the TTL), and optional if a restart settled it.
		add := func(p *Partition, in regInput, out regOutput, deadline bool) {
			in.at = ret
			if deadline {
				in.expireFrom = max(op.earliestEffect()+op.TTL-h.ExpirySlop, 1)
				p.Expiring++
			}
			if op.Outcome == Unknown && op.Settled == SettledMaybe {
				in.optional = true
				p.Optional++
			}
			p.Ops = append(p.Ops, porcupine.Operation{
				ClientId: op.Client, Call: op.earliestEffect(), Return: ret, Metadata: meta,
				Input: in, Output: out,
			})
		}
		if op.Kind == KindExpire {
			// A write of the key's deadline alone, where the key exists;
			// an unknown one may have found it gone and done nothing.
			in := regInput{kind: KindExpire, cond: core.Condition{Kind: core.CondExists}}
			in.mayFail = op.Outcome == Unknown && op.Settled != SettledApplied
			add(part(op.Key), in, regOutput{}, op.TTL != 0)
			continue
		}
		if op.Kind == KindIncr {
			out := regOutput{value: op.Value, found: true, refused: op.Refusal}
			if op.Outcome == Unknown {
				out = regOutput{unknown: true}
			}
			add(part(op.Key), regInput{kind: KindIncr, delta: op.Delta}, out, false)
			continue
		}
		for _, w := range op.Writes() {
			p := part(w.Key)
			// (Not one with a TTL: its expiry, which no get observes as
			// its value, may explain a later absence.)
			if op.Outcome == Unknown && op.Settled != SettledApplied && w.Present && !seen[w.Key][w.Value] && !sawPresence[w.Key] && op.TTL == 0 {
				p.Pruned++
				continue
			}
			in := regInput{kind: KindDelete, cond: op.Cond}
			if w.Present {
				in = regInput{kind: KindSet, value: w.Value, bulk: op.Kind == KindBulkSet, cond: op.Cond}
			}
			// An unknown conditional write may have found its condition
			// unmet, unless a simulator saw it apply.
			in.mayFail = op.Outcome == Unknown && op.Settled != SettledApplied && op.Cond.Kind != core.CondNone
			add(p, in, regOutput{}, op.TTL != 0 && w.Present)
		}
	}
	sort.Strings(keys)
	out := make([]Partition, 0, len(keys))
	for _, k := range keys {
		out = append(out, *byKey[k])
	}
	return out
}

// opRef is a porcupine op's metadata: which op of the history it came
// from, described only when a report or a finding needs it.
type opRef struct {
	index int
	op    *Op
}

func (r *opRef) String() string { return fmt.Sprintf("op %d: %s", r.index, r.op) }

// keys lists the distinct keys an op touches.
func (op *Op) keys() []string {
	if op.Kind != KindBulkSet && op.Kind != KindBulkDelete && op.Kind != KindBulkGet {
		return []string{op.Key}
	}
	var ks []string
	for _, it := range op.Items {
		if !slices.Contains(ks, it.Key) {
			ks = append(ks, it.Key)
		}
	}
	return ks
}

// LinOptions tune CheckLinearizable.
type LinOptions struct {
	// Timeout bounds the whole check; 0 means none. A check that runs out
	// of time is inconclusive, not a pass.
	Timeout time.Duration
	// ReportDir, when set, is where an HTML visualisation of a violation is
	// written, as ReportName (default "linearizability.html").
	ReportDir, ReportName string
}

// LinResult is the verdict of CheckLinearizable.
type LinResult struct {
	Result     porcupine.CheckResult
	Partitions int
	Checked    int // ops given to porcupine, over all partitions
	Pruned     int
	Elapsed    time.Duration
	BadKeys    []string // partitions that are not linearizable
	// Explain says, for each bad key, where the search got stuck.
	Explain   []string
	Report    string // path of the HTML report, if written
	ReportErr error
}

// Finding returns nil when the history is linearizable.
func (r *LinResult) Finding() *Finding {
	switch r.Result {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return &Finding{Check: "linearizability", Msg: fmt.Sprintf("inconclusive: the check ran out of time after %v", r.Elapsed.Round(time.Millisecond))}
	}
	msg := fmt.Sprintf("history is not linearizable on key(s) %s", strings.Join(r.BadKeys, ", "))
	for _, e := range r.Explain {
		msg += "\n" + e
	}
	if r.ReportErr != nil {
		msg += fmt.Sprintf(" (writing the report failed: %v)", r.ReportErr)
	}
	return &Finding{Check: "linearizability", Msg: msg, Report: r.Report}
}

// CheckLinearizable checks h per key with porcupine. Partitions are checked
// one after another on the calling goroutine's budget, so that callers that
// run many histories in parallel control the parallelism.
func CheckLinearizable(h *History, opts LinOptions) LinResult {
	start := time.Now()
	parts := Partitions(h)
	res := LinResult{Result: porcupine.Ok, Partitions: len(parts)}
	var bad []Partition
	for _, p := range parts {
		res.Checked += len(p.Ops)
		res.Pruned += p.Pruned
		var timeout time.Duration
		if opts.Timeout > 0 {
			timeout = opts.Timeout - time.Since(start)
			if timeout <= 0 {
				res.Result = porcupine.Unknown
				break
			}
		}
		switch porcupine.CheckOperationsTimeout(p.Model(), p.Ops, timeout) {
		case porcupine.Illegal:
			res.Result = porcupine.Illegal
			res.BadKeys = append(res.BadKeys, p.Key)
			bad = append(bad, p)
		case porcupine.Unknown:
			if res.Result == porcupine.Ok {
				res.Result = porcupine.Unknown
			}
		}
	}
	if len(bad) > 0 {
		model, ops := badModel(bad)
		_, info := porcupine.CheckOperationsVerbose(model, ops, 0)
		res.Explain = explain(model, bad, info)
		if opts.ReportDir != "" {
			res.Report, res.ReportErr = writeReport(model, info, opts)
		}
	}
	res.Elapsed = time.Since(start)
	return res
}

// badModel is the model and history of the bad partitions alone: the
// report and the explanation leave out the keys that were fine.
func badModel(bad []Partition) (porcupine.Model, []porcupine.Operation) {
	var ops []porcupine.Operation
	model := RegisterModel
	for _, p := range bad {
		ops = append(ops, p.Ops...)
		if p.Optional > 0 || p.Expiring > 0 {
			model = OptionalRegisterModel // the one the verdict took (Partition.Model)
		}
	}
	model.Partition = func(history []porcupine.Operation) [][]porcupine.Operation {
		out := make([][]porcupine.Operation, len(bad))
		for i, p := range bad {
			out[i] = p.Ops
		}
		return out
	}
	return model, ops
}

// explain turns porcupine's longest linearizable prefix of each bad key
// into words: how far it got, the state there, and the op that could not be
// fitted after it (the first op, by return, left out of the prefix).
func explain(model porcupine.Model, bad []Partition, info porcupine.LinearizationInfo) []string {
	var out []string
	partials := info.PartialLinearizationsOperations()
	for i, p := range bad {
		if i >= len(partials) {
			break
		}
		var longest []porcupine.Operation
		for _, l := range partials[i] {
			if len(l) > len(longest) {
				longest = l
			}
		}
		state := model.Init()
		in := map[any]bool{}
		for _, op := range longest {
			_, state = model.Step(state, op.Input, op.Output)
			in[op.Metadata] = true
		}
		var stuck *porcupine.Operation
		for j := range p.Ops {
			op := &p.Ops[j]
			if !in[op.Metadata] && (stuck == nil || op.Return < stuck.Return) {
				stuck = op
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "  key %s: the longest linearizable prefix has %d of %d ops and leaves the key %s", p.Key, len(longest), len(p.Ops), model.DescribeState(state))
		if stuck != nil {
			fmt.Fprintf(&b, "; no order fits %v", stuck.Metadata)
		}
		if n := len(longest); n > 0 {
			b.WriteString("; the prefix ends with:")
			for _, op := range longest[max(0, n-4):] {
				fmt.Fprintf(&b, "\n    %v", op.Metadata)
			}
		}
		out = append(out, b.String())
	}
	return out
}

// writeReport renders the bad partitions with porcupine's visualiser: one
// timeline per key, with the longest linearizable prefixes it found.
func writeReport(model porcupine.Model, info porcupine.LinearizationInfo, opts LinOptions) (string, error) {
	if err := os.MkdirAll(opts.ReportDir, 0o755); err != nil {
		return "", err
	}
	name := opts.ReportName
	if name == "" {
		name = "linearizability.html"
	}
	path := filepath.Join(opts.ReportDir, name)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return "", err
	}
	return path, nil
}
