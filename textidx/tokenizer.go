package textidx

import (
	"dkv/internal/ascii"
	"math/bits"
	"unicode"
	"unicode/utf8"
)

// byteClass sorts ASCII bytes for the tokenizer's fast path.
type byteClass uint8

const (
	classPunct byteClass = iota // printable, not part of a word
	classSpace                  // ' ', \t, \n, \r
	classLower                  // a-z
	classUpper                  // A-Z
	classDigit                  // 0-9
	classApos                   // '
	classCtrl                   // other bytes below 0x20, and DEL: the value is not text
)

var asciiClass = func() (t [utf8.RuneSelf]byteClass) {
	for c := 0; c < utf8.RuneSelf; c++ {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			t[c] = classSpace
		case c < 0x20 || c == 0x7f:
			t[c] = classCtrl
		case 'a' <= c && c <= 'z':
			t[c] = classLower
		case 'A' <= c && c <= 'Z':
			t[c] = classUpper
		case '0' <= c && c <= '9':
			t[c] = classDigit
		case c == '\'':
			t[c] = classApos
		default:
			t[c] = classPunct
		}
	}
	return t
}()

// rightSingleQuote is the typographic apostrophe, treated as '.
const rightSingleQuote = '\u2019'

// isUnigramRune reports whether r belongs to a script written without
// spaces between words (Han, Hiragana, Katakana; and the letters and
// digits of Thai, Lao, Khmer and Myanmar): each such rune, with the
// combining marks after it, is a token of its own, so that a query finds a
// word inside a run of them. Thai and the others were words of letters
// like Latin: a sentence was one word, longer than TokenBytesMax, and its
// value was never found, not even by the whole sentence (found by review).
func isUnigramRune(r rune) bool {
	if r < 0x0e00 { // below Thai: none of these scripts
		return false
	}
	if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) {
		return true
	}
	return (unicode.IsLetter(r) || unicode.IsDigit(r)) && unicode.In(r, unicode.Thai, unicode.Lao, unicode.Khmer, unicode.Myanmar)
}

// isMark reports whether r is a combining mark, which stays with the
// letter before it.
func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Mc, unicode.Me) }

// isWordRune reports whether r starts or continues a word: a letter or a
// digit that is not a unigram rune.
func isWordRune(r rune) bool {
	return (unicode.IsLetter(r) || unicode.IsDigit(r)) && !isUnigramRune(r)
}

// tokenizer walks the words of a text. A word is a run of letters and digits
// (Unicode), with combining marks kept inside it; it is lower-cased. An
// apostrophe (' or ’) followed by s and then the end of the word is dropped
// with the s (a possessive: "John's" → "john"); one between two word
// characters is dropped and the word goes on ("don't" → "dont"); any other is
// a separator. Each Han, Hiragana or Katakana rune, and each letter or
// digit of Thai, Lao, Khmer or Myanmar, is a word by itself with the
// combining marks after it.
// Everything else separates words.
//
// It also gathers what isText needs: whether the text held invalid UTF-8 or
// control characters, and counts of letters, non-space runes and words.
type tokenizer struct {
	text     string
	at       int
	bytesMax int // a word longer than this is reported with long set, its bytes not kept

	tok       []byte // the current word, lower-cased
	long      bool   // the current word is over bytesMax bytes (tok holds only a prefix)
	stemmable bool   // tok holds only ASCII letters

	bad       bool // invalid UTF-8 or a control character was seen
	letters   int  // letter runes seen
	nonSpace  int  // non-space runes seen
	words     int  // words seen
	wordRunes int  // runes in words seen
}

// newTokenizer returns a tokenizer of text that builds words in buf's
// storage (nil is fine).
func newTokenizer(text string, bytesMax int, buf []byte) tokenizer {
	if bytesMax <= 0 {
		panic("textidx: tokenizer needs a positive token length limit")
	}
	return tokenizer{text: text, bytesMax: bytesMax, tok: buf[:0]}
}

// next moves to the next word and reports whether there was one.
func (t *tokenizer) next() bool {
	t.tok = t.tok[:0]
	t.long = false
	t.stemmable = true
	for t.at < len(t.text) {
		c := t.text[t.at]
		if c < utf8.RuneSelf {
			switch asciiClass[c] {
			case classLower, classUpper, classDigit:
				return t.word()
			case classSpace:
			case classCtrl:
				t.bad = true
			default:
				t.nonSpace++
			}
			t.at++
			continue
		}
		r, size := utf8.DecodeRuneInString(t.text[t.at:])
		switch {
		case r == utf8.RuneError && size == 1:
			t.bad = true
		case isUnigramRune(r):
			t.letters++
			t.nonSpace++
			t.words++
			t.wordRunes++
			t.tok = utf8.AppendRune(t.tok, r)
			t.stemmable = false
			t.at += size
			t.marks()
			return true
		case isWordRune(r):
			return t.word()
		case unicode.IsSpace(r):
		case unicode.IsControl(r):
			t.bad = true
		default:
			t.nonSpace++
		}
		t.at += size
	}
	return false
}

// word reads the word starting at t.at.
func (t *tokenizer) word() bool {
	runes := 0
	for t.at < len(t.text) {
		// Fast path: a run of ASCII letters and digits, scanned with
		// locals and appended at once.
		text, i, digits, upper := t.text, t.at, 0, false
		for i+8 <= len(text) { // lower-case letters, eight at a time
			n := lowerBytes(text[i : i+8])
			i += n
			if n < 8 {
				break
			}
		}
		for ; i < len(text); i++ {
			c := text[i]
			if c >= utf8.RuneSelf {
				break
			}
			cl := asciiClass[c]
			if cl == classLower {
				continue
			}
			if cl == classUpper {
				upper = true
				continue
			}
			if cl != classDigit {
				break
			}
			digits++
		}
		if n := i - t.at; n > 0 {
			t.putRun(text[t.at:i], upper)
			t.letters += n - digits
			if digits > 0 {
				t.stemmable = false
			}
			runes += n
			t.at = i
			if i == len(text) {
				break
			}
		}
		c := t.text[t.at]
		if c < utf8.RuneSelf {
			switch asciiClass[c] {
			case classLower, classUpper, classDigit:
				panic("textidx: tokenizer fast path stopped on a word byte")
			case classApos:
				if !t.apostrophe(1) {
					return t.endWord(runes)
				}
				continue
			default:
				return t.endWord(runes)
			}
		}
		r, size := utf8.DecodeRuneInString(t.text[t.at:])
		switch {
		case r == utf8.RuneError && size == 1:
			return t.endWord(runes) // next sees it and marks the text bad
		case isUnigramRune(r):
			return t.endWord(runes)
		case unicode.IsLetter(r):
			t.putRune(unicode.ToLower(r))
			t.letters++
		case unicode.IsDigit(r), unicode.Is(unicode.Mn, r), unicode.Is(unicode.Mc, r), unicode.Is(unicode.Me, r):
			t.putRune(r)
		case r == rightSingleQuote:
			if !t.apostrophe(size) {
				return t.endWord(runes)
			}
			continue
		default:
			return t.endWord(runes)
		}
		t.stemmable = false
		t.at += size
		runes++
	}
	return t.endWord(runes)
}

// marks adds the combining marks at t.at to the unigram word in t.tok (a
// Thai vowel or tone mark, say), as a word of letters keeps its own; past
// bytesMax the word is long.
func (t *tokenizer) marks() {
	for t.at < len(t.text) {
		r, size := utf8.DecodeRuneInString(t.text[t.at:])
		if !isMark(r) {
			return
		}
		t.nonSpace++
		t.wordRunes++
		if !t.long {
			t.tok = utf8.AppendRune(t.tok, r)
			t.long = len(t.tok) > t.bytesMax
		}
		t.at += size
	}
}

func (t *tokenizer) endWord(runes int) bool {
	t.words++
	t.wordRunes += runes
	t.nonSpace += runes
	return true
}

// apostrophe handles an apostrophe of size bytes at t.at inside a word. It
// reports whether the word goes on (t.at moved past what was dropped); if
// not, t.at is left on the apostrophe, which then separates.
func (t *tokenizer) apostrophe(size int) bool {
	after := t.at + size
	if after < len(t.text) && (t.text[after] == 's' || t.text[after] == 'S') && !t.wordRuneAt(after+1) {
		t.at = after + 1 // possessive 's: dropped, and the word ends after it
		return true
	}
	if t.wordRuneAt(after) {
		t.at = after
		return true
	}
	return false
}

// wordRuneAt reports whether a word rune starts at byte i.
func (t *tokenizer) wordRuneAt(i int) bool {
	if i >= len(t.text) {
		return false
	}
	c := t.text[i]
	if c < utf8.RuneSelf {
		cl := asciiClass[c]
		return cl == classLower || cl == classUpper || cl == classDigit
	}
	r, size := utf8.DecodeRuneInString(t.text[i:])
	return !(r == utf8.RuneError && size == 1) && isWordRune(r)
}

// putRun appends a run of ASCII letters and digits, lower-cased.
func (t *tokenizer) putRun(run string, upper bool) {
	if t.long || len(t.tok)+len(run) > t.bytesMax {
		t.long = true
		return
	}
	if !upper {
		t.tok = append(t.tok, run...)
		return
	}
	for i := 0; i < len(run); i++ {
		c := run[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		t.tok = append(t.tok, c)
	}
}

func (t *tokenizer) putRune(r rune) {
	if t.long || len(t.tok)+utf8.RuneLen(r) > t.bytesMax {
		t.long = true
		return
	}
	t.tok = utf8.AppendRune(t.tok, r)
}

// Thresholds of the non-text rule (see isText).
const (
	letterShareMin   = 4  // at least 1 in letterShareMin non-space runes is a letter
	wordRunesMeanMax = 20 // words average at most this many runes
)

// isText reports, once the tokenizer is done, whether what it read is text
// worth indexing: valid UTF-8 without control characters other than tab, LF
// and CR; at least a quarter of its non-space runes letters (so not numbers,
// symbols or hex); and words that average at most 20 runes (so not base64 or
// other blobs, whose "words" run for dozens of characters between the odd
// '+' or '/').
func (t *tokenizer) isText() bool {
	if t.bad {
		return false
	}
	if t.letters*letterShareMin < t.nonSpace {
		return false
	}
	return t.wordRunes <= wordRunesMeanMax*t.words
}

// lowerBytes is how many of the 8 bytes of b, from the first, are a–z. It
// tests all eight at once: a byte's high bit is set in the result when,
// with the high bit cleared, adding 0x80-'a' carries into it and adding
// 0x80-'z'-1 does not, and the byte is ASCII; no sum carries out of its
// byte.
func lowerBytes(b string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	x := ascii.Load8(b)
	y := x &^ highs
	lower := (y + (0x80-'a')*ones) &^ (y + (0x80-'z'-1)*ones) &^ x & highs
	return bits.TrailingZeros64(^lower&highs) / 8
}
