package textidx

// This file holds the English (Porter2) stemmer, written from the published
// description of the Snowball English stemming algorithm. It works on
// lower-case ASCII letters in place: every step only shortens the word or
// swaps letters, and the one letter it may add ('e' in step 1b) always
// follows a removal of at least two, so the result fits where the word was.
// Apostrophes never reach it: the tokenizer drops a possessive "'s" and joins
// words around inner apostrophes, which is what the algorithm's step 0 and
// its apostrophe rules are for.

// stemBytesMax bounds the words the stemmer is given; longer ones are kept
// as they are (no English word needs stemming at that length, and the bound
// keeps the per-word work constant).
const stemBytesMax = 48

// isVowel reports whether c is a vowel of the algorithm: a e i o u y. A 'Y'
// (a y marked as a consonant) is not.
func isVowel(c byte) bool { return vowels[c] }

var vowels = [256]bool{'a': true, 'e': true, 'i': true, 'o': true, 'u': true, 'y': true}

// isDouble reports whether w ends with one of the doubles bb dd ff gg mm nn
// pp rr tt.
func isDouble(w []byte) bool {
	n := len(w)
	if n < 2 || w[n-1] != w[n-2] {
		return false
	}
	switch w[n-1] {
	case 'b', 'd', 'f', 'g', 'm', 'n', 'p', 'r', 't':
		return true
	}
	return false
}

// isLiEnding reports whether c may precede a removable "li".
func isLiEnding(c byte) bool {
	switch c {
	case 'c', 'd', 'e', 'g', 'h', 'k', 'm', 'n', 'r', 't':
		return true
	}
	return false
}

// endsShortSyllable reports whether w ends in a short syllable: a non-vowel,
// a vowel, then a non-vowel other than w, x or Y; or, for a two-letter w, a
// vowel followed by a non-vowel.
func endsShortSyllable(w []byte) bool {
	n := len(w)
	if n == 2 {
		return isVowel(w[0]) && !isVowel(w[1])
	}
	if n < 3 {
		return false
	}
	last := w[n-1]
	return !isVowel(w[n-3]) && isVowel(w[n-2]) && !isVowel(last) &&
		last != 'w' && last != 'x' && last != 'Y'
}

// hasSuffix compares from the end, where most candidates differ at once.
func hasSuffix(w []byte, s string) bool {
	if len(w) < len(s) {
		return false
	}
	w = w[len(w)-len(s):]
	for i := len(s) - 1; i >= 0; i-- {
		if w[i] != s[i] {
			return false
		}
	}
	return true
}

func hasVowel(w []byte) bool {
	for _, c := range w {
		if isVowel(c) {
			return true
		}
	}
	return false
}

// replace swaps the suffix of length cut for with, which is never longer.
func replace(w []byte, cut int, with string) []byte {
	base := len(w) - cut
	if len(with) > cut {
		panic("textidx: stemmer replacement longer than the suffix it replaces")
	}
	return append(w[:base], with...)
}

// stemExceptions are words stemmed as a whole, before any step:
// stemExceptions.words[i] becomes stemExceptionStems[i].
var (
	stemExceptions = newWordSet([]string{
		"skis", "skies", "dying", "lying", "tying", "idly", "gently", "ugly", "early", "only", "singly",
		"sky", "news", "howe", "atlas", "cosmos", "bias", "andes",
	})
	stemExceptionStems = []string{
		"ski", "sky", "die", "lie", "tie", "idl", "gentl", "ugli", "earli", "onli", "singl",
		"sky", "news", "howe", "atlas", "cosmos", "bias", "andes", // invariant
	}
)

// stemStopAfter1a are words left as they are once step 1a has run.
var stemStopAfter1a = newWordSet([]string{
	"inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed",
})

// suffixRule is one line of steps 2 to 4: a suffix and what replaces it.
type suffixRule struct {
	suffix string
	with   string
}

// The suffix lists of steps 2, 3 and 4, longest first within each list, so
// that the first match is the longest match the algorithm asks for.
var (
	step2Rules = []suffixRule{
		{"ational", "ate"}, {"ization", "ize"}, {"fulness", "ful"}, {"ousness", "ous"},
		{"iveness", "ive"}, {"tional", "tion"}, {"biliti", "ble"}, {"lessli", "less"},
		{"entli", "ent"}, {"ation", "ate"}, {"alism", "al"}, {"aliti", "al"},
		{"ousli", "ous"}, {"iviti", "ive"}, {"fulli", "ful"}, {"enci", "ence"},
		{"anci", "ance"}, {"abli", "able"}, {"izer", "ize"}, {"ator", "ate"},
		{"alli", "al"}, {"bli", "ble"}, {"ogi", "og"}, {"li", ""},
	}
	step3Rules = []suffixRule{
		{"ational", "ate"}, {"tional", "tion"}, {"alize", "al"}, {"icate", "ic"},
		{"iciti", "ic"}, {"ative", ""}, {"ical", "ic"}, {"ness", ""}, {"ful", ""},
	}
	step4Rules = []suffixRule{
		{"ement", ""}, {"ance", ""}, {"ence", ""}, {"able", ""}, {"ible", ""},
		{"ment", ""}, {"ant", ""}, {"ent", ""}, {"ism", ""}, {"ate", ""},
		{"iti", ""}, {"ous", ""}, {"ive", ""}, {"ize", ""}, {"ion", ""},
		{"al", ""}, {"er", ""}, {"ic", ""},
	}
)

// rulesByLast splits a rule list by the suffixes' last letter, keeping the
// order, so that a word is compared only with the rules that can match.
type rulesByLast [26][]suffixRule

func byLast(rules []suffixRule) *rulesByLast {
	var t rulesByLast
	for _, r := range rules {
		c := r.suffix[len(r.suffix)-1] - 'a'
		t[c] = append(t[c], r)
	}
	return &t
}

var (
	step2ByLast = byLast(step2Rules)
	step3ByLast = byLast(step3Rules)
	step4ByLast = byLast(step4Rules)
)

// longest returns the first (so longest) rule whose suffix ends w.
func longest(w []byte, rules *rulesByLast) (suffixRule, bool) {
	c := w[len(w)-1] - 'a'
	if c >= 26 { // 'Y'
		return suffixRule{}, false
	}
	for _, r := range rules[c] {
		if hasSuffix(w, r.suffix) {
			return r, true
		}
	}
	return suffixRule{}, false
}

// stem returns the Porter2 stem of w, which holds lower-case ASCII letters
// only, in w's own storage.
func stem(w []byte) []byte {
	if len(w) <= 2 || len(w) > stemBytesMax {
		return w
	}
	if len(w) <= 6 {
		if i := stemExceptions.index(w); i >= 0 {
			return append(w[:0], stemExceptionStems[i]...)
		}
	}

	// A y at the start or after a vowel is a consonant: mark it Y.
	if w[0] == 'y' {
		w[0] = 'Y'
	}
	for i := 1; i < len(w); i++ {
		if w[i] == 'y' && isVowel(w[i-1]) {
			w[i] = 'Y'
		}
	}
	r1, r2 := regions(w)

	w = step1a(w)
	if len(w) >= 6 && len(w) <= 7 && stemStopAfter1a.index(w) >= 0 {
		return w // none of these words holds a Y
	}
	w = step1b(w, r1)
	w = step1c(w)
	// Steps 2 to 5 act only on suffixes inside R1 (2, 3, 5) or R2 (4), of
	// at least 2, 3, 2 and 1 letters: most short words skip them all.
	if len(w)-2 >= r1 {
		w = step2(w, r1)
	}
	if len(w)-3 >= r1 {
		w = step3(w, r1, r2)
	}
	if len(w)-2 >= r2 {
		w = step4(w, r2)
	}
	if len(w)-1 >= r1 {
		w = step5(w, r1, r2)
	}

	for i, c := range w {
		if c == 'Y' {
			w[i] = 'y'
		}
	}
	return w
}

// regions returns the starts of R1 and R2: R1 is what follows the first
// non-vowel that follows a vowel (or the exceptional prefixes gener, commun
// and arsen); R2 is the same taken again inside R1. An empty region starts
// at len(w).
func regions(w []byte) (r1, r2 int) {
	r1 = len(w)
	switch {
	case hasPrefix(w, "gener"), hasPrefix(w, "arsen"):
		r1 = 5
	case hasPrefix(w, "commun"):
		r1 = 6
	default:
		r1 = regionAfter(w, 0)
	}
	return r1, regionAfter(w, r1)
}

// regionAfter returns the index after the first non-vowel that follows a
// vowel, both at or after from.
func regionAfter(w []byte, from int) int {
	for i := from + 1; i < len(w); i++ {
		if !isVowel(w[i]) && isVowel(w[i-1]) {
			return i + 1
		}
	}
	return len(w)
}

func hasPrefix(w []byte, p string) bool {
	return len(w) >= len(p) && string(w[:len(p)]) == p
}

func step1a(w []byte) []byte {
	n := len(w)
	switch {
	case hasSuffix(w, "sses"):
		return w[:n-2]
	case hasSuffix(w, "ied"), hasSuffix(w, "ies"):
		if n-3 > 1 {
			return w[:n-2] // cries → cri
		}
		return w[:n-1] // ties → tie
	case hasSuffix(w, "us"), hasSuffix(w, "ss"):
		return w
	case hasSuffix(w, "s"):
		// Delete if a vowel comes before the letter before the s: gaps → gap, gas stays.
		if hasVowel(w[:n-2]) {
			return w[:n-1]
		}
	}
	return w
}

// isShortWord reports whether w, whose R1 starts at r1, is short: it ends in
// a short syllable and its R1 is empty.
func isShortWord(w []byte, r1 int) bool {
	return r1 >= len(w) && endsShortSyllable(w)
}

func step1b(w []byte, r1 int) []byte {
	n := len(w)
	var cut int
	switch {
	case hasSuffix(w, "eedly"):
		cut = 5
	case hasSuffix(w, "eed"):
		cut = 3
	}
	if cut > 0 {
		if n-cut >= r1 {
			return replace(w, cut, "ee")
		}
		return w
	}
	switch {
	case hasSuffix(w, "ingly"):
		cut = 5
	case hasSuffix(w, "edly"):
		cut = 4
	case hasSuffix(w, "ing"):
		cut = 3
	case hasSuffix(w, "ed"):
		cut = 2
	default:
		return w
	}
	if !hasVowel(w[:n-cut]) {
		return w
	}
	w = w[:n-cut]
	switch {
	case hasSuffix(w, "at"), hasSuffix(w, "bl"), hasSuffix(w, "iz"):
		return append(w, 'e') // luxuriat → luxuriate
	case isDouble(w):
		return w[:len(w)-1] // hopp → hop
	case isShortWord(w, r1):
		return append(w, 'e') // hop → hope
	}
	return w
}

// step1c turns a final y or Y into i after a non-vowel that is not the
// first letter: cry → cri, but by and say stay.
func step1c(w []byte) []byte {
	n := len(w)
	if n > 2 && (w[n-1] == 'y' || w[n-1] == 'Y') && !isVowel(w[n-2]) {
		w[n-1] = 'i'
	}
	return w
}

func step2(w []byte, r1 int) []byte {
	r, ok := longest(w, step2ByLast)
	if !ok {
		return w
	}
	start := len(w) - len(r.suffix)
	if start < r1 {
		return w
	}
	switch r.suffix {
	case "ogi":
		if start == 0 || w[start-1] != 'l' {
			return w
		}
	case "li":
		if start == 0 || !isLiEnding(w[start-1]) {
			return w
		}
	}
	return replace(w, len(r.suffix), r.with)
}

func step3(w []byte, r1, r2 int) []byte {
	r, ok := longest(w, step3ByLast)
	if !ok {
		return w
	}
	start := len(w) - len(r.suffix)
	if start < r1 || r.suffix == "ative" && start < r2 {
		return w
	}
	return replace(w, len(r.suffix), r.with)
}

func step4(w []byte, r2 int) []byte {
	r, ok := longest(w, step4ByLast)
	if !ok {
		return w
	}
	start := len(w) - len(r.suffix)
	if start < r2 {
		return w
	}
	if r.suffix == "ion" && (start == 0 || w[start-1] != 's' && w[start-1] != 't') {
		return w
	}
	return w[:start]
}

func step5(w []byte, r1, r2 int) []byte {
	n := len(w)
	switch w[n-1] {
	case 'e':
		if n-1 >= r2 || n-1 >= r1 && !endsShortSyllable(w[:n-1]) {
			return w[:n-1]
		}
	case 'l':
		if n-1 >= r2 && n >= 2 && w[n-2] == 'l' {
			return w[:n-1]
		}
	}
	return w
}
