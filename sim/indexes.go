package sim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"dkv/core"
	"dkv/election"
	"dkv/internal/indexes"
	"dkv/mesh"
	"dkv/vecidx"
)

// Indexes are on in a share of the seeds (indexesPercent, drawn from their
// own stream so that the other streams do not move): their nodes run with
// the full-text and similarity indexes, their clients' values carry a few
// words, and the index checker compares what each node's indexes answer
// with a scan of the node's state after every recovery, after every write
// that failed to persist (its undo), every indexCheckTurns turns, and at
// the end.
const indexesPercent = 40

// indexCheckTurns: the checker also runs every this many turns of a node,
// for what only a live node shows (a snapshot installed without
// rebuilding the indexes, say); a restart rebuilds them and hides it.
const indexCheckTurns = 256

// IndexChoice overrides the seed's draw of whether the nodes index.
type IndexChoice int

const (
	IndexesDrawn IndexChoice = iota // as the seed draws
	IndexesOn
	IndexesOff
)

const (
	streamIndexes    = 6
	streamIndexBound = 7
)

// indexBoundPercent is the share of index seeds whose nodes bound their
// indexes (FaultMix.IndexBytesMax), between indexBoundMin and
// indexBoundMax: an index seed's few keys, written over some hundreds of
// times, make indexes of 75 to 160 KiB, which a bound counts once 256
// writes have changed them (internal/indexes' Set.Bytes), so that some
// seeds meet it early, some late and some never.
const (
	indexBoundPercent = 30
	indexBoundMin     = 32 << 10
	indexBoundMax     = 512 << 10
)

// drawIndexBound draws FaultMix.IndexBytesMax for an index seed.
func (s *Sim) drawIndexBound() int64 {
	r := stream(s.cfg.Seed, streamIndexBound)
	if r.IntN(100) >= indexBoundPercent {
		return 0
	}
	return int64(mixDrawer{r}.logUniform(indexBoundMin, indexBoundMax))
}

// ParseIndexChoice reads "drawn", "on" or "off".
func ParseIndexChoice(s string) (IndexChoice, error) {
	switch s {
	case "", "drawn":
		return IndexesDrawn, nil
	case "on":
		return IndexesOn, nil
	case "off":
		return IndexesOff, nil
	}
	return 0, fmt.Errorf("indexes must be drawn, on or off, not %q", s)
}

func (c IndexChoice) String() string {
	return [...]string{"drawn", "on", "off"}[c]
}

func (s *Sim) drawIndexes() bool {
	switch s.cfg.Indexes {
	case IndexesOn:
		return true
	case IndexesOff:
		return false
	}
	return stream(s.cfg.Seed, streamIndexes).IntN(100) < indexesPercent
}

// indexWords are the words the simulated clients put in values: few, so
// that queries match many values and scores tie, and all in the built-in
// embedding model.
var indexWords = []string{"apple", "river", "music", "ocean", "piano", "forest", "guitar", "storm", "bread", "cheese", "mountain", "violin"}

// valueWords draws the words a value of an index seed carries.
func (c *client) valueWords() string {
	r := c.s.wr
	n := 1 + r.IntN(3)
	words := make([]string, n)
	for i := range words {
		words[i] = indexWords[r.IntN(len(indexWords))]
	}
	return " " + strings.Join(words, " ")
}

var simModel struct {
	once  sync.Once
	model *vecidx.Model
	err   error
}

// newIndexes makes a node's indexes, on the built-in model, loaded and
// coded once per process (it is read-only once loaded).
func newIndexes() core.Indexes {
	simModel.once.Do(func() {
		// Coded once here, not in every indexes.New (a Set per node
		// per check).
		var cfg indexes.Config
		cfg, simModel.err = indexes.BuiltInConfig()
		simModel.model = cfg.Model
	})
	if simModel.err != nil {
		panic(fmt.Sprintf("sim: the built-in embedding model: %v", simModel.err))
	}
	cfg := indexes.DefaultConfig(simModel.model, "built-in")
	cfg.Vec = simVecOptions()
	return indexes.New(cfg)
}

// simVecOptions size the similarity index for the simulator's few keys
// (at most 8), so that its machinery runs in every index seed: segments of
// 3 vectors sealed, linked by Work or by back-pressure past 4 unlinked,
// merged up to 12 nodes, compacted, and every search through the graphs
// (no exact threshold). With lists of 2·8 links no node of a graph of 12
// ever drops a link, so every graph stays connected, and result sets of
// at least 22 reach every node: the answers must be exact, as the checker
// demands, and a wrong tombstone, a lost link or a missed node shows.
func simVecOptions() vecidx.IndexOptions {
	o := vecidx.DefaultIndexOptions()
	o.M = 8
	o.EfConstruction = 16
	o.SegmentEfConstruction = 16
	o.EfSearch = 64
	o.SegmentVectors = 3
	o.MergeVectorsMax = 12
	o.ExactBelow = 0
	o.PendingMax = 4
	return o
}

// nodeState is what a node's indexes must reflect: its live keys and
// values. ok is false for a node the checker cannot read (a test's wrapper).
func nodeState(n core.Node) (state map[string]string, ok bool) {
	state = map[string]string{}
	var st *core.Store
	switch n := n.(type) {
	case *core.SingleNode:
		st = n.Store()
	case *election.Node:
		st = n.Store()
	case *mesh.Node:
		n.Items(func(it mesh.Item) bool {
			if !it.Tomb {
				state[it.Key] = it.Value
			}
			return true
		})
		return state, true
	default:
		return nil, false
	}
	st.Ascend("", func(k, v string) bool {
		state[k] = v
		return true
	})
	return state, true
}

// indexCover is a node that says which of its values its indexes hold.
type indexCover interface{ IndexesCover(key string) bool }

// checkIndexes compares h's indexes with its state: every query's answer
// must equal that of indexes built afresh from the state, and the
// similarity answers must equal a brute-force scan of the values'
// embeddings. It returns a finding's message, or "".
func (s *Sim) checkIndexes(h *host, when string) string {
	if h.idx == nil || !h.up {
		return ""
	}
	state, ok := nodeState(h.node)
	if !ok {
		return ""
	}
	if c, ok := h.node.(indexCover); ok {
		// A rebuild in steps holds the values it has walked, and only
		// those: its indexes are compared with that part of the state.
		for k := range state {
			if !c.IndexesCover(k) {
				delete(state, k)
			}
		}
	}
	keys := make([]string, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fresh := newIndexes()
	for _, k := range keys {
		fresh.Put(k, state[k])
	}
	got, want := h.idx.Status(), fresh.Status()
	if got.Docs != want.Docs || got.Vectors != want.Vectors || got.Terms != want.Terms || got.Postings != want.Postings {
		return fmt.Sprintf("node %d %s: its indexes hold %d docs, %d terms, %d postings, %d vectors; its state gives %d, %d, %d, %d",
			h.id, when, got.Docs, got.Terms, got.Postings, got.Vectors, want.Docs, want.Terms, want.Postings, want.Vectors)
	}
	vecs := valueVectors(state, keys)
	for _, req := range indexQueries() {
		a := h.idx.Search(req)
		if req.Op == core.OpSearchSimilar {
			brute, truth := bruteSimilar(vecs, keys, req)
			if msg := sameSimilar(a, brute, truth); msg != "" {
				return fmt.Sprintf("node %d %s: search_similar %q differs from a scan of its values: %s", h.id, when, req.Query, msg)
			}
			continue
		}
		if msg := sameHits(a, fresh.Search(req)); msg != "" {
			return fmt.Sprintf("node %d %s: search %q (mode %q): its indexes answer differently from indexes built from its state: %s", h.id, when, req.Query, req.Mode, msg)
		}
	}
	return ""
}

// indexQueries are the checker's questions: each word alone, pairs in
// both modes, a phrase, and similarity to each word.
func indexQueries() []*core.Request {
	var qs []*core.Request
	for i, w := range indexWords {
		next := indexWords[(i+1)%len(indexWords)]
		qs = append(qs,
			&core.Request{Op: core.OpSearch, Query: w, Limit: 1000},
			&core.Request{Op: core.OpSearch, Query: w + " " + next, Limit: 1000},
			&core.Request{Op: core.OpSearch, Query: w + " " + next, Mode: core.SearchModeAny, Limit: 5},
			&core.Request{Op: core.OpSearch, Query: `"` + w + " " + next + `"`, Limit: 1000},
			&core.Request{Op: core.OpSearchSimilar, Query: w, TopK: 7},
		)
	}
	return qs
}

// sameHits compares two full-text answers: the same keys in the same
// order, scores equal up to float rounding.
func sameHits(a, b core.Response) string {
	if a.OK != b.OK {
		return fmt.Sprintf("ok %v against %v (%+v, %+v)", a.OK, b.OK, a.Error, b.Error)
	}
	if !a.OK {
		if a.Error.Code != b.Error.Code {
			return fmt.Sprintf("error %s against %s", a.Error.Code, b.Error.Code)
		}
		return ""
	}
	if len(a.Hits) != len(b.Hits) {
		return fmt.Sprintf("%d hits against %d (%v against %v)", len(a.Hits), len(b.Hits), a.Hits, b.Hits)
	}
	for i := range a.Hits {
		x, y := a.Hits[i], b.Hits[i]
		if x.Key != y.Key || math.Abs(x.Score-y.Score) > 1e-9*math.Max(1, math.Abs(y.Score)) {
			return fmt.Sprintf("hit %d is %s (%.9g) against %s (%.9g)", i, x.Key, x.Score, y.Key, y.Score)
		}
	}
	return ""
}

// scoreTolerance absorbs float32 rounding: the index may sum a dot product
// in another order than the scan does.
const scoreTolerance = 1e-5

// sameSimilar checks a similarity answer against the scan's: as many hits,
// the same scores rank by rank, and each hit's score the true score of its
// key. Keys may differ only where scores tie.
func sameSimilar(a, brute core.Response, truth map[string]float64) string {
	if a.OK != brute.OK {
		return fmt.Sprintf("ok %v against %v (%+v, %+v)", a.OK, brute.OK, a.Error, brute.Error)
	}
	if !a.OK {
		return ""
	}
	if len(a.Hits) != len(brute.Hits) {
		return fmt.Sprintf("%d hits against %d (%v against %v)", len(a.Hits), len(brute.Hits), a.Hits, brute.Hits)
	}
	for i, h := range a.Hits {
		if math.Abs(h.Score-brute.Hits[i].Score) > scoreTolerance {
			return fmt.Sprintf("hit %d scores %.7g against %.7g (%v against %v)", i, h.Score, brute.Hits[i].Score, a.Hits, brute.Hits)
		}
		if t, ok := truth[h.Key]; !ok || math.Abs(h.Score-t) > scoreTolerance {
			return fmt.Sprintf("hit %d is %s scored %.7g, but its value scores %.7g (held: %v)", i, h.Key, h.Score, t, ok)
		}
	}
	return ""
}

// valueVectors embeds every value of the state once, for all the
// similarity questions of one check; a value with no known word has none.
func valueVectors(state map[string]string, keys []string) map[string][]float32 {
	vecs := make(map[string][]float32, len(keys))
	for _, k := range keys {
		if v, err := simModel.model.Embed(state[k]); err == nil {
			vecs[k] = v
		}
	}
	return vecs
}

// bruteSimilar answers search_similar by scoring every value: the cosine of
// its embedding and the query's, best first, ties by key. truth holds every
// scored key's score.
func bruteSimilar(vecs map[string][]float32, keys []string, req *core.Request) (core.Response, map[string]float64) {
	m := simModel.model
	truth := map[string]float64{}
	q, err := m.Embed(req.Query)
	if err != nil {
		return core.ErrorResponse(core.CodeBadRequest, "%v", err), truth
	}
	var hits []core.Hit
	for _, k := range keys {
		v, ok := vecs[k]
		if !ok {
			continue
		}
		var dot float32
		for i := range q {
			dot += q[i] * v[i]
		}
		hits = append(hits, core.Hit{Key: k, Score: float64(dot)})
		truth[k] = float64(dot)
	}
	slices.SortStableFunc(hits, func(a, b core.Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	if k := int(req.TopK); len(hits) > k {
		hits = hits[:k]
	}
	if hits == nil {
		hits = []core.Hit{}
	}
	return core.Response{OK: true, Hits: hits}, truth
}
