package vecidx

// A wordTable finds a word's id for Embed, which looks up every word of a
// value: some 170 for 1 KB of text. Go's map answers the same question,
// but costs a string hash, a probe of a 1.5 MB table and a key comparison
// through a pointer to wherever the key was allocated, and took half of
// Embed's time. The table is open addressing over 32-bit slots (a tag of
// the hash and the id), at most half full, so that 44k words take 512 KB;
// the words' bytes lie end to end in id order, so that the frequent words
// a comparison reads share a few cache lines. Lookups hash the token's
// bytes in 8-byte words straight from the text, lower-casing ASCII on the
// way (every byte of an ASCII token is a letter, digit, ' or -, which OR
// 0x20 maps to its lower case), so the common word costs no copy.
type wordTable struct {
	slots []uint32 // 0: empty; else tag<<wordIDBits | (id+1)
	mask  uint64   // len(slots)-1
	text  string   // every word's bytes, in id order, end to end
	off   []uint32 // word i is text[off[i]:off[i+1]]
}

const (
	// wordIDBits holds id+1 for every id below modelWordsMax (2^22).
	wordIDBits = 23
	wordIDMask = 1<<wordIDBits - 1
	// asciiFold sets the bit that makes an upper-case ASCII letter lower
	// case, in every byte of a word.
	asciiFold = 0x2020202020202020
)

func newWordTable(words []string) *wordTable {
	if len(words) >= modelWordsMax || modelWordsMax >= wordIDMask {
		panic("vecidx: vocabulary too large for the word table")
	}
	size := 1
	for size < 2*len(words) {
		size *= 2
	}
	t := &wordTable{slots: make([]uint32, size), mask: uint64(size - 1), off: make([]uint32, 0, len(words)+1)}
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
		h := hashWord(w, 0, len(w), false)
		i := h & t.mask
		for t.slots[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = tag(h)<<wordIDBits | uint32(id+1)
	}
	return t
}

func tag(h uint64) uint32 { return uint32(h >> (64 - (32 - wordIDBits))) }

// word is word id's bytes.
func (t *wordTable) word(id int) string { return t.text[t.off[id]:t.off[id+1]] }

// find returns the id of the word s[start:end], lower-cased first when
// fold is set (then every byte must be an ASCII letter, digit, ' or -).
func (t *wordTable) find(s string, start, end int, fold bool) (int32, bool) {
	h := hashWord(s, start, end, fold)
	tg := tag(h)
	n := end - start
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i]
		if e == 0 {
			return 0, false
		}
		if e>>wordIDBits != tg {
			continue
		}
		id := int(e&wordIDMask) - 1
		w := t.word(id)
		if len(w) != n {
			continue
		}
		same := true
		if fold {
			for j := range n {
				if s[start+j]|0x20 != w[j] {
					same = false
					break
				}
			}
		} else {
			same = s[start:end] == w
		}
		if same {
			return int32(id), true
		}
	}
}

// hashWord hashes s[start:end], lower-cased when fold is set, 8 bytes at a
// time. Bytes past end are masked off, so the hash depends only on the
// word.
func hashWord(s string, start, end int, fold bool) uint64 {
	h := uint64(end-start) * 0x9e3779b97f4a7c15
	for i := start; i < end; i += 8 {
		var x uint64
		if i+8 <= len(s) {
			b := s[i : i+8]
			x = uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
				uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
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
		h ^= x
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	h *= 0x94d049bb133111eb
	return h ^ h>>29
}
