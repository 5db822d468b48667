package election_test

import (
	"fmt"
	"strings"
	"testing"

	"dkv/core"
	"dkv/election"
	"dkv/internal/indexes"
)

// A cluster leader bounds its search indexes' memory (core.Limits.
// IndexBytesMax): once its indexes hold that much, a write that sets
// values is refused before it is proposed (store_full, naming the bound),
// so it never applies anywhere; deletes go on.
func TestClusterLeaderRefusesWritesPastItsIndexBound(t *testing.T) {
	icfg, err := indexes.BuiltInConfig()
	if err != nil {
		t.Fatal(err)
	}
	c := newNodeCluster(t, 3, func(_ int, cfg *election.NodeConfig) {
		cfg.Indexes = indexes.New(icfg)
		cfg.Limits.IndexBytesMax = 1 << 20
	})
	l, _ := c.waitLeader(-1, 1000)
	refused := ""
	for b := range 100 {
		items := make([]core.KV, 100)
		for i := range items {
			items[i] = core.KV{Key: fmt.Sprintf("k%05d", b*100+i), Value: "river bank"}
		}
		r := c.do(l, &core.Request{Op: core.OpBulkSet, Items: items}, 100)
		if !r.OK {
			if codeOf(r) != core.CodeStoreFull || !strings.Contains(r.Error.Message, "--max-index-bytes") {
				t.Fatalf("bulk set %d: %s %+v, want store_full naming --max-index-bytes", b, codeOf(r), r.Error)
			}
			refused = items[0].Key
			break
		}
	}
	if refused == "" {
		t.Fatal("10,000 short values fit in 1 MiB of indexes")
	}
	if r := c.do(l, &core.Request{Op: core.OpIncr, Key: "counter"}, 100); codeOf(r) != core.CodeStoreFull {
		t.Fatalf("an incr past the bound: %s", codeOf(r))
	}
	if r := c.do(l, &core.Request{Op: core.OpDelete, Key: "k00000"}, 100); !r.OK {
		t.Fatalf("a delete past the bound: %s", codeOf(r))
	}
	for range 10 {
		c.step()
	}
	for i := range c.nodes {
		if _, ok := c.nodes[i].Store().Get(refused); ok {
			t.Errorf("node %d applied the refused write", i)
		}
	}
	if st := c.do(l, &core.Request{Op: core.OpStatus}, 10).Status; st == nil || st.IndexBytesMax != 1<<20 {
		t.Fatalf("the leader's status: %+v", st)
	}
}
