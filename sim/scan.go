package sim

import (
	"fmt"
	"slices"
	"strings"

	"dkv/checks"
	"dkv/core"
)

// A scan is checked as the bulk_get of the keys its page covers: every
// key of the workload that has the prefix and comes after start_after, up
// to the page's last key if it says more, else all of them. A key the page
// holds was read with its value; a covered key it lacks, read as absent.
// The per-key checks (linearizability, durability, the mesh's) then hold
// scans to what they hold gets to, and the page's own shape is checked
// here.

// scanCandidates are the workload's keys (keyName of 0..keys-1) that req
// may return, in key order.
func scanCandidates(keys int, req *core.Request) []string {
	var out []string
	for i := range keys {
		k := keyName(i)
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
	candidates := scanCandidates(s.mix.Keys, req)
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
	for _, k := range scanCandidates(c.s.mix.Keys, req) {
		op.Items = append(op.Items, core.KV{Key: k})
	}
	if len(op.Items) > 0 {
		op.Kind = checks.KindBulkGet
	}
	c.callAt, c.retAt = w.call, w.ret
	op.Group = w.group
	return req, op
}
