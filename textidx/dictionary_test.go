package textidx

import (
	"fmt"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

// TestDictionaryModel drives the dictionary with hashes drawn from small
// ranges, so that home slots and tags collide and the backward-shift
// deletion and the resize run, against a map.
func TestDictionaryModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const termsMax = 1500
		terms := make([]termEntry, termsMax)
		for i := range terms {
			terms[i].text = fmt.Sprintf("t%d", i)
		}
		homes := rapid.SampledFrom([]uint64{4, 64, 4096}).Draw(t, "homes")
		tags := rapid.SampledFrom([]uint64{1, 3, 1 << 20}).Draw(t, "tags")
		hashFor := func(tid int) uint64 {
			h := mix64(uint64(tid))
			return (h>>32%tags)<<32 | (h & 0xffffffff % homes)
		}
		hashes := make([]uint64, termsMax) // the entries keep only a half
		for i := range terms {
			hashes[i] = hashFor(i)
			terms[i] = newTermEntry(terms[i].text, hashes[i])
		}
		var d dictionary
		in := map[int]bool{}
		steps := rapid.IntRange(1, 3000).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			tid := rapid.IntRange(0, termsMax-1).Draw(t, "tid")
			te := &terms[tid]
			got, ok := d.find(hashes[tid], te.text, terms)
			if ok != in[tid] || ok && got != uint32(tid) {
				t.Fatalf("find %d: got %d, %v; model %v", tid, got, ok, in[tid])
			}
			if in[tid] {
				if rapid.IntRange(0, 2).Draw(t, "remove") > 0 {
					d.remove(hashes[tid], uint32(tid), terms)
					delete(in, tid)
				}
			} else {
				d.insert(hashes[tid], uint32(tid), terms)
				in[tid] = true
			}
			if d.count != len(in) {
				t.Fatalf("count %d, model %d", d.count, len(in))
			}
		}
		// Everything in the model is still found, and nothing else is.
		for tid := range terms {
			got, ok := d.find(hashes[tid], terms[tid].text, terms)
			if ok != in[tid] || ok && got != uint32(tid) {
				t.Fatalf("final find %d: got %d, %v; model %v", tid, got, ok, in[tid])
			}
		}
	})
}

func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func TestSortKeys(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOf(rapid.Uint64()).Draw(t, "keys")
		want := append([]uint64(nil), keys...)
		for i := 1; i < len(want); i++ { // a plain insertion sort as the model
			for j := i; j > 0 && want[j-1] > want[j]; j-- {
				want[j-1], want[j] = want[j], want[j-1]
			}
		}
		got := sortKeys(keys, make([]uint64, len(keys)))
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	})
}

// TestDictionaryGrow fills the table past several doublings, then empties
// it in a scattered order.
func TestDictionaryGrow(t *testing.T) {
	const n = 5000
	terms := make([]termEntry, n)
	hashes := make([]uint64, n)
	var d dictionary
	for i := range terms {
		hashes[i] = mix64(uint64(i)) &^ 0xff00 // some shared homes
		terms[i] = newTermEntry(fmt.Sprint(i), hashes[i])
		d.insert(hashes[i], uint32(i), terms)
	}
	if len(d.slots) < 2*n || d.count != n {
		t.Fatalf("%d slots for %d terms", len(d.slots), d.count)
	}
	for i := 0; i < n; i += 3 {
		d.remove(hashes[i], uint32(i), terms)
	}
	for i := range terms {
		got, ok := d.find(hashes[i], terms[i].text, terms)
		if want := i%3 != 0; ok != want || ok && got != uint32(i) {
			t.Fatalf("find %d: %d, %v; want present %v", i, got, ok, want)
		}
	}
}

func TestTermEntrySize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) == 8 && unsafe.Sizeof(termEntry{}) != 64 {
		t.Errorf("termEntry is %d bytes, not one 64-byte cache line: adjust headBytes", unsafe.Sizeof(termEntry{}))
	}
}
