package sim

import (
	"fmt"
	"slices"
	"strings"

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
