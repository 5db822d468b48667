package sim

import (
	"fmt"

	"dkv/core"
)

// dataBoundWant is what a single node's answer to a set or a bulk_set
// must be under the seed's data bound (FaultMix.DataBytesMax): store_full
// exactly when the write would grow the store past the bound. A client
// takes a store_full as a refusal and retries, so no other check can see
// one given wrongly; the node's count of its data bytes is checked apart
// (data-bytes, at the end of the run). A node that counted an overwrite's
// growth without taking the old value's bytes off (the mutant
// data-growth-ignores-old) refused writes that fitted, among them the
// shorter values that are how a full store is emptied, and no check saw
// it (none of 1,000 seeds).
type dataBoundWant struct {
	held, growth, max int64
}

// dataBoundWanted notes, as the node takes req, whether its answer may be
// store_full (nil if the check does not apply: not a single node, not a
// set or a bulk_set, or no bound). The node judges against its store as
// the open batch left it, which is what the simulator reads here.
func (s *Sim) dataBoundWanted(n core.Node, req *core.Request) *dataBoundWant {
	if s.mix.DataBytesMax <= 0 || s.mode.Sessions || s.mode.Mesh {
		return nil
	}
	if s.mix.IndexBytesMax > 0 {
		// The indexes' bound may refuse a write the data bound takes:
		// the refusal must still apply nowhere, which the other checks
		// see.
		return nil
	}
	st, ok := n.(interface{ Store() *core.Store })
	if !ok {
		return nil
	}
	var items []core.KV
	switch {
	case req.Op == core.OpSet && req.Value != nil:
		items = []core.KV{{Key: req.Key, Value: *req.Value}}
	case req.Op == core.OpBulkSet:
		items = req.Items
	default:
		return nil
	}
	store := st.Store()
	w := &dataBoundWant{held: store.DataBytes(), max: s.mix.DataBytesMax}
	seen := map[string]bool{}
	for i := len(items) - 1; i >= 0; i-- { // a repeated key: the last wins
		kv := items[i]
		if seen[kv.Key] {
			continue
		}
		seen[kv.Key] = true
		w.growth += core.EntryDataBytes(len(kv.Key), len(kv.Value)) - store.DataBytesOf(kv.Key)
	}
	return w
}

// check judges the answer; "" if it is the one the bound calls for.
func (w *dataBoundWant) check(resp *core.Response) string {
	over := w.growth > 0 && w.held+w.growth > w.max
	refused := resp.Error != nil && resp.Error.Code == core.CodeStoreFull
	switch {
	case refused && !over:
		return fmt.Sprintf("refused with store_full a write that adds %d data bytes to the %d held, within the bound of %d", w.growth, w.held, w.max)
	case resp.OK && over:
		return fmt.Sprintf("took a write that adds %d data bytes to the %d held, past the bound of %d", w.growth, w.held, w.max)
	}
	return ""
}
