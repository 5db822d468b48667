package mesh_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/indexes"
	"dkv/mesh"
)

// A mesh node bounds its search indexes' memory (core.Limits.
// IndexBytesMax) as it bounds its data bytes: once its indexes hold that
// much, its clients' sets are refused (store_full, naming the bound) and
// its peers' writes still apply, or the replicas would part for good.
func TestMeshNodeRefusesItsClientsWritesPastItsIndexBound(t *testing.T) {
	icfg, err := indexes.BuiltInConfig()
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, 3, nil)
	w.tune = func(cfg *mesh.Config) {
		if cfg.ID == 0 {
			cfg.Indexes = indexes.New(icfg)
			cfg.Limits.IndexBytesMax = 1 << 20
		}
	}
	w.restart(0, false)
	w.run(2 * time.Second)
	refused := ""
	for i := range 5_000 {
		v := "river bank"
		r := w.do(0, &core.Request{Op: core.OpSet, Key: fmt.Sprintf("k%05d", i), Value: &v})
		if !r.OK {
			if r.Error.Code != core.CodeStoreFull || !strings.Contains(r.Error.Message, "--max-index-bytes") {
				t.Fatalf("set %d: %+v, want store_full naming --max-index-bytes", i, r.Error)
			}
			refused = fmt.Sprintf("k%05d", i)
			break
		}
	}
	if refused == "" {
		t.Fatal("5,000 short values fit in 1 MiB of indexes")
	}
	w.set(1, "from-peer", "water boat")
	w.run(3 * time.Second)
	if got := w.held(0, "from-peer"); !strings.HasPrefix(got, "water boat@") {
		t.Fatalf("node 0 holds its peer's write as %q: a peer's writes apply past the bound", got)
	}
	if got := w.held(1, refused); got != "absent" {
		t.Fatalf("node 1 holds the refused write as %q", got)
	}
	if st := w.do(0, &core.Request{Op: core.OpStatus}).Status; st.IndexBytesMax != 1<<20 {
		t.Fatalf("node 0's status: max_index_bytes %d", st.IndexBytesMax)
	}
}
