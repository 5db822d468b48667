package textidx

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// widen returns a copy of d with its forward index in the wide layout, as
// Analyze lays out a document of 65,536 words or more: the model tests
// index a random mix of both layouts with it.
func widen(d Doc) Doc {
	if !d.narrow || d.nterms() == 0 {
		return d
	}
	n, from := d.nterms(), d.forward()
	w := d
	w.narrow = false
	w.fwd = make([]uint32, forwardWords(n, from.start(n), false)+1)
	to := w.forward()
	for i := range n {
		to.set(i, d.hashes[i], from.freq(i), from.start(i))
	}
	to.setStart(n, from.start(n))
	for k := range from.start(n) {
		to.setPos(k, from.pos(k))
	}
	return w
}

// TestForwardFindSharedTag: two terms of one document whose hashes share
// their tag are told apart by term id, in both layouts.
func TestForwardFindSharedTag(t *testing.T) {
	hash := func(tag16, tag32 uint64, low uint32) uint64 { return tag16<<48 | tag32<<32 | uint64(low) }
	// Three terms, tags 5 7 7 in both layouts; term ids 10 20 30, freqs 1 2 3.
	hashes := []uint64{hash(5, 5, 1), hash(7, 7, 2), hash(7, 7, 3)}
	for _, narrow := range []bool{true, false} {
		f := forward{data: make([]uint32, forwardWords(3, 0, narrow)), n: 3, narrow: narrow}
		for i, h := range hashes {
			f.set(i, h, uint32(i+1), 0)
			f.ids()[i] = uint32(10 * (i + 1))
		}
		f.setStart(3, 0)
		for _, c := range []struct {
			tid  uint32
			hash uint64
			want int
			ok   bool
		}{
			{10, hashes[0], 0, true}, {20, hashes[1], 1, true}, {30, hashes[2], 2, true},
			{40, hashes[1], 0, false}, {10, hash(6, 6, 1), 0, false}, {30, hashes[0], 0, false}, {10, hash(8, 8, 1), 0, false},
		} {
			got, ok := f.find(c.tid, c.hash)
			if ok != c.ok || ok && got != c.want {
				t.Errorf("narrow %v: find(%d, %x) = %d, %v; want %d, %v", narrow, c.tid, c.hash, got, ok, c.want, c.ok)
			}
			if ok && f.freq(got) != uint32(got+1) {
				t.Errorf("narrow %v: freq(%d) = %d", narrow, got, f.freq(got))
			}
		}
	}
}

// TestForwardLayouts: a value of under 65,536 words is laid out narrow,
// a longer one wide, and an index holding both finds their words, phrases
// and frequencies alike, also at positions past 16 bits.
func TestForwardLayouts(t *testing.T) {
	o := DefaultOptions()
	short := "red fox jumps over the lazy dog, red fox again"
	var long strings.Builder
	for long.Len() < 7*narrowWordsMax { // "wNNN " fillers: over 65,536 words
		fmt.Fprintf(&long, "w%d ", long.Len()%997)
	}
	long.WriteString(short)
	ds, dl := Analyze(short, o), Analyze(long.String(), o)
	if !ds.narrow || dl.narrow {
		t.Fatalf("narrow: short %v, long %v; want true, false", ds.narrow, dl.narrow)
	}
	checkDocShape(t, ds, o)
	checkDocShape(t, dl, o)
	if ps := dl.Positions("fox"); len(ps) != 2 || ps[0] < narrowWordsMax {
		t.Fatalf("long: fox at %v", ps)
	}
	if got := dl.Freq("red"); got != 2 {
		t.Fatalf("long: red %d times, want 2", got)
	}
	if w := widen(ds); w.narrow || !slices.Equal(w.Positions("fox"), ds.Positions("fox")) || w.Freq("fox") != 2 {
		t.Fatalf("widened short Doc: narrow %v, fox at %v, %d times", w.narrow, w.Positions("fox"), w.Freq("fox"))
	}
	x := New(o)
	x.Put("short", ds)
	x.Put("long", dl)
	x.Put("wide", widen(Analyze(short, o)))
	for _, q := range []string{`"red fox"`, `"lazy dog" fox`, "jumps again"} {
		for _, strategy := range []allStrategy{allByForward, allByCounting} {
			x.allStrategy = strategy
			hits, err := x.Search(Query{Text: q, Mode: All, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, h := range hits {
				keys = append(keys, h.Key)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"long", "short", "wide"}) {
				t.Errorf("%s (strategy %d): %v", q, strategy, keys)
			}
		}
	}
	if hits, err := x.Search(Query{Text: `"fox red"`, Mode: All, Limit: 10}); err != nil || len(hits) != 0 {
		t.Errorf(`"fox red": %v, %v; want no hits`, hits, err)
	}
	x.Remove("long")
	x.Remove("wide")
	if hits, err := x.Search(Query{Text: `"red fox"`, Mode: All, Limit: 10}); err != nil || len(hits) != 1 || hits[0].Key != "short" {
		t.Errorf(`after removals, "red fox": %v, %v`, hits, err)
	}
}
