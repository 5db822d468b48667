package sim

import (
	"fmt"
	"slices"
	"testing"

	"dkv/vecidx"
)

// TestSimVecOptionsExerciseGraphs: with the simulator's index options and
// its workload's shape (at most 8 keys, values of a few of indexWords,
// overwritten again and again, Work now and then), segments are sealed,
// linked, merged and compacted, and every search, going through the
// graphs, equals the exact scan.
func TestSimVecOptionsExerciseGraphs(t *testing.T) {
	simModel.once.Do(func() { simModel.model, simModel.err = vecidx.Default() })
	if simModel.err != nil {
		t.Fatal(simModel.err)
	}
	m := simModel.model
	x := vecidx.NewIndex(m.Dim(), simVecOptions())
	r := stream(1, 99)
	maxSegments, sawLinked, sawDead := 0, false, false
	for i := range 2000 {
		key := fmt.Sprintf("k%d", r.IntN(8))
		if r.IntN(10) == 0 {
			x.Remove(key)
		} else {
			v, err := m.Embed(indexWords[r.IntN(len(indexWords))] + " " + indexWords[r.IntN(len(indexWords))])
			if err != nil {
				t.Fatal(err)
			}
			if err := x.Put(key, v); err != nil {
				t.Fatal(err)
			}
		}
		if r.IntN(4) == 0 {
			x.Work(1)
		}
		st := x.Stats()
		maxSegments = max(maxSegments, st.Segments)
		sawLinked = sawLinked || (st.Vectors > 0 && st.Pending < st.Vectors)
		sawDead = sawDead || st.Dead > 0
		if i%7 == 0 {
			q, _ := m.Embed(indexWords[i%len(indexWords)])
			got, err := x.Search(q, 7)
			if err != nil {
				t.Fatal(err)
			}
			if want := x.Exact(q, 7); !slices.Equal(got, want) {
				t.Fatalf("write %d: search %v, exact %v (%v)", i, got, want, st)
			}
		}
	}
	if maxSegments < 3 || !sawLinked || !sawDead {
		t.Fatalf("the options did not exercise the graphs: at most %d segments, linked %v, tombstones %v", maxSegments, sawLinked, sawDead)
	}
}
