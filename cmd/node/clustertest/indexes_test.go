package clustertest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"dkv/client"
)

// indexWords are words of the built-in model that the full-text analysis
// keeps as they are (no stop word, their own stem), so a test knows which
// values hold which terms.
var indexWords = []string{"river", "boat", "water", "stone", "garden", "music", "paper", "window", "forest", "copper"}

// indexedValues are n values of 3–6 indexWords each, the same every run.
func indexedValues(n int) map[string]string {
	vals := map[string]string{}
	x := uint32(1)
	next := func() int { x = x*1664525 + 1013904223; return int(x >> 16) }
	for i := range n {
		words := make([]string, 3+next()%4)
		for j := range words {
			words[j] = indexWords[next()%len(indexWords)]
		}
		vals[fmt.Sprintf("doc%03d", i)] = strings.Join(words, " ")
	}
	return vals
}

// holding is the keys whose value holds word, sorted.
func holding(vals map[string]string, word string) []string {
	var keys []string
	for k, v := range vals {
		if slices.Contains(strings.Fields(v), word) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func hitKeys(hits []client.Hit) []string {
	keys := make([]string, len(hits))
	for i, h := range hits {
		keys[i] = h.Key
	}
	slices.Sort(keys)
	return keys
}

// A cluster started with --enable-indexes answers search and
// search_similar on its leader from every write the cluster acknowledged,
// and a new leader elected after the old one is SIGKILLed answers the same
// (its indexes were kept from its own replicated log), then takes in new
// writes.
func TestClusterIndexesAcrossFailover(t *testing.T) {
	c := startCluster(t, "--enable-indexes")
	waitLeader(t, c)
	ctx := ctxT(t)
	kv := dialCluster(t, c.Addrs())

	vals := indexedValues(300)
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i := 0; i < len(keys); i += 50 {
		batch := make([]client.KV, 0, 50)
		for _, k := range keys[i:min(i+50, len(keys))] {
			batch = append(batch, client.KV{Key: k, Value: vals[k]})
		}
		if err := kv.BulkSet(ctx, batch); err != nil {
			t.Fatalf("bulk_set: %v", err)
		}
	}
	if err := kv.Delete(ctx, keys[0]); err != nil {
		t.Fatalf("delete: %v", err)
	}
	delete(vals, keys[0])

	answers := func(when string) (map[string][]client.Hit, [][]client.Hit) {
		t.Helper()
		text := map[string][]client.Hit{}
		var similar [][]client.Hit
		for _, w := range indexWords[:4] {
			hits, err := kv.Search(ctx, w, client.Limit(1000))
			if err != nil {
				t.Fatalf("%s: search %q: %v", when, w, err)
			}
			if got, want := hitKeys(hits), holding(vals, w); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: search %q found %d keys %v…, want the %d holding it", when, w, len(got), got[:min(len(got), 5)], len(want))
			}
			text[w] = hits
			sims, err := kv.SearchSimilar(ctx, w, 5)
			if err != nil || len(sims) != 5 {
				t.Fatalf("%s: search_similar %q: %d hits, %v; want 5", when, w, len(sims), err)
			}
			similar = append(similar, sims)
		}
		return text, similar
	}
	text, similar := answers("before the failover")

	lead := slices.Index(c.Addrs(), kv.Leader())
	c.Kill(lead)
	newLead, _ := waitNewLeader(t, c, lead)
	t.Logf("node %d led; killed; node %d leads", lead, newLead)

	// The same values, the same scores: below the similarity index's exact
	// threshold both leaders' answers are exact, so they are equal too.
	text2, similar2 := answers("after the failover")
	if !reflect.DeepEqual(text2, text) || !reflect.DeepEqual(similar2, similar) {
		t.Fatalf("the new leader ranks differently: search %v, search_similar %v; the old one: %v, %v", text2, similar2, text, similar)
	}

	if err := kv.Set(ctx, "late", "river boat after the failover"); err != nil {
		t.Fatalf("set after the failover: %v", err)
	}
	vals["late"] = "river boat after the failover"
	answers("after a write to the new leader")
	if _, err := c.Start(lead); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, c, lead, status(t, c, newLead).Commit)
	answers("after the old leader rejoined")
}
