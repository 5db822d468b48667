package sim

import (
	"fmt"
	"slices"
	"strings"

	"dkv/checks"
	"dkv/core"
	"dkv/mesh"
)

// A scan is checked as the bulk_get of the keys its page covers: every
// key of the workload that has the prefix and comes after start_after, up
// to the page's last key if it says more, else all of them. A key the page
// holds was read with its value; a covered key it lacks, read as absent.
// The per-key checks (linearizability, durability, the mesh's) then hold
// scans to what they hold gets to, and the page's own shape is checked
// here.

// scanCandidates are the workload's keys (Sim.keyName of 0..Keys-1) that
// req may return, in key order.
func (s *Sim) scanCandidates(req *core.Request) []string {
	var out []string
	for i := range s.mix.Keys {
		k := s.keyName(i)
		if strings.HasPrefix(k, req.Prefix) && k > req.StartAfter {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// scanned checks a scan's page and turns it into the bulk_get it is
// recorded as; false if the page broke the protocol (the run has failed).
func (c *client) scanned(a *attempt, resp *core.Response) bool {
	s := c.s
	req := a.req
	bad := func(format string, args ...any) bool {
		s.fail("protocol", fmt.Sprintf("scan of prefix %q after %q, limit %d (attempt %d): ", req.Prefix, req.StartAfter, req.Limit, a.id)+fmt.Sprintf(format, args...))
		return false
	}
	if resp.More == nil || resp.Items == nil {
		return bad("answered without items or more: %+v", resp)
	}
	if len(resp.Items) > int(req.Limit) {
		return bad("answered %d keys", len(resp.Items))
	}
	candidates := s.scanCandidates(req)
	for i, kv := range resp.Items {
		if i > 0 && kv.Key <= resp.Items[i-1].Key {
			return bad("key %q after %q: not in key order", kv.Key, resp.Items[i-1].Key)
		}
		if !slices.Contains(candidates, kv.Key) {
			return bad("answered key %q, which it does not cover or no client wrote", kv.Key)
		}
	}
	covered := candidates
	if *resp.More {
		if len(resp.Items) == 0 {
			return bad("an empty page that says more")
		}
		last := resp.Items[len(resp.Items)-1].Key
		i := slices.Index(candidates, last)
		if i == len(candidates)-1 {
			return bad("says more after %q, the last key it could cover", last)
		}
		covered = candidates[:i+1]
	}
	// A new slice: the attempts of one request share the first's.
	a.op.Items = make([]core.KV, 0, len(covered))
	a.op.Reads = make([]*string, len(covered))
	for i, k := range covered {
		a.op.Items = append(a.op.Items, core.KV{Key: k})
		if j := slices.IndexFunc(resp.Items, func(kv core.KV) bool { return kv.Key == k }); j >= 0 {
			v := resp.Items[j].Value
			a.op.Reads[i] = &v
		}
	}
	return true
}

// scanWalk is a consistent scan under way: the view its first page pinned,
// and where its next page starts.
type scanWalk struct {
	view, prefix, after string
	limit               uint64
	// The first page's call and return: the view is of an instant
	// between them, which every page reads, so every page is recorded
	// with that window, however late it came. A view that is not of
	// that instant then shows as a read that no order explains.
	call, ret int64
	// group is the walk's reads' group (checks.Op.Group): one instant.
	group int
}

// walked checks what a page says of its walk's view and remembers the
// walk for its next page; false if the page broke the protocol.
func (c *client) walked(a *attempt, resp *core.Response) bool {
	req := a.req
	if !req.Consistent && req.View == "" {
		return true
	}
	c.walk = nil
	switch {
	case *resp.More && resp.View == "":
		c.s.fail("protocol", fmt.Sprintf("a page of a consistent scan (attempt %d) says more but names no view", a.id))
		return false
	case req.View != "" && resp.View != "" && resp.View != req.View:
		c.s.fail("protocol", fmt.Sprintf("a page of view %s (attempt %d) names view %s", req.View, a.id, resp.View))
		return false
	case !*resp.More && resp.View != "":
		c.s.fail("protocol", fmt.Sprintf("the last page of a consistent scan (attempt %d) names view %s", a.id, resp.View))
		return false
	case *resp.More:
		w := &scanWalk{view: resp.View, prefix: req.Prefix, after: resp.Items[len(resp.Items)-1].Key, limit: req.Limit, call: a.op.Call, ret: c.s.w.now, group: a.op.Group}
		if req.View != "" {
			w.call, w.ret = c.callAt, c.retAt
		}
		c.walk = w
	}
	return true
}

// nextPage is the request for the next page of the client's walk, recorded
// as the bulk_get of the keys it may cover, called at the walk's first
// page: its reads are of that instant.
func (c *client) nextPage(op checks.Op) (*core.Request, checks.Op) {
	w := c.walk
	req := &core.Request{Op: core.OpScan, Prefix: w.prefix, StartAfter: w.after, Limit: w.limit, View: w.view}
	for _, k := range c.s.scanCandidates(req) {
		op.Items = append(op.Items, core.KV{Key: k})
	}
	if len(op.Items) > 0 {
		op.Kind = checks.KindBulkGet
	}
	c.callAt, c.retAt = w.call, w.ret
	op.Group = w.group
	return req, op
}

// meshScanWant is what a mesh node's scan page must hold: the node's own
// live keys that the page may cover, with their values, in key order, as
// the node held them when it took the request (a page that is not a
// consistent scan's later one reads the node's store then). A mesh is not
// linearizable, so the history can hold a mesh scan only to reading values
// some client sent; a page that skips a live key the node holds goes
// through that check. A node whose scan stopped a bucket's walk at its
// first tombstone (the mutant scan-tomb-ends-bucket) left every later key
// of the bucket out of its pages, and no check saw it (none of 1,000
// seeds).
type meshScanWant struct {
	req  core.Request
	live []core.KV
}

// meshScanWanted notes what n's answer to req must hold, nil if the check
// does not apply (not a mesh scan, or a page of a consistent scan's view,
// which reads the view's instant).
func meshScanWanted(n core.Node, req *core.Request) *meshScanWant {
	m, ok := n.(*mesh.Node)
	if !ok || req.Op != core.OpScan || req.View != "" {
		return nil
	}
	w := &meshScanWant{req: *req}
	m.Items(func(it mesh.Item) bool {
		if !it.Tomb && strings.HasPrefix(it.Key, req.Prefix) && it.Key > req.StartAfter {
			w.live = append(w.live, core.KV{Key: it.Key, Value: it.Value})
		}
		return true
	})
	slices.SortFunc(w.live, func(a, b core.KV) int { return strings.Compare(a.Key, b.Key) })
	return w
}

// check compares an answer with the node's keys; "" if it holds them. A
// page may end before its limit (its bytes bound) if it says more.
func (w *meshScanWant) check(resp *core.Response) string {
	if !resp.OK || resp.More == nil {
		return "" // refused (the client's checks judge the answer)
	}
	var page []core.KV
	if w.req.KeysOnly {
		for _, k := range resp.Keys {
			page = append(page, core.KV{Key: k})
		}
	} else {
		page = resp.Items
	}
	describe := func() string {
		return fmt.Sprintf("scan of prefix %q after %q, limit %d: the page has %d keys, more %v; the node held %d live keys there: %s",
			w.req.Prefix, w.req.StartAfter, w.req.Limit, len(page), *resp.More, len(w.live), kvKeys(w.live))
	}
	for i, kv := range page {
		if i >= len(w.live) || kv.Key != w.live[i].Key {
			return fmt.Sprintf("%s; its key %d is %s, not the node's next live key", describe(), i, kv.Key)
		}
		if !w.req.KeysOnly && kv.Value != w.live[i].Value {
			return fmt.Sprintf("%s; it gives key %s the value %s, the node held %s", describe(), kv.Key, shortValue(kv.Value), shortValue(w.live[i].Value))
		}
	}
	if !*resp.More && len(page) < len(w.live) {
		return fmt.Sprintf("%s; it says no key is left, but the node held %s", describe(), w.live[len(page)].Key)
	}
	return ""
}

// kvKeys lists the keys of kvs, for a finding.
func kvKeys(kvs []core.KV) string {
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = kv.Key
	}
	return strings.Join(keys, " ")
}
