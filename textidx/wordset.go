package textidx

// wordSet is a fixed set of words looked up by byte slice: open addressing
// over an FNV-1a hash. It is several times faster than a map[string] for
// the hot lookups of analysis (stop words, stemmer exceptions), which run
// once per word of every value.
type wordSet struct {
	slots []int32 // 1 + index into words; 0 is an empty slot
	words []string
	mask  uint32
	// ends[first][last] is set if a word begins and ends with those
	// letters: a test that turns most words away before any hashing.
	ends [26][26]bool
}

func newWordSet(words []string) wordSet {
	size := 16
	for size < 2*len(words) {
		size *= 2
	}
	s := wordSet{slots: make([]int32, size), words: words, mask: uint32(size - 1)}
	for _, w := range words {
		if w == "" || !isLowerASCII(w[0]) || !isLowerASCII(w[len(w)-1]) {
			panic("textidx: a word set's words start and end with a-z: " + w)
		}
		s.ends[w[0]-'a'][w[len(w)-1]-'a'] = true
	}
	for i, w := range words {
		if s.index([]byte(w)) >= 0 {
			panic("textidx: duplicate word in a word set: " + w)
		}
		h := hashBytes([]byte(w)) & s.mask
		for s.slots[h] != 0 {
			h = (h + 1) & s.mask
		}
		s.slots[h] = int32(i + 1)
	}
	return s
}

// index returns w's index in the words the set was made from, or -1.
func (s *wordSet) index(w []byte) int {
	if len(w) == 0 {
		return -1
	}
	first, last := w[0]-'a', w[len(w)-1]-'a'
	if first >= 26 || last >= 26 || !s.ends[first][last] {
		return -1
	}
	h := hashBytes(w) & s.mask
	for {
		i := s.slots[h]
		if i == 0 {
			return -1
		}
		if s.words[i-1] == string(w) {
			return int(i - 1)
		}
		h = (h + 1) & s.mask
	}
}

// hashBytes is 32-bit FNV-1a.
func hashBytes(w []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range w {
		h ^= uint32(c)
		h *= 16777619
	}
	return h
}

func isLowerASCII(c byte) bool { return 'a' <= c && c <= 'z' }
