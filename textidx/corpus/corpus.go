// Package corpus makes synthetic English-like text for textidx's tests and
// benchmarks (cmd/bench makes its own). Words are drawn from a Zipf distribution
// over a vocabulary whose head is common English words (stop words
// included, as in real text) and whose long tail is made-up words built
// from syllables and English suffixes, so that stemming, stop-word removal
// and a realistic dictionary size all come into play.
//
// It lives apart from textidx because it takes a *rand.Rand, and textidx,
// being node logic, imports no math/rand.
package corpus

import (
	"math/rand/v2"
	"strings"
)

// VocabularySize is the number of distinct words SyntheticText draws from.
const VocabularySize = 50_000

// Zipf parameters: P(rank k) ∝ (zipfV + k)^−zipfS, near the s ≈ 1 measured
// for English.
const (
	zipfS = 1.07
	zipfV = 2.0
)

// commonWords is the head of the vocabulary, roughly most frequent first.
var commonWords = strings.Fields(`
the of and to a in is that for it as was with be by on not he this are or
his from at which but have an they you were her she there been one all we
their has would when if so no will more can about said up out them some what
its into only time new other than could then two also these may first any
like now my such make over our even most after made many before must through
back years where much your way well down should because each just those how
too little state good very world still own see men work long get here between
both life being under never day same another know while last might us great
old year off come since against go came right used take three states himself
few house use during without again place american around however home small
found thought went say part once general high upon school every does got
united left number course war until always away something fact though water
less public put think almost hand enough far took head yet government system
better set told nothing night end why called didn find look asked later knew
point next program city business give group toward young days let room
president side social given present several order national possible rather
second face per among form important often things looked early white case
large need big four within felt along children saw best church ever least
power development light thing seemed family interest want members others
mind country area done turned although open god service certain kind problem
began different door thus help sense means whole matter perhaps itself york
times law human line above name example action company hands local show five
history whether gave today either act feet across taken past quite anything
having seen death experience body word half really week field car words
already information tell together college shall money period held keep sure
probably free seems real behind cannot miss political air question making
office brought whose special heard major problems ago became federal moment
study available known result street economic boy position reason change
south board individual job society areas west close turn love community true
court force full seem am wife age policy voice stood million themselves
store data replicated durable writes reads cluster leader follower snapshot
recovery indexing searching running connection connections generously
happiness universities relational conditional
`)

// Syllables and endings of the made-up tail words.
var (
	onsets  = strings.Fields("b c d f g h j k l m n p r s t v w z br cr dr fl gr pl pr st tr sh ch th")
	nuclei  = strings.Fields("a e i o u ai ea ee oo ou")
	endings = []string{"", "", "", "s", "ed", "ing", "er", "ly", "tion", "ness", "ment", "able", "ful"}
)

// vocabulary is every word, by rank.
var vocabulary = func() []string {
	v := make([]string, 0, VocabularySize)
	seen := map[string]bool{}
	add := func(w string) {
		if !seen[w] {
			seen[w] = true
			v = append(v, w)
		}
	}
	for _, w := range commonWords {
		add(w)
	}
	for k := 0; len(v) < VocabularySize; k++ {
		add(madeUpWord(k))
	}
	return v
}()

// madeUpWord returns the k-th tail word: two to four syllables, then an
// ending, picked by a hash of k so that neighbouring ranks differ.
func madeUpWord(k int) string {
	h := mix(uint64(k))
	pick := func(n int) int {
		i := int(h % uint64(n))
		h /= uint64(n)
		return i
	}
	var b strings.Builder
	syllables := 2 + pick(3)
	for i := 0; i < syllables; i++ {
		b.WriteString(onsets[pick(len(onsets))])
		b.WriteString(nuclei[pick(len(nuclei))])
	}
	b.WriteString(endings[pick(len(endings))])
	return b.String()
}

// mix is the splitmix64 finaliser: a cheap, well-spread hash.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Word returns the vocabulary word of the given rank (0 is the most
// frequent).
func Word(rank int) string { return vocabulary[rank] }

// NewZipf returns a source of vocabulary ranks with the corpus's Zipf
// distribution.
func NewZipf(r *rand.Rand) *rand.Zipf {
	return rand.NewZipf(r, zipfS, zipfV, VocabularySize-1)
}

// SyntheticText returns about words words of English-like text: sentences
// of 5 to 20 words, capitalised, with the odd comma, ending in a period.
// The same r state gives the same text.
func SyntheticText(r *rand.Rand, words int) string {
	z := NewZipf(r)
	var b strings.Builder
	b.Grow(words * 7)
	sentence := 0
	for i := 0; i < words; i++ {
		w := vocabulary[z.Uint64()]
		if sentence == 0 {
			if i > 0 {
				b.WriteString(". ")
			}
			sentence = 5 + r.IntN(16)
			b.WriteString(strings.ToUpper(w[:1]))
			b.WriteString(w[1:])
		} else {
			if r.IntN(12) == 0 {
				b.WriteByte(',')
			}
			b.WriteByte(' ')
			b.WriteString(w)
		}
		sentence--
	}
	if words > 0 {
		b.WriteByte('.')
	}
	return b.String()
}
