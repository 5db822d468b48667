package election_test

import (
	"strings"
	"testing"

	"dkv/core"
	"dkv/election"
)

// A bulk_get of presence only (RESP's EXISTS and TOUCH) is answered
// whatever its values' bytes, which are not sent; a plain one past the
// bound is refused as before.
func TestClusterBulkGetOfPresenceIsNotBoundByItsValues(t *testing.T) {
	const limit = 1000
	c := newNodeCluster(t, 3, func(i int, cfg *election.NodeConfig) { cfg.Limits.RequestBytesMax = limit })
	l, _ := c.waitLeader(-1, 200)
	v := strings.Repeat("v", 400) // three pass the bound
	for _, k := range []string{"a", "b", "c"} {
		if r := c.do(l, setReq(k, v), 20); !r.OK {
			t.Fatalf("set %s: %+v", k, r.Error)
		}
	}
	keys := []string{"a", "b", "c", "missing"}
	r := c.do(l, &core.Request{Op: core.OpBulkGet, Keys: keys, Presence: true}, 20)
	if !r.OK || len(r.Values) != len(keys) {
		t.Fatalf("bulk_get of presence: %+v", r.Error)
	}
	for i, want := range []bool{true, true, true, false} {
		if (r.Values[i] != nil) != want {
			t.Errorf("key %s: present %v, want %v", keys[i], r.Values[i] != nil, want)
		}
	}
	if r := c.do(l, &core.Request{Op: core.OpBulkGet, Keys: keys}, 20); codeOf(r) != core.CodeTooLarge {
		t.Errorf("a plain bulk_get past the bound: %s, want too_large", codeOf(r))
	}
}
