package textidx

import "slices"

// forward is a view of one document's forward index: for each of its n
// distinct terms, in the Doc's order (by the high half of the term's hash,
// then first occurrence), a tag of the term's hash, the term's id in the
// Index, how often it occurs and its kept positions. Removing a document
// reads its term ids; All-mode searches that walk one term's postings look
// the other terms up in it, and phrases read its positions.
//
// It lies in one []uint32 in one of two layouts. Wide, for any document:
//
//	tags (n, hash>>32) | ids (n) | freqs (n) | starts (n+1) | positions
//
// Narrow, for a document of fewer than narrowWordsMax indexed words whose
// last word is at a position below it (every value of up to some 300 KB of
// English): the ids, then 16-bit fields two to a word, the lower half
// first:
//
//	ids (n) | tags (n, hash>>48) | freqs (n) | starts (n+1) | positions
//
// Position i of the positions is kept positions i of their term, the
// term's from starts[t] to starts[t+1]. A 1 KB English value has ~80 terms
// and ~115 kept positions: 441 words wide, 260 narrow. The forward indexes
// were two thirds of the full-text index's memory, and on a node taking
// new values every byte of it is a fresh page (docs/PERFORMANCE.md,
// Indexes), so narrow is the layout nearly every document gets.
type forward struct {
	data   []uint32
	n      int
	narrow bool
}

// narrowWordsMax bounds a narrow document's indexed words and positions,
// so that its freqs, starts and positions fit 16 bits.
const narrowWordsMax = 1 << 16

// forwardWords is the length of the forward index of n terms and kept
// positions.
func forwardWords(n, kept int, narrow bool) int {
	if narrow {
		return n + (3*n+1+kept+1)/2
	}
	return 4*n + 1 + kept
}

// half is 16-bit field j of a narrow layout.
func (f forward) half(j int) uint32 { return halfOf(f.data[f.n:], j) }

// halfOf is 16-bit field j of halves, the lower half of a word first.
func halfOf(halves []uint32, j int) uint32 { return halves[j>>1] >> (16 * (j & 1)) & 0xffff }

func (f forward) setHalf(j int, v uint32) {
	if v >= narrowWordsMax {
		panic("textidx: a narrow forward index's field over 16 bits")
	}
	w := &f.data[f.n+j>>1]
	shift := 16 * (j & 1)
	*w = *w&^(0xffff<<shift) | v<<shift
}

// ids are the terms' ids in the Index.
func (f forward) ids() []uint32 {
	if f.narrow {
		return f.data[:f.n:f.n]
	}
	return f.data[f.n : 2*f.n : 2*f.n]
}

// tagOf is the tag this layout keeps of a term's hash.
func (f forward) tagOf(hash uint64) uint32 {
	if f.narrow {
		return uint32(hash >> 48)
	}
	return uint32(hash >> 32)
}

func (f forward) tag(i int) uint32 {
	if f.narrow {
		return f.half(i)
	}
	return f.data[i]
}

func (f forward) freq(i int) uint32 {
	if f.narrow {
		return f.half(f.n + i)
	}
	return f.data[2*f.n+i]
}

// start is where term i's positions start among the positions; start(n)
// is how many there are.
func (f forward) start(i int) int {
	if f.narrow {
		return int(f.half(2*f.n + i))
	}
	return int(f.data[3*f.n+i])
}

// pos is kept position k.
func (f forward) pos(k int) uint32 {
	if f.narrow {
		return f.half(3*f.n + 1 + k)
	}
	return f.data[4*f.n+1+k]
}

// set writes term i's tag (of hash) and frequency and where its positions
// start; build fills a fresh forward index with it, then the positions.
func (f forward) set(i int, hash uint64, freq uint32, start int) {
	if f.narrow {
		f.setHalf(i, f.tagOf(hash))
		f.setHalf(f.n+i, freq)
	} else {
		f.data[i] = f.tagOf(hash)
		f.data[2*f.n+i] = freq
	}
	f.setStart(i, start)
}

func (f forward) setStart(i, start int) {
	if f.narrow {
		f.setHalf(2*f.n+i, uint32(start))
		return
	}
	f.data[3*f.n+i] = uint32(start)
}

func (f forward) setPos(k int, p uint32) {
	if f.narrow {
		f.setHalf(3*f.n+1+k, p)
		return
	}
	f.data[4*f.n+1+k] = p
}

// find returns the index among the document's terms of term tid, whose
// hash is hash. (All-mode searches call it for every posting of their
// rarest term: one loop per layout, so the layout is tested once.)
func (f forward) find(tid uint32, hash uint64) (int, bool) {
	n, tag := f.n, f.tagOf(hash)
	if f.narrow {
		halves := f.data[n:] // sliced once: half would slice at every step
		i, hi := 0, n        // the first tag >= the term's lies in [i, hi]
		for i < hi {
			mid := int(uint(i+hi) >> 1)
			if halfOf(halves, mid) < tag {
				i = mid + 1
			} else {
				hi = mid
			}
		}
		for ; i < n && halfOf(halves, i) == tag; i++ {
			if f.data[i] == tid {
				return i, true
			}
		}
		return 0, false
	}
	i, _ := slices.BinarySearch(f.data[:n], tag)
	for ; i < n && f.data[i] == tag; i++ {
		if f.data[n+i] == tid {
			return i, true
		}
	}
	return 0, false
}

// hasPos reports whether term i is kept at position p.
func (f forward) hasPos(i int, p uint32) bool {
	k, end := f.start(i), f.start(i+1)
	for hi := end; k < hi; { // the first position >= p lies in [k, hi]
		mid := int(uint(k+hi) >> 1)
		if f.pos(mid) < p {
			k = mid + 1
		} else {
			hi = mid
		}
	}
	return k < end && f.pos(k) == p
}
