package textidx

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// handCorpus is the corpus of TestBM25ByHand. After analysis:
// d1 = cat dog (|D| 2), d2 = cat×2 fish (3), d3 = dog bird×3 (4), d4 = fish (1);
// N = 4, avgdl = 10/4 = 2.5.
var handCorpus = map[string]string{
	"d1": "The cat and a dog.",
	"d2": "Cats, cat, fish!",
	"d3": "dog birds bird bird",
	"d4": "fish",
}

func newHandIndex() *Index {
	x := New(DefaultOptions())
	for _, k := range []string{"d1", "d2", "d3", "d4"} {
		x.Set(k, handCorpus[k])
	}
	return x
}

// TestBM25ByHand compares scores with numbers worked out from the formula
// outside this code (k1 = 1.2, b = 0.75). For example d1 for "cat":
// IDF = ln((4 − 2 + 0.5)/(2 + 0.5) + 1) = ln 2; the length part is
// 1.2·(1 − 0.75 + 0.75·2/2.5) = 1.02; score = ln 2 · 1·2.2/(1 + 1.02).
func TestBM25ByHand(t *testing.T) {
	x := newHandIndex()
	cases := []struct {
		q    Query
		want []Hit
	}{
		{Query{Text: "cat"}, []Hit{{"d2", 0.902321773509988}, {"d1", 0.7549127709068711}}},
		{Query{Text: "cat dog", Mode: Any}, []Hit{{"d1", 1.5098255418137423}, {"d2", 0.902321773509988}, {"d3", 0.5565415318364524}}},
		{Query{Text: "cat dog"}, []Hit{{"d1", 1.5098255418137423}}},
		{Query{Text: "birds"}, []Hit{{"d3", 1.6764178288082656}}},
		{Query{Text: `"dog bird"`}, []Hit{{"d3", 2.232959360644718}}},
		{Query{Text: `"bird dog"`}, []Hit{}},
		{Query{Text: `dog "bird dog"`, Mode: Any}, []Hit{{"d3", 0.5565415318364524 + 1.6764178288082656}, {"d1", 0.7549127709068711}}},
		{Query{Text: "fish", Limit: 1}, []Hit{{"d4", 0.9186287935131804}}},
		{Query{Text: "fish"}, []Hit{{"d4", 0.9186287935131804}, {"d2", 0.64072428455121}}},
	}
	for _, c := range cases {
		got, err := x.Search(c.q)
		if err != nil {
			t.Fatalf("%+v: %v", c.q, err)
		}
		if !hitsClose(got, c.want, 1e-9) {
			t.Errorf("%+v:\n got  %v\n want %v", c.q, got, c.want)
		}
	}
	if got := idf(4, 2); math.Abs(got-math.Ln2) > 1e-15 {
		t.Errorf("idf(4, 2) = %v, want ln 2", got)
	}
	// The Lucene IDF stays positive for a term in every document.
	if got := idf(4, 4); !(got > 0) || math.Abs(got-0.10536051565782635) > 1e-12 {
		t.Errorf("idf(4, 4) = %v, want ln(1 + 0.5/4.5) = 0.10536051565782635", got)
	}
	s := x.Stats()
	if s.Docs != 4 || s.Terms != 4 || s.Postings != 7 || s.AvgDocLen != 2.5 {
		t.Errorf("stats %+v, want 4 docs, 4 terms, 7 postings, avgdl 2.5", s)
	}
}

func hitsClose(got, want []Hit, eps float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Key != want[i].Key || math.Abs(got[i].Score-want[i].Score) > eps {
			return false
		}
	}
	return true
}

func TestTiesByKey(t *testing.T) {
	x := New(DefaultOptions())
	for _, k := range []string{"c", "a", "b", "d"} {
		x.Set(k, "identical words")
	}
	x.Set("e", "other words")
	got, err := x.Search(Query{Text: "identical", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Key != "a" || got[1].Key != "b" || got[2].Key != "c" || got[0].Score != got[2].Score {
		t.Errorf("got %v, want a, b, c with equal scores", got)
	}
}

func TestPhrases(t *testing.T) {
	x := New(DefaultOptions())
	x.Set("usa", "The United States of America")
	x.Set("usa2", "united states america")
	x.Set("split", "states united; america of the united")
	x.Set("news", "New York times")
	x.Set("twice", "new new york")
	cases := []struct {
		text string
		mode Mode
		want []string // keys, in any order
	}{
		// Stop words hold their place in the phrase and in the text.
		{`"united states of america"`, All, []string{"usa"}},
		{`"united states the america"`, All, []string{"usa"}}, // a stop word for a stop word
		{`"united states america"`, All, []string{"usa2"}},
		{`"united states"`, All, []string{"usa", "usa2"}},
		{`"states united"`, All, []string{"split"}},
		{`"new york"`, All, []string{"news", "twice"}},
		{`"new new york"`, All, []string{"twice"}},
		{`"york new"`, All, []string{}},
		{`"the united"`, All, []string{"usa", "usa2", "split"}}, // one term left: a plain term
		{`"new york" america`, All, []string{}},
		{`"new york" america`, Any, []string{"news", "twice", "usa", "usa2", "split"}},
		{`"york times" "united america"`, Any, []string{"news", "split"}},
		{`"" united`, All, []string{"usa", "usa2", "split"}}, // an empty phrase is nothing
	}
	for _, c := range cases {
		got, err := x.Search(Query{Text: c.text, Mode: c.mode})
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		if keys := hitKeys(got); !sameSet(keys, c.want) {
			t.Errorf("%s (%v): got %v, want %v", c.text, c.mode, keys, c.want)
		}
	}
}

func hitKeys(hs []Hit) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Key)
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestAnyAll(t *testing.T) {
	x := New(DefaultOptions())
	x.Set("a", "red apple")
	x.Set("b", "green apple")
	x.Set("c", "red car")
	for _, c := range []struct {
		text string
		mode Mode
		want []string
	}{
		{"red apple", All, []string{"a"}},
		{"red apple", Any, []string{"a", "b", "c"}},
		{"red unknownword", All, []string{}},
		{"red unknownword", Any, []string{"a", "c"}},
		{"apples", All, []string{"a", "b"}}, // stemmed like the text
		{"RED, Apple!", All, []string{"a"}},
		{"red red red", All, []string{"a", "c"}},
	} {
		got, err := x.Search(Query{Text: c.text, Mode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		if keys := hitKeys(got); !sameSet(keys, c.want) {
			t.Errorf("%q %v: got %v, want %v", c.text, c.mode, keys, c.want)
		}
	}
	// The doc that holds both terms ranks first in Any mode.
	got, _ := x.Search(Query{Text: "red apple", Mode: Any})
	if got[0].Key != "a" {
		t.Errorf("Any: got %v, want a first", got)
	}
}

func TestSearchErrors(t *testing.T) {
	o := DefaultOptions()
	o.QueryBytesMax = 40
	o.QueryTermsMax = 4
	o.ResultsMax = 20
	o.TokenBytesMax = 8
	x := New(o)
	x.Set("k", "some text about cats")
	cases := []struct {
		q    Query
		want error
	}{
		{Query{Text: ""}, ErrEmptyQuery},
		{Query{Text: "   \t\n"}, ErrEmptyQuery},
		{Query{Text: "?!.,;:-- ()"}, ErrEmptyQuery},
		{Query{Text: `""`}, ErrEmptyQuery},
		{Query{Text: strings.Repeat("a", 41)}, ErrQueryTooLarge},
		{Query{Text: "one two three four five"}, ErrQueryTooLarge},
		{Query{Text: "the of and to a"}, ErrQueryTooLarge}, // stop words count as words
		{Query{Text: `"cats`}, ErrBadQuery},
		{Query{Text: `cats "a b" "c`}, ErrBadQuery},
		{Query{Text: "cat\xff"}, ErrBadQuery},
		{Query{Text: "cats", Mode: Mode(7)}, ErrBadQuery},
		{Query{Text: "cats", Limit: -1}, ErrBadLimit},
		{Query{Text: "cats", Limit: 21}, ErrBadLimit},
	}
	for _, c := range cases {
		got, err := x.Search(c.q)
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("%+v: got %v, %v; want %v", c.q, got, err, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want.Error()+": ") {
			t.Errorf("%+v: error %q does not wrap %q with a detail", c.q, err, c.want)
		}
	}
	// Not errors: only stop words, unknown words, limits at the edges.
	for _, q := range []Query{
		{Text: "the of and"},
		{Text: "zebra"},
		{Text: "zebra", Mode: Any},
		{Text: "extraordinary"}, // a word over TokenBytesMax is skipped: nothing left
		{Text: "cats", Limit: 20},
		{Text: "cats", Limit: 0},
	} {
		got, err := x.Search(q)
		if err != nil || got == nil {
			t.Errorf("%+v: got %v, %v; want a result and no error", q, got, err)
		}
	}
}

func TestLimits(t *testing.T) {
	o := DefaultOptions()
	o.ResultsMax = 50
	x := New(o)
	for i := 0; i < 30; i++ {
		x.Set(fmt.Sprintf("k%02d", i), strings.Repeat("word ", i+1))
	}
	for _, c := range []struct{ limit, want int }{{0, 10}, {1, 1}, {25, 25}, {50, 30}} {
		got, err := x.Search(Query{Text: "word", Limit: c.limit})
		if err != nil || len(got) != c.want {
			t.Errorf("limit %d: %d hits, %v; want %d", c.limit, len(got), err, c.want)
		}
	}
	// A default Limit above ResultsMax is capped to it.
	o.ResultsMax = 3
	y := New(o)
	for i := 0; i < 5; i++ {
		y.Set(fmt.Sprint(i), "word")
	}
	if got, err := y.Search(Query{Text: "word"}); err != nil || len(got) != 3 {
		t.Errorf("default limit over ResultsMax 3: %d hits, %v", len(got), err)
	}
}

// A search's phrases have a bound on their work (PhraseChecksMax): a
// phrase of 32 words over values that repeat its words costs some 4,000
// lookups a value, and one such search over 20,000 values took 5 s on a
// server and held its writes for 3. Past the bound the search is refused
// with ErrQueryTooLarge, in both modes and on both All strategies; a
// phrase within it, and one whose rarest word is rare, answers.
// Thai (like Lao, Khmer and Myanmar) has no spaces between words: a
// sentence was one word of letters, over TokenBytesMax, and its value was
// never found, not by a word of it, not by the whole sentence. Each letter
// is a word now, with its marks, as each Han character is: a word finds
// every value holding its letters, and quoted, those holding them side by
// side.
func TestUnspacedScripts(t *testing.T) {
	x := New(DefaultOptions())
	x.Set("th", "ภาษาไทยเป็นภาษาที่สวยงาม") // "Thai is a beautiful language"
	x.Set("th2", "ไทยสวย")
	x.Set("km", "ភាសាខ្មែរគឺជាភាសាដ៏ស្រស់ស្អាត")
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"ภาษา", []string{"th"}},
		{`"ภาษาไทยเป็นภาษาที่สวยงาม"`, []string{"th"}},
		{`"ไทยสวย"`, []string{"th2"}},
		{"ไทย สวย", []string{"th", "th2"}},
		{`"ภาษาสวย"`, []string{}},
		{"ភាសា", []string{"km"}},
	} {
		hits, err := x.Search(Query{Text: c.query})
		if err != nil {
			t.Fatalf("%s: %v", c.query, err)
		}
		got := []string{}
		for _, h := range hits {
			got = append(got, h.Key)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.query, got, c.want)
		}
	}
}

func TestPhraseChecksBound(t *testing.T) {
	x := New(DefaultOptions())
	rep := strings.Repeat("alpha beta ", 128) // every kept position of both words
	for i := range 600 {
		x.Set(fmt.Sprintf("k%03d", i), rep)
	}
	x.Set("odd", strings.Repeat("alpha beta ", 14)+"gamma alpha beta")
	costly := `"` + strings.Repeat("alpha beta ", 15) + `alpha alpha"` // 32 words; 600 x 3,968 lookups
	for _, strategy := range []allStrategy{allByForward, allByCounting} {
		x.allStrategy = strategy
		for _, mode := range []Mode{All, Any} {
			if hits, err := x.Search(Query{Text: costly, Mode: mode}); !errors.Is(err, ErrQueryTooLarge) {
				t.Fatalf("strategy %d, %s: %d hits, %v; want ErrQueryTooLarge", strategy, mode, len(hits), err)
			}
		}
		// The rarest word of a phrase is where it is tried: "gamma" once,
		// in one value, so the phrase of 31 words costs 30 lookups.
		hits, err := x.Search(Query{Text: `"` + strings.Repeat("alpha beta ", 14) + `gamma alpha beta"`})
		if err != nil || len(hits) != 1 || hits[0].Key != "odd" {
			t.Fatalf("strategy %d: a phrase around a rare word: %v, %v", strategy, hits, err)
		}
		if x.search.checks != 30 {
			t.Fatalf("strategy %d: a phrase around a word held once took %d lookups", strategy, x.search.checks)
		}
		hits, err = x.Search(Query{Text: `"alpha beta alpha"`, Limit: 1000})
		if err != nil || len(hits) != 601 {
			t.Fatalf("strategy %d: a short phrase: %d hits, %v", strategy, len(hits), err)
		}
	}
}

func TestUpdateRemoveReset(t *testing.T) {
	x := New(DefaultOptions())
	keysFor := func(text string) []string {
		t.Helper()
		got, err := x.Search(Query{Text: text, Mode: Any, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return hitKeys(got)
	}
	x.Set("a", "apple banana")
	x.Set("b", "banana cherry")
	if x.Len() != 2 || !sameSet(keysFor("banana"), []string{"a", "b"}) {
		t.Fatalf("len %d banana %v", x.Len(), keysFor("banana"))
	}
	x.Set("a", "cherry date") // replaces: apple and banana are gone from a
	if !sameSet(keysFor("apple"), nil) || !sameSet(keysFor("banana"), []string{"b"}) || !sameSet(keysFor("cherry"), []string{"a", "b"}) {
		t.Errorf("after update: apple %v banana %v cherry %v", keysFor("apple"), keysFor("banana"), keysFor("cherry"))
	}
	if s := x.Stats(); s.Docs != 2 || s.Terms != 3 || s.Postings != 4 {
		t.Errorf("stats %+v, want 2 docs, 3 terms (banana cherry date), 4 postings", s)
	}
	x.Remove("zzz") // absent: nothing happens
	x.Remove("b")
	if x.Len() != 1 || !sameSet(keysFor("banana"), nil) || !sameSet(keysFor("cherry"), []string{"a"}) {
		t.Errorf("after remove: len %d banana %v cherry %v", x.Len(), keysFor("banana"), keysFor("cherry"))
	}
	x.Remove("b")
	x.Set("a", "\x00binary") // a non-text value removes the old one
	if x.Len() != 0 || !sameSet(keysFor("cherry"), nil) {
		t.Errorf("after a binary value: len %d cherry %v", x.Len(), keysFor("cherry"))
	}
	if s := x.Stats(); s.Docs != 0 || s.Terms != 0 || s.Postings != 0 || s.AvgDocLen != 0 {
		t.Errorf("empty index stats %+v", s)
	}
	x.Set("c", "elderberry fig")
	x.Reset()
	if x.Len() != 0 || !sameSet(keysFor("fig"), nil) || x.Stats().Terms != 0 {
		t.Errorf("after Reset: len %d fig %v", x.Len(), keysFor("fig"))
	}
	x.Set("c", "fig")
	if !sameSet(keysFor("fig"), []string{"c"}) {
		t.Errorf("after Reset and Set: fig %v", keysFor("fig"))
	}
}

func TestPutChecksDoc(t *testing.T) {
	big := DefaultOptions()
	small := DefaultOptions()
	small.TermsPerDocMax = 2
	d := Analyze("one two three four", big)
	x := New(small)
	defer func() {
		if recover() == nil {
			t.Error("Put of a Doc over the index's TermsPerDocMax did not panic")
		}
	}()
	x.Put("k", d)
}

func TestOptionsValidate(t *testing.T) {
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(*Options){
		func(o *Options) { o.K1 = -1 },
		func(o *Options) { o.K1 = math.NaN() },
		func(o *Options) { o.K1 = math.Inf(1) },
		func(o *Options) { o.B = 1.5 },
		func(o *Options) { o.B = math.NaN() },
		func(o *Options) { o.TokenBytesMax = 0 },
		func(o *Options) { o.TermsPerDocMax = 0 },
		func(o *Options) { o.PositionsPerTermMax = -1 },
		func(o *Options) { o.QueryBytesMax = 0 },
		func(o *Options) { o.QueryTermsMax = 0 },
		func(o *Options) { o.ResultsMax = 0 },
	} {
		o := DefaultOptions()
		mutate(&o)
		if err := o.Validate(); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%+v: Validate = %v, want ErrBadOptions", o, err)
		}
	}
	if err := (Options{}).Validate(); err == nil {
		t.Error("zero Options validated")
	}
}

// TestDocTakenOnce: the first Index to take a Doc keeps its forward array,
// others (and a second key in the same Index) copy it; every index answers
// as one given Docs of its own.
func TestDocTakenOnce(t *testing.T) {
	o := DefaultOptions()
	texts := []string{"the red cats run", "a red dog runs with cats", "green birds, red birds"}
	docs := make([]Doc, len(texts))
	for i, s := range texts {
		docs[i] = Analyze(s, o)
	}
	x, y, freshX, freshY := New(o), New(o), New(o), New(o)
	for i, d := range docs {
		x.Put(fmt.Sprint("k", i), d)
		y.Put(fmt.Sprint("k", i), d)
		x.Put(fmt.Sprint("again", i), d)
		freshX.Put(fmt.Sprint("k", i), Analyze(texts[i], o))
		freshX.Put(fmt.Sprint("again", i), Analyze(texts[i], o))
		freshY.Put(fmt.Sprint("k", i), Analyze(texts[i], o))
	}
	x.Remove("again0")
	freshX.Remove("again0")
	for _, q := range []string{"red", "cat", "bird", `"red bird"`, "run dog"} {
		for _, mode := range []Mode{All, Any} {
			for _, pair := range [][2]*Index{{x, freshX}, {y, freshY}} {
				got, err := pair[0].Search(Query{Text: q, Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				want, _ := pair[1].Search(Query{Text: q, Mode: mode})
				if len(got) != len(want) || (len(got) > 0 && !slicesEqualHits(got, want)) {
					t.Fatalf("%q: %v, want %v", q, got, want)
				}
			}
		}
	}
}

func slicesEqualHits(a, b []Hit) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
