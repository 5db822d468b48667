package meshtest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"dkv/client"
)

// A mesh started with --enable-indexes indexes on every node what reaches
// it, by a client's write or by replication: values written through
// different nodes, one replaced and one deleted, are found by search and
// search_similar on every node once they have converged, and a node
// SIGKILLed and restarted rebuilds its indexes from its data and catches
// up with what it missed.
func TestMeshIndexesConverge(t *testing.T) {
	c := startMesh(t, append([]string{"--enable-indexes"}, fastAE...)...)
	ctx := ctxT(t)
	kvs := []*client.KVClient{dial(t, c.Addr(0)), dial(t, c.Addr(1)), dial(t, c.Addr(2))}
	write := func(node int, key, value string) {
		t.Helper()
		if err := kvs[node].Set(ctx, key, value); err != nil {
			t.Fatalf("set %s through node %d: %v", key, node, err)
		}
	}
	// want: search "river" finds exactly these keys on every node, and
	// search_similar "river" finds them among its top 5.
	converged := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(waitMax)
		for i := range c.Size() {
			kv, err := client.Dial(c.Addr(i))
			if err != nil {
				t.Fatal(err)
			}
			for {
				hits, serr := kv.Search(ctx, "river")
				sims, simErr := kv.SearchSimilar(ctx, "river", 5)
				got := keysOf(hits)
				if serr == nil && simErr == nil && reflect.DeepEqual(got, want) && containsAll(keysOf(sims), want) {
					break
				}
				if time.Now().After(deadline) {
					kv.Close()
					t.Fatalf("node %d: search river = %v (%v), search_similar = %v (%v); want %v", i, got, serr, keysOf(sims), simErr, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
			kv.Close()
		}
	}

	write(0, "a", "the river runs to the sea")
	write(1, "b", "a boat on the river")
	write(2, "c", "copper wire and paper")
	write(2, "d", "river stones")
	converged([]string{"a", "b", "d"})

	write(1, "a", "the garden wall") // replaced through another node
	if err := kvs[0].Delete(ctx, "d"); err != nil {
		t.Fatalf("delete d: %v", err)
	}
	converged([]string{"b"})

	c.Kill(2)
	write(0, "e", "down the river by boat")
	if _, err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	kvs[2] = dial(t, c.Addr(2))
	converged([]string{"b", "e"})
}

func keysOf(hits []client.Hit) []string {
	keys := make([]string, len(hits))
	for i, h := range hits {
		keys[i] = h.Key
	}
	slices.Sort(keys)
	return keys
}

func containsAll(have, want []string) bool {
	for _, k := range want {
		if !slices.Contains(have, k) {
			return false
		}
	}
	return true
}
