package textidx

import (
	"fmt"
	"iter"
)

// A term's postings list is kept in two parts: its full chunks, fixed
// arrays of chunkPostings postings, oldest first, and its tail, a slice
// of the newest postings (all of them while the list is short). A posting
// is appended to the tail. A full tail of chunk size becomes the list's
// next chunk as it is, and a new tail starts in a chunk from the index's
// free list, so a long list is never copied to grow: as one slice grown
// by halves, a list was copied whole at every growth (in process about 4
// µs of a 1 KB write's 60, and the old arrays went to the collector), and
// 27% of its slots were unused on average. Compaction packs the live
// postings into the list's first chunks and frees the chunks it empties,
// where the next list to grow finds them: a store whose values are
// replaced again and again keeps about the memory of its live postings,
// where the slices kept the room of their longest length.

// chunkPostings is the postings a chunk holds: 4 KiB. (An Index keeps it
// in chunkLen, which tests make small.)
const chunkPostings = 512

// chunksFreeMax bounds the free chunks an index keeps for lists to grow
// into (4 MiB); more are left to the collector.
const chunksFreeMax = 1024

// A postingChunk is a slice of exactly chunkLen postings, its capacity.
type postingChunk []posting

// postings yields term tid's postings list in the order they were put, a
// part at a time: its chunks, then its tail.
func (x *Index) postings(tid uint32) iter.Seq[[]posting] {
	return func(yield func([]posting) bool) {
		te := &x.terms[tid]
		if int(te.n) > len(te.tail) {
			for _, c := range x.chunks[tid] {
				if !yield(c) {
					return
				}
			}
		}
		yield(te.tail)
	}
}

// postingsPerTermMax bounds one term's list, live and dead postings, so
// that its count and twice its dead count (kill's test) fit in 32 bits.
const postingsPerTermMax = 1<<31 - 1

// appendPosting adds p at the end of term tid's list.
func (x *Index) appendPosting(tid uint32, p posting) {
	te := &x.terms[tid]
	if te.n >= postingsPerTermMax {
		panic(fmt.Sprintf("textidx: term %q holds %d postings, the most one term may", te.text, te.n))
	}
	if len(te.tail) == cap(te.tail) {
		x.growTail(tid, te)
	}
	te.tail = append(te.tail, p)
	te.n++
}

// growTail makes room in te's full tail. A short list's tail grows by half
// (copied, as a slice grows) until half a chunk; then it moves into a
// chunk, and a full chunk-sized tail becomes one of the list's chunks.
func (x *Index) growTail(tid uint32, te *termEntry) {
	c := cap(te.tail)
	grown := max(4, c+c/2)
	switch {
	case c == x.chunkLen:
		x.chunks[tid] = append(x.chunks[tid], postingChunk(te.tail))
		te.tail = x.newChunk()[:0]
	case grown > x.chunkLen/2:
		tail := x.newChunk()[:len(te.tail)]
		copy(tail, te.tail)
		x.postingSlots -= int64(c)
		te.tail = tail
	default:
		tail := make([]posting, len(te.tail), grown)
		copy(tail, te.tail)
		x.postingSlots += int64(cap(tail) - c)
		te.tail = tail
	}
}

// newChunk returns a chunk for a tail: a free one, or a new one.
func (x *Index) newChunk() postingChunk {
	if n := len(x.chunksFree); n > 0 {
		c := x.chunksFree[n-1]
		x.chunksFree[n-1] = nil
		x.chunksFree = x.chunksFree[:n-1]
		return c
	}
	x.postingSlots += int64(x.chunkLen)
	return make(postingChunk, x.chunkLen)
}

// freeChunk gives back a chunk no list uses.
func (x *Index) freeChunk(c postingChunk) {
	if len(x.chunksFree) < chunksFreeMax {
		x.chunksFree = append(x.chunksFree, c[:x.chunkLen])
		return
	}
	x.postingSlots -= int64(x.chunkLen)
}

// freeTail gives back the storage of a tail no list uses.
func (x *Index) freeTail(tail []posting) {
	if cap(tail) == x.chunkLen {
		x.freeChunk(tail[:x.chunkLen])
		return
	}
	x.postingSlots -= int64(cap(tail))
}

// compact drops the dead postings of term tid, keeping the live ones in
// order. Each dead posting is dropped once, and a compaction happens only
// when at least half of a list is dead, so its cost is O(1) per removal,
// amortised.
func (x *Index) compact(tid uint32) {
	te := &x.terms[tid]
	chunks := x.chunks[tid]
	if len(chunks)*x.chunkLen+len(te.tail) != int(te.n) {
		panic("textidx: a term's postings count disagrees with its chunks and tail")
	}
	// The live postings are packed in order into the list's own parts
	// (its chunks, then its tail): the write at (wp, wo) never passes the
	// posting being read, so it overwrites only postings already read.
	kept, dropped := 0, 0
	wp, wo := 0, 0
	for rp := 0; rp <= len(chunks); rp++ {
		part := te.tail
		if rp < len(chunks) {
			part = chunks[rp]
		}
		for _, p := range part {
			if x.isLive(p.doc) {
				dst := te.tail
				if wp < len(chunks) {
					dst = chunks[wp]
				}
				dst[wo] = p
				kept++
				if wo++; wo == len(dst) {
					wp, wo = wp+1, 0
				}
				continue
			}
			d := &x.docs[p.doc]
			if d.refs == 0 {
				panic("textidx: a posting names a document id that was freed")
			}
			d.refs--
			dropped++
			if d.refs == 0 {
				x.docs[p.doc] = docEntry{}
				x.docsFree = append(x.docsFree, p.doc)
			}
		}
	}
	if dropped != int(te.dead) {
		panic(fmt.Sprintf("textidx: term %q counted %d dead postings, found %d", te.text, te.dead, dropped))
	}
	te.dead = 0
	if kept == 0 {
		for _, c := range chunks {
			x.freeChunk(c)
		}
		x.freeTail(te.tail)
		delete(x.chunks, tid)
		x.textBytes -= int64(len(te.text))
		x.dict.remove(termHash(te.text), tid, x.terms)
		*te = termEntry{}
		x.termsFree = append(x.termsFree, tid)
		return
	}
	// The kept postings fill the first full chunks, and rem more lie in
	// the next part: that part becomes the tail, and the parts after it
	// are freed.
	full, rem := kept/x.chunkLen, kept%x.chunkLen
	if full < len(chunks) {
		for _, c := range chunks[full+1:] {
			x.freeChunk(c)
		}
		x.freeTail(te.tail)
		te.tail = chunks[full][:rem]
		clear(chunks[full:])
		chunks = chunks[:full]
	} else {
		te.tail = te.tail[:rem]
	}
	te.n = uint32(kept)
	if full == 0 {
		delete(x.chunks, tid)
	} else {
		x.chunks[tid] = chunks
	}
	// Give back memory after many removals: a short list's tail keeps
	// half its room free.
	if c := cap(te.tail); full == 0 && c > 64 && rem < c/4 {
		smaller := make([]posting, rem, 2*rem)
		copy(smaller, te.tail)
		x.freeTail(te.tail)
		x.postingSlots += int64(cap(smaller))
		te.tail = smaller
	}
}
