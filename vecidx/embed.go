package vecidx

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// TextBytesMax: Embed and Tokenize read only this much of a text (cut
	// back to a whole character, and to before a word the cut would split).
	TextBytesMax = 64 << 10
	// TextWordsMax: of that, only the first TextWordsMax words (stop words
	// and unknown words included) are read. A value's meaning for search is
	// in its first paragraphs; the bound keeps one Embed call's cost fixed.
	TextWordsMax = 1000
	// binaryControlRatio: a text in which more than one character in this
	// many is a control character (other than tab, newline, carriage
	// return, form feed) looks binary.
	binaryControlRatio = 10
)

// Embed returns the value vector of text: the SIF-weighted mean of its
// words' vectors (Arora, Liang and Ma 2017), normalised to unit length.
// A word of rank r weighs a/(a+p) with a = 1e-3 and p = 1/(r·H(n)), Zipf's
// law standing in for the corpus frequencies the file does not carry (an
// unranked model weighs each word 1). A word that appears twice counts
// twice. The paper's second step, removing the common component of a
// corpus of sentences, is left out: a value is embedded alone.
//
// Words are what Tokenize finds. Stop words (a fixed list of English
// function words) are skipped. A word outside the vocabulary is looked up
// again, in this order, and skipped if none matches:
//
//  1. a hyphenated word by its parts ("state-owned" → "state", "owned"),
//     each part by the rules below, stop-word parts skipped;
//  2. without a trailing "'s" ("king's" → "king");
//  3. without its apostrophes ("o'clock" → "oclock");
//  4. as a singular: "-ies" → "-y", then without "-es", then without "-s"
//     (words of four letters or more, not ending in "ss").
//
// Errors, all ErrNoKnownWords with the reason: a text that looks binary
// (not UTF-8, a NUL byte, or more than one control character in ten), a
// text with no words, a text of stop words only, or no word in the
// vocabulary. Embed is a pure function of the model and the text.
func (m *Model) Embed(text string) ([]float32, error) {
	cut := cutText(text)
	if looksBinary(cut) {
		return nil, fmt.Errorf("%w: the text looks binary (not UTF-8, or control bytes)", ErrNoKnownWords)
	}
	toks := tokenize(cut, len(cut) < len(text))
	if len(toks) == 0 {
		return nil, fmt.Errorf("%w: the text has no words", ErrNoKnownWords)
	}
	sum := make([]float64, m.dim)
	known, stops := 0, 0
	ids := make([]int32, 0, 4)
	for _, t := range toks {
		if stopWords[t] {
			stops++
			continue
		}
		ids = m.resolve(t, ids[:0])
		for _, i := range ids {
			w := float64(m.weights[i])
			for j, f := range m.row(int(i)) {
				sum[j] += float64(w * float64(f)) // rounded: no fused multiply-add, same bits everywhere
			}
			known++
		}
	}
	if known == 0 {
		if stops == len(toks) {
			return nil, fmt.Errorf("%w: the text has only stop words", ErrNoKnownWords)
		}
		return nil, fmt.Errorf("%w: none of its %d words is in the vocabulary", ErrNoKnownWords, len(toks)-stops)
	}
	out := make([]float32, m.dim)
	if !unitInto(out, sum) {
		return nil, fmt.Errorf("%w: its words' vectors cancel out", ErrNoKnownWords)
	}
	return out, nil
}

// resolve appends the vocabulary ids that token stands for under Embed's
// rules: none, one, or one per part of a hyphenated word.
func (m *Model) resolve(tok string, dst []int32) []int32 {
	if i, ok := m.index[tok]; ok {
		return append(dst, i)
	}
	if strings.Contains(tok, "-") {
		for part := range strings.SplitSeq(tok, "-") {
			if !stopWords[part] {
				dst = m.resolveWord(part, dst)
			}
		}
		return dst
	}
	return m.resolveWord(tok, dst)
}

func (m *Model) resolveWord(w string, dst []int32) []int32 {
	if i, ok := m.index[w]; ok {
		return append(dst, i)
	}
	if s, ok := strings.CutSuffix(w, "'s"); ok {
		if i, ok := m.index[s]; ok {
			return append(dst, i)
		}
		w = s
	}
	if strings.Contains(w, "'") {
		w = strings.ReplaceAll(w, "'", "")
		if i, ok := m.index[w]; ok {
			return append(dst, i)
		}
	}
	if len(w) >= 4 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
		for _, c := range [...]struct{ cut, add string }{{"ies", "y"}, {"es", ""}, {"s", ""}} {
			if s, ok := strings.CutSuffix(w, c.cut); ok {
				if i, ok := m.index[s+c.add]; ok {
					return append(dst, i)
				}
			}
		}
	}
	return dst
}

// Tokenize returns the words Embed reads from text, lower-cased: maximal
// runs of letters, digits and combining marks, with an apostrophe (' or ’,
// kept as ') or a hyphen inside a run joining it ("don't", "state-owned").
// Other characters separate words. Only the first TextBytesMax bytes and
// TextWordsMax words are read.
func Tokenize(text string) []string {
	cut := cutText(text)
	return tokenize(cut, len(cut) < len(text))
}

// cutText returns text's first TextBytesMax bytes, cut back to a whole
// character.
func cutText(text string) string {
	if len(text) <= TextBytesMax {
		return text
	}
	n := TextBytesMax
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n]
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)
}

func isJoiner(r rune) bool { return r == '\'' || r == '\u2019' || r == '-' }

// tokenize splits s into at most TextWordsMax words. When s was cut from a
// longer text, a word running into the cut is dropped, being possibly a
// fragment.
func tokenize(s string, wasCut bool) []string {
	var out []string
	i := 0
	for i < len(s) && len(out) < TextWordsMax {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !isWordRune(r) {
			i += size
			continue
		}
		start, end := i, i+size
		for end < len(s) {
			r, size := utf8.DecodeRuneInString(s[end:])
			if isWordRune(r) {
				end += size
				continue
			}
			if isJoiner(r) && end+size < len(s) {
				if r2, size2 := utf8.DecodeRuneInString(s[end+size:]); isWordRune(r2) {
					end += size + size2
					continue
				}
			}
			break
		}
		if wasCut && end == len(s) {
			break
		}
		out = append(out, normaliseWord(s[start:end]))
		i = end
	}
	return out
}

func normaliseWord(w string) string {
	w = strings.ToLower(w)
	if strings.ContainsRune(w, '\u2019') {
		w = strings.ReplaceAll(w, "\u2019", "'")
	}
	return w
}

// looksBinary: s is not UTF-8, holds a NUL, or more than one character in
// binaryControlRatio is a control character.
func looksBinary(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	runes, controls := 0, 0
	for _, r := range s {
		runes++
		switch {
		case r == 0:
			return true
		case r == '\t' || r == '\n' || r == '\r' || r == '\f':
		case r < 0x20 || r == 0x7f:
			controls++
		}
	}
	return controls*binaryControlRatio > runes
}

// stopWords are English function words, which carry little of what a text
// is about; SIF would give the frequent ones tiny weights anyway, and
// skipping them lets a text of only such words be refused clearly.
var stopWords = func() map[string]bool {
	const list = `a about above after again against all also am an and any are
	aren't as at be because been before being below between both but by can
	can't cannot could couldn't did didn't do does doesn't doing don't down
	during each few for from further had hadn't has hasn't have haven't having
	he he'd he'll he's her here here's hers herself him himself his how how's
	i i'd i'll i'm i've if in into is isn't it it's its itself let's may me
	might more most must mustn't my myself no nor not of off on once only or
	other ought our ours ourselves out over own same shall shan't she she'd
	she'll she's should shouldn't so some such than that that's the their
	theirs them themselves then there there's these they they'd they'll
	they're they've this those through to too under until up upon us very was
	wasn't we we'd we'll we're we've were weren't what what's when when's
	where where's which while who who's whom why why's will with won't would
	wouldn't you you'd you'll you're you've your yours yourself yourselves`
	m := map[string]bool{}
	for _, w := range strings.Fields(list) {
		m[w] = true
	}
	return m
}()
