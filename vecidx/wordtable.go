package vecidx

import "dkv/internal/ascii"

// A wordTable finds a word's id for Embed, which looks up every word of a
// value: some 170 for 1 KB of text. Go's map answers the same question,
// but costs a string hash, a probe of a 1.5 MB table and a key comparison
// through a pointer to wherever the key was allocated, and took half of
// Embed's time. The table is open addressing over 32-byte slots, at most
// half full, each holding the word's first 16 bytes, its length, a tag of
// its hash and its id: a word of up to 16 bytes (nearly every English
// word) is found or ruled out by the slot alone, so that a lookup that
// misses the cache misses it once. (With 4-byte slots holding a tag and
// the id, a lookup read the slot, then the word's offset, then its bytes,
// each from anywhere in memory: three misses, a seventh of a loaded
// server's time; with 16-byte slots holding 8 bytes of the word, the words
// of 9–16 bytes still cost three, and the comparison of their bytes was
// most of the lookups' time.) Longer words compare their remaining bytes
// with the words' bytes, which lie end to end in id order. Lookups hash the token's bytes in 8-byte
// words straight from the text, lower-casing ASCII on the way (every byte
// of an ASCII token is a letter, digit, ' or -, which OR 0x20 maps to its
// lower case), so the common word costs no copy; and Embed loads the home
// slots of a batch of words before it looks any of them up (see probe), so
// that their cache misses overlap.
type wordTable struct {
	slots []wordSlot
	mask  uint64 // len(slots)-1
	text  string // every word's bytes, in id order, end to end
	off   []uint32
}

// wordSlot is one word of the table, or empty (meta 0).
type wordSlot struct {
	head  uint64 // the word's first 8 bytes, little-endian, zero-padded
	head2 uint64 // its next 8 bytes, the same way
	meta  uint64 // id+1 | stop<<31 | length<<32 | tag<<40, tag the hash's top 24 bits
	// word is a caller's code for the word (Model.WithWordCodes), 0 if
	// none: in the slot, which a lookup has loaded anyway, it costs the
	// caller no cache miss of its own. It also makes a slot 32 bytes, two
	// to a cache line.
	word uint64
}

const (
	// asciiFold sets the bit that makes an upper-case ASCII letter lower
	// case, in every byte of a word.
	asciiFold = 0x2020202020202020
	// wordBytesMaxTable bounds a word's length in meta's 8 bits.
	wordBytesMaxTable = 255
	// slotStop marks a stop word's slot, so that Embed skips it without
	// reading anything else.
	slotStop = 1 << 31
)

// newWordTable indexes words; stop[i] marks word i a stop word.
func newWordTable(words []string, stop []bool) *wordTable {
	if len(words) >= modelWordsMax || modelWordsMax >= slotStop || len(stop) != len(words) {
		panic("vecidx: vocabulary too large for the word table")
	}
	size := 1
	for size < 2*len(words) {
		size *= 2
	}
	t := &wordTable{slots: make([]wordSlot, size), mask: uint64(size - 1), off: make([]uint32, 0, len(words)+1)}
	n := 0
	for _, w := range words {
		n += len(w)
	}
	b := make([]byte, 0, n)
	for _, w := range words {
		t.off = append(t.off, uint32(len(b)))
		b = append(b, w...)
	}
	t.off = append(t.off, uint32(len(b)))
	t.text = string(b)
	for id, w := range words {
		if len(w) > wordBytesMaxTable {
			panic("vecidx: word too long for the word table")
		}
		h, head, head2 := hashWord(w, 0, len(w), false)
		i := h & t.mask
		for t.slots[i].meta != 0 {
			i = (i + 1) & t.mask
		}
		meta := slotMeta(h, len(w)) | uint64(id+1)
		if stop[id] {
			meta |= slotStop
		}
		t.slots[i] = wordSlot{head: head, head2: head2, meta: meta}
	}
	return t
}

// slotMeta is the length and tag part of a slot's meta for a word of hash
// h and n bytes.
func slotMeta(h uint64, n int) uint64 { return uint64(n)<<32 | h>>40<<40 }

// word is word id's bytes.
func (t *wordTable) word(id int) string { return t.text[t.off[id]:t.off[id+1]] }

// home is the slot where the search for a word of hash h starts.
func (t *wordTable) home(h uint64) wordSlot { return t.slots[h&t.mask] }

// find returns the id of the word s[start:end], lower-cased first when
// fold is set (then every byte must be an ASCII letter, digit, ' or -),
// and whether it is a stop word.
func (t *wordTable) find(s string, start, end int, fold bool) (id int32, stop, ok bool) {
	h, head, head2 := hashWord(s, start, end, fold)
	return t.probe(s, start, end, fold, h, head, head2, t.home(h))
}

// probe is find for a word whose hash and heads hashWord gave, and whose
// home slot first the caller has loaded already.
func (t *wordTable) probe(s string, start, end int, fold bool, h, head, head2 uint64, first wordSlot) (id int32, stop, ok bool) {
	id, stop, _, ok = t.probeCode(s, start, end, fold, h, head, head2, first)
	return id, stop, ok
}

// probeCode is probe that also returns the word's slot's code (wordSlot.word).
func (t *wordTable) probeCode(s string, start, end int, fold bool, h, head, head2 uint64, first wordSlot) (id int32, stop bool, code uint64, ok bool) {
	n := end - start
	if n > wordBytesMaxTable {
		return 0, false, 0, false
	}
	want := slotMeta(h, n)
	e := first
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		if i != h&t.mask {
			e = t.slots[i]
		}
		if e.meta == 0 {
			return 0, false, 0, false
		}
		if e.head != head || e.head2 != head2 || e.meta&^(1<<32-1) != want {
			continue
		}
		id := int32(e.meta&(slotStop-1)) - 1
		stop := e.meta&slotStop != 0
		if n <= 16 {
			return id, stop, e.word, true
		}
		w := t.word(int(id))[16:]
		same := true
		if fold {
			for j := range w {
				if s[start+16+j]|0x20 != w[j] {
					same = false
					break
				}
			}
		} else {
			same = s[start+16:end] == w
		}
		if same {
			return id, stop, e.word, true
		}
	}
}

// hashWord hashes s[start:end], lower-cased when fold is set, 8 bytes at a
// time, and returns the hash and the word's first and next 8 bytes
// (zero-padded). Bytes past end are masked off, so all three depend only
// on the word.
func hashWord(s string, start, end int, fold bool) (h, head, head2 uint64) {
	h = uint64(end-start) * 0x9e3779b97f4a7c15
	for i := start; i < end; i += 8 {
		var x uint64
		if i+8 <= len(s) {
			b := s[i : i+8]
			x = ascii.Load8(b)
		} else {
			for j := min(len(s), i+8) - 1; j >= i; j-- {
				x = x<<8 | uint64(s[j])
			}
		}
		if fold {
			x |= asciiFold
		}
		if n := end - i; n < 8 {
			x &= 1<<(8*n) - 1
		}
		switch i - start {
		case 0:
			head = x
		case 8:
			head2 = x
		}
		h ^= x
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	h *= 0x94d049bb133111eb
	return h ^ h>>29, head, head2
}
