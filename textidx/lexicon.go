package textidx

import (
	_ "embed" // commonwords.txt
	"strings"
)

// The lexicon memoises analysis for common words: for each of them whether
// it is a stop word and, if not, its stem. Stemming is the costliest step
// of Analyze (Porter2's steps test suffix after suffix: some 100 ns a
// word, 40% of Analyze for 1 KB of English), and English text is mostly
// a few thousand words over and over, so a lookup that hits the cache is
// several times cheaper. The lexicon is built once, when the package is
// initialised, from commonwords.txt: the 4,096 most frequent words of
// lower-case letters a–z in the vocabulary of GloVe 6B (Pennington et al.
// 2014, public domain; the vocabulary of vecidx's built-in model), in
// frequency order, some 80% of the words of English text. It is small on
// purpose: a lookup pays only while the table stays in the cache, and in a
// busy server, whose index work keeps pushing it out, a table of 16,384
// words (512 KB) missed the cache so often that Analyze took as long as
// with no lexicon at all, where 4,096 (128 KB) took 13% less. Its answers
// are those of isStopWord and stem, computed then, so an analysis with it
// gives the same Doc as one without (the tests check that); a word it
// does not hold is analysed as before.
//
// A stem is the word's first keep bytes followed by an ending from a
// short table (Porter2 only ever replaces a word's tail), so that the
// lexicon stores no strings per word and a hit costs one probe. Words of
// up to 7 bytes (most of English text) are in a table of 8-byte slots,
// eight to a cache line: the word's bytes (a word has no zero byte, so
// they say its length too) and 8 bits for keep, the ending and the stop
// flag. Longer words are in a table of 16-byte slots holding the word's
// first 8 bytes, its length, keep, the ending, the stop flag, the offset
// of its bytes in the lexicon's text (compared only for words over 8
// bytes) and a tag of its hash. Both are at most half full: 64 KB each for
// the 4,096 words.
type lexiconTable struct {
	short     []uint64 // word bytes | meta<<56 (see lexiconShort*); 0 is an empty slot
	shortMask uint64
	slots     []lexiconSlot
	mask      uint64
	text      string   // the long words end to end
	endings   []string // stems' endings after the kept prefix
}

// A short slot's meta (its top byte): keep, the ending's index, the stop
// flag.
const (
	lexiconShortBytes   = 7
	lexiconShortKeep    = 56
	lexiconShortEnd     = 59
	lexiconShortEndsMax = 4
	lexiconShortStop    = 1 << 62
	lexiconShortWord    = 1<<56 - 1
)

type lexiconSlot struct {
	head uint64 // the word's first 8 bytes, little-endian, zero-padded
	meta uint64 // see the lexicon* constants; 0 is an empty slot
}

// A slot's meta, from the low bits: the word's length (1..stemBytesMax),
// keep, the ending's index, the stop flag, the offset of the word in
// text, and the top bits of its hash.
const (
	lexiconLenBits    = 6
	lexiconKeepShift  = 6
	lexiconEndShift   = 12
	lexiconEndsMax    = 64
	lexiconStopBit    = 1 << 18
	lexiconOffShift   = 19
	lexiconOffMax     = 1 << 21
	lexiconTagShift   = 40
	lexiconFieldMask6 = 1<<6 - 1
)

//go:embed commonwords.txt
var commonWords string

// lexicon is nil in tests that analyse without it.
var lexicon = newLexicon(strings.Fields(commonWords))

func newLexicon(words []string) *lexiconTable {
	nShort := 0
	for _, w := range words {
		if len(w) <= lexiconShortBytes {
			nShort++
		}
	}
	size, shortSize := 1, 1
	for size < 2*(len(words)-nShort) {
		size *= 2
	}
	for shortSize < 2*nShort {
		shortSize *= 2
	}
	l := &lexiconTable{
		short: make([]uint64, shortSize), shortMask: uint64(shortSize - 1),
		slots: make([]lexiconSlot, size), mask: uint64(size - 1),
	}
	var text strings.Builder
	endIndex := map[string]int{}
	for _, w := range words {
		if w == "" || len(w) > stemBytesMax || !allLowerASCII(w) || text.Len()+len(w) > lexiconOffMax {
			continue
		}
		b := []byte(w)
		stop := isStopWord(b)
		keep, end := 0, 0
		if !stop {
			s := string(stem(b))
			for keep < len(s) && keep < len(w) && s[keep] == w[keep] {
				keep++
			}
			e, ok := endIndex[s[keep:]]
			if !ok {
				if len(l.endings) == lexiconEndsMax {
					continue // an unusual ending: the word is stemmed when met
				}
				e = len(l.endings)
				endIndex[s[keep:]] = e
				l.endings = append(l.endings, s[keep:])
			}
			end = e
		}
		if len(w) <= lexiconShortBytes && end < lexiconShortEndsMax {
			head := load8([]byte(w), 0)
			slot := head | uint64(keep)<<lexiconShortKeep | uint64(end)<<lexiconShortEnd
			if stop {
				slot |= lexiconShortStop
			}
			i := shortHome(head) & l.shortMask
			for l.short[i] != 0 {
				if l.short[i]&lexiconShortWord == head {
					panic("textidx: a word twice in the lexicon: " + w)
				}
				i = (i + 1) & l.shortMask
			}
			l.short[i] = slot
			continue
		}
		meta := uint64(len(w))
		if stop {
			meta |= lexiconStopBit
		} else {
			meta |= uint64(keep)<<lexiconKeepShift | uint64(end)<<lexiconEndShift
		}
		h, head := hashToken([]byte(w))
		l.text = text.String() // for word, in the check for duplicates
		i := h & l.mask
		for l.slots[i].meta != 0 {
			if l.slots[i].head == head && l.slots[i].meta&lexiconFieldMask6 == uint64(len(w)) && l.word(l.slots[i]) == w {
				panic("textidx: a word twice in the lexicon: " + w)
			}
			i = (i + 1) & l.mask
		}
		meta |= uint64(text.Len())<<lexiconOffShift | h>>lexiconTagShift<<lexiconTagShift
		text.WriteString(w)
		l.slots[i] = lexiconSlot{head: head, meta: meta}
	}
	l.text = text.String()
	return l
}

// shortHome spreads a short word's bytes over the short table.
func shortHome(head uint64) uint64 { return head * 0x9e3779b97f4a7c15 >> 32 }

// word is the word of a full slot.
func (l *lexiconTable) word(e lexiconSlot) string {
	off := e.meta >> lexiconOffShift & (lexiconOffMax - 1)
	return l.text[off : off+e.meta&lexiconFieldMask6]
}

// find looks w (lower-case ASCII letters) up: whether it is a stop word,
// else that its stem is w[:keep] + ending; ok is false when the lexicon
// does not hold it.
func (l *lexiconTable) find(w []byte) (stop bool, keep int, ending string, ok bool) {
	n := len(w)
	if n == 0 || n > stemBytesMax {
		return false, 0, "", false
	}
	if n <= lexiconShortBytes {
		head := load8(w, 0)
		for i := shortHome(head) & l.shortMask; ; i = (i + 1) & l.shortMask {
			e := l.short[i]
			if e == 0 {
				return false, 0, "", false
			}
			if e&lexiconShortWord != head {
				continue
			}
			if e&lexiconShortStop != 0 {
				return true, 0, "", true
			}
			return false, int(e >> lexiconShortKeep & 7), l.endings[e>>lexiconShortEnd&(lexiconShortEndsMax-1)], true
		}
	}
	h, head := hashToken(w)
	want := uint64(n) | h>>lexiconTagShift<<lexiconTagShift
	for i := h & l.mask; ; i = (i + 1) & l.mask {
		e := l.slots[i]
		if e.meta == 0 {
			return false, 0, "", false
		}
		if e.head != head || e.meta&(lexiconFieldMask6|^uint64(1<<lexiconTagShift-1)) != want {
			continue
		}
		if n > 8 {
			off := e.meta >> lexiconOffShift & (lexiconOffMax - 1)
			if string(w[8:]) != l.text[off+8:off+uint64(n)] {
				continue
			}
		}
		if e.meta&lexiconStopBit != 0 {
			return true, 0, "", true
		}
		keep = int(e.meta >> lexiconKeepShift & lexiconFieldMask6)
		return false, keep, l.endings[e.meta>>lexiconEndShift&lexiconFieldMask6], true
	}
}

// hashToken hashes w 8 bytes at a time, and returns its first 8 bytes
// (zero-padded) too.
func hashToken(w []byte) (h, head uint64) {
	h = uint64(len(w)) * 0x9e3779b97f4a7c15
	for i := 0; i < len(w); i += 8 {
		x := load8(w, i)
		if i == 0 {
			head = x
		}
		h ^= x
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	h *= 0x94d049bb133111eb
	return h ^ h>>29, head
}

// load8 is the 8 bytes of w from i on, little-endian, with the bytes past
// len(w) zero. Where w's capacity allows, it reads them all at once and
// masks off those past its end (the tokenizer's buffer has room, and most
// words are shorter than 8 bytes).
func load8(w []byte, i int) uint64 {
	if i+8 <= cap(w) {
		b := w[i : i+8 : i+8]
		x := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if n := len(w) - i; n < 8 {
			x &= 1<<(8*n) - 1
		}
		return x
	}
	var x uint64
	for j := min(len(w), i+8) - 1; j >= i; j-- {
		x = x<<8 | uint64(w[j])
	}
	return x
}

func allLowerASCII(w string) bool {
	for i := 0; i < len(w); i++ {
		if !isLowerASCII(w[i]) {
			return false
		}
	}
	return true
}
