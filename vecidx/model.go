package vecidx

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// Errors of the loaders and of Embed. Each is wrapped with the detail (a
// line number, both dimensions, the limit) and matched with errors.Is.
var (
	// ErrMalformed: a value that is not a finite number, a line with no
	// values, a vector of length zero, a word that is not UTF-8, a binary
	// model whose checksum, magic, version or layout is wrong.
	ErrMalformed = errors.New("vecidx: malformed embeddings")
	// ErrMixedDim: a vector whose length differs from the first vector's
	// (or from a word2vec header's).
	ErrMixedDim = errors.New("vecidx: vectors of mixed dimensions")
	// ErrEmpty: an input with no vectors at all.
	ErrEmpty = errors.New("vecidx: no vectors")
	// ErrTooLarge: an input over one of the named limits.
	ErrTooLarge = errors.New("vecidx: over a limit")
	// ErrNoKnownWords: a text (or a word) with nothing to embed: empty,
	// binary-looking, only stop words, or only words outside the vocabulary.
	ErrNoKnownWords = errors.New("vecidx: no known words")
	// ErrOnlyStopWords and ErrLooksBinary are ErrNoKnownWords for a text
	// of stop words only, and for one that looks binary, so that a caller
	// can say which: a query of stop words was told that none of its
	// words is in the vocabulary, which holds them all.
	ErrOnlyStopWords = fmt.Errorf("%w: the text has only stop words", ErrNoKnownWords)
	ErrLooksBinary   = fmt.Errorf("%w: the text looks binary (not UTF-8, or control bytes)", ErrNoKnownWords)
)

const (
	// wordBytesMax is the longest word a model holds. Real vocabularies
	// stop near 100 bytes; a longer "word" is a sign of a wrong file.
	wordBytesMax = 256
	// modelWordsMax bounds a model's vocabulary, whatever its format. The
	// largest public models (fastText, GloVe 840B) have 2.0–2.2 M words.
	modelWordsMax = 4 << 20
	// modelBytesMax bounds a binary model file: modelWordsMax words at 300
	// dimensions, int8, come to 1.2 GiB; a file larger than 2 GiB is not one
	// of ours.
	modelBytesMax = 2 << 30
	// NearestMax is the largest k that Nearest accepts.
	NearestMax = 1000
	// sifA is the a of the SIF weight a/(a+p(w)) (Arora et al. 2017 found
	// 1e-4..1e-3 works across tasks): a word with probability a weighs one
	// half, "the" (p ≈ 0.07) about 1/70.
	sifA = 1e-3
)

// Model is a vocabulary with one unit vector per word. The words are in
// frequency order when the source was (GloVe and word2vec files are): the
// rank of a word then stands in for its frequency in Embed's weights.
// A Model is read-only after it is built; nothing in it changes.
type Model struct {
	dim     int
	ranked  bool
	words   []string
	index   map[string]int32
	vecs    []float32  // len(words)*dim: word i's unit vector is vecs[i*dim:(i+1)*dim]
	weights []float32  // word i's SIF weight
	stop    []bool     // word i is a stop word, which Embed skips
	table   *wordTable // Embed's index of the words
	// q8 and wq: for a model read from the binary format, whose vectors
	// are int8 codes, each word's code (dim bytes) and its weight divided
	// by the code's length, so that weight·vector = wq·code. Embed sums
	// these: a fourth of the memory of the float32 vectors, which is what
	// a busy server's Embed waits for. nil for other models.
	q8       []int8
	wq       []float32
	q8Stride int // bytes from one code to the next: dim rounded up to 64, so a code of ≤ 64k bytes takes ⌈dim/64⌉ cache lines
	// common is the unit direction that Embed removes from every sum (see
	// Embed and commonDirection); nil below commonDimMin dimensions.
	common []float32
	// coded: the word table carries a caller's codes (WithWordCodes).
	coded bool
}

// WordScore is a word and its cosine similarity to the word asked about.
type WordScore struct {
	Word  string
	Score float32
}

// Dim is the length of every vector of the model.
func (m *Model) Dim() int { return m.dim }

// Len is the number of words in the vocabulary.
func (m *Model) Len() int { return len(m.words) }

// Ranked reports whether the words are in frequency order, which Embed's
// weights rely on; when they are not, every word weighs the same.
func (m *Model) Ranked() bool { return m.ranked }

// Word is the word of rank i (0 is the most frequent in a ranked model).
func (m *Model) Word(i int) string { return m.words[i] }

// Lookup returns a copy of the unit vector of word, lower-cased, if the
// vocabulary holds it. It does not apply Embed's fallbacks for unknown
// words.
func (m *Model) Lookup(word string) ([]float32, bool) {
	i, ok := m.index[strings.ToLower(word)]
	if !ok {
		return nil, false
	}
	v := make([]float32, m.dim)
	copy(v, m.row(int(i)))
	return v, true
}

func (m *Model) row(i int) []float32 {
	return m.vecs[i*m.dim : (i+1)*m.dim : (i+1)*m.dim]
}

// Nearest returns the k words most similar to word (cosine, exact scan of
// the vocabulary), most similar first, ties by rank; word itself is left
// out. k <= 0 gives an empty result; k over NearestMax is ErrTooLarge; a
// word outside the vocabulary is ErrNoKnownWords.
func (m *Model) Nearest(word string, k int) ([]WordScore, error) {
	if k > NearestMax {
		return nil, fmt.Errorf("%w: k %d over NearestMax %d", ErrTooLarge, k, NearestMax)
	}
	w := strings.ToLower(word)
	qi, ok := m.index[w]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not in the vocabulary", ErrNoKnownWords, w)
	}
	if k <= 0 {
		return nil, nil
	}
	q := m.row(int(qi))
	// best is kept sorted, best first; k is small (NearestMax) and a new
	// entry rarely beats the k-th after the first few thousand words, so an
	// insertion into a sorted slice is cheaper than a heap here.
	type hit struct {
		score float32
		i     int32
	}
	best := make([]hit, 0, k)
	for i := range m.words {
		if int32(i) == qi {
			continue
		}
		s := dot(q, m.row(i))
		if len(best) == k && s <= best[k-1].score {
			continue // ties keep the lower rank, which was seen first
		}
		j := len(best)
		if j < k {
			best = append(best, hit{})
		} else {
			j = k - 1
		}
		for j > 0 && best[j-1].score < s {
			best[j] = best[j-1]
			j--
		}
		best[j] = hit{s, int32(i)}
	}
	out := make([]WordScore, len(best))
	for j, h := range best {
		out[j] = WordScore{m.words[h.i], h.score}
	}
	return out, nil
}

// NewModel builds a model from words and their vectors, in frequency order
// when ranked. Words are lower-cased; of two words equal after that, the
// first wins and the later is dropped. Vectors are normalised to unit
// length; they must all have the same dimension (1..DimMax), finite
// components and a length above zero.
func NewModel(words []string, vectors [][]float32, ranked bool) (*Model, error) {
	if len(words) != len(vectors) {
		return nil, fmt.Errorf("%w: %d words but %d vectors", ErrMalformed, len(words), len(vectors))
	}
	if len(words) == 0 {
		return nil, ErrEmpty
	}
	if len(words) > modelWordsMax {
		return nil, fmt.Errorf("%w: %d words, over %d", ErrTooLarge, len(words), modelWordsMax)
	}
	b, err := newModelBuilder(len(vectors[0]), ranked, len(words))
	if err != nil {
		return nil, err
	}
	scratch := make([]float64, b.dim)
	for i, w := range words {
		if len(vectors[i]) != b.dim {
			return nil, fmt.Errorf("%w: vector %d (%q) has %d values, vector 0 has %d", ErrMixedDim, i, w, len(vectors[i]), b.dim)
		}
		for j, f := range vectors[i] {
			scratch[j] = float64(f)
		}
		if _, err := b.add(w, scratch); err != nil {
			return nil, fmt.Errorf("vector %d: %w", i, err)
		}
	}
	return b.model(), nil
}

// modelBuilder collects words and normalised vectors for the loaders.
type modelBuilder struct {
	dim    int
	ranked bool
	words  []string
	index  map[string]int32
	vecs   []float32
}

func newModelBuilder(dim int, ranked bool, sizeHint int) (*modelBuilder, error) {
	if dim < 1 {
		return nil, fmt.Errorf("%w: dimension %d", ErrMalformed, dim)
	}
	if dim > DimMax {
		return nil, fmt.Errorf("%w: dimension %d over DimMax %d", ErrTooLarge, dim, DimMax)
	}
	sizeHint = min(sizeHint, 1<<20) // a header's claim is not an allocation size
	return &modelBuilder{
		dim:    dim,
		ranked: ranked,
		words:  make([]string, 0, sizeHint),
		index:  make(map[string]int32, sizeHint),
		vecs:   make([]float32, 0, sizeHint*dim),
	}, nil
}

// add appends word (lower-cased) with v normalised, unless the word is
// already there (first wins: added is false). v must be finite and non-zero.
func (b *modelBuilder) add(word string, v []float64) (added bool, err error) {
	if len(v) != b.dim {
		panic("vecidx: modelBuilder.add with the wrong dimension") // callers check first
	}
	if !utf8.ValidString(word) {
		return false, fmt.Errorf("%w: word %q is not UTF-8", ErrMalformed, word)
	}
	if word == "" {
		return false, fmt.Errorf("%w: empty word", ErrMalformed)
	}
	if len(word) > wordBytesMax {
		return false, fmt.Errorf("%w: word of %d bytes, over %d", ErrTooLarge, len(word), wordBytesMax)
	}
	w := strings.ToLower(word)
	if len(w) > wordBytesMax { // lower-casing can lengthen a few runes
		return false, fmt.Errorf("%w: word of %d bytes, over %d", ErrTooLarge, len(w), wordBytesMax)
	}
	for _, f := range v {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false, fmt.Errorf("%w: %q has a value that is not finite", ErrMalformed, w)
		}
	}
	if _, dup := b.index[w]; dup {
		return false, nil
	}
	if len(b.words) >= modelWordsMax {
		return false, fmt.Errorf("%w: over %d words", ErrTooLarge, modelWordsMax)
	}
	n := len(b.vecs)
	b.vecs = append(b.vecs, make([]float32, b.dim)...)
	if !unitInto(b.vecs[n:], v) {
		b.vecs = b.vecs[:n]
		return false, fmt.Errorf("%w: %q has a vector of length zero", ErrMalformed, w)
	}
	b.index[w] = int32(len(b.words))
	b.words = append(b.words, w)
	return true, nil
}

func (b *modelBuilder) model() *Model {
	if len(b.words) == 0 || len(b.vecs) != len(b.words)*b.dim {
		panic("vecidx: modelBuilder.model on an empty or inconsistent builder")
	}
	m := &Model{
		dim:     b.dim,
		ranked:  b.ranked,
		words:   b.words,
		index:   b.index,
		vecs:    b.vecs,
		weights: sifWeights(len(b.words), b.ranked),
		stop:    make([]bool, len(b.words)),
	}
	for _, w := range stopWordList {
		if i, ok := m.index[w]; ok {
			m.stop[i] = true
		}
	}
	m.table = newWordTable(b.words, m.stop)
	m.common = m.commonDirection()
	return m
}

// commonDimMin: models of fewer dimensions keep Embed's plain mean. Taking
// out one direction of a handful (a toy or test model) would take out much
// of what the vectors say; corpus-trained models have 50 or more.
const commonDimMin = 16

// commonDirection is the direction Embed removes: the expected weighted
// vector of a word of text, Σ p(w)·weight(w)·v(w) over the words that are
// not stop words, with p(w) the same Zipf estimate the weights use (1/n
// each in an unranked model), normalised. For the default model it is
// within 1° of the mean of 1 KB value vectors of Zipf-drawn text, and
// removes most of their length. It is computed in float64 in rank order
// with every product rounded, so every node that loads the same model gets
// the same bits. nil below commonDimMin dimensions, or when the sum is
// zero.
func (m *Model) commonDirection() []float32 {
	if m.dim < commonDimMin {
		return nil
	}
	n := len(m.words)
	h := harmonic(n)
	c := make([]float64, m.dim)
	for i := range n {
		if m.stop[i] {
			continue
		}
		p := 1 / float64(n)
		if m.ranked {
			p = 1 / (float64(i+1) * h)
		}
		pw := float64(p * float64(m.weights[i]))
		for j, f := range m.row(i) {
			c[j] += float64(pw * float64(f))
		}
	}
	u := make([]float32, m.dim)
	if !unitInto(u, c) {
		return nil
	}
	return u
}

// harmonic is H(n) = 1 + 1/2 + … + 1/n, summed smallest terms first.
func harmonic(n int) float64 {
	h := 0.0
	for r := n; r >= 1; r-- {
		h += 1 / float64(r)
	}
	return h
}

// sifWeights gives each rank its SIF weight a/(a+p(w)). Without counts,
// p(w) comes from Zipf's law: the word of rank r (1-based) of n has
// probability 1/(r·H(n)), H(n) the n-th harmonic number. An unranked model
// weighs every word 1.
func sifWeights(n int, ranked bool) []float32 {
	w := make([]float32, n)
	if !ranked {
		for i := range w {
			w[i] = 1
		}
		return w
	}
	h := harmonic(n)
	for i := range w {
		p := 1 / (float64(i+1) * h)
		w[i] = float32(sifA / (sifA + p))
	}
	return w
}

// unitInto writes src scaled to length one into dst, summing in float64;
// false when src has length zero (dst is then untouched).
func unitInto(dst []float32, src []float64) bool {
	if len(dst) != len(src) {
		panic("vecidx: unitInto with different lengths")
	}
	// Scale by the largest component first, so that tiny or huge values
	// (within float32's range) neither underflow nor overflow the sum.
	big := 0.0
	for _, f := range src {
		big = max(big, math.Abs(f))
	}
	if big == 0 || math.IsInf(big, 0) || math.IsNaN(big) {
		return false
	}
	scale := 1 / big
	ss := 0.0
	for _, f := range src {
		x := f * scale
		// The conversion rounds the product, so that no platform fuses
		// it into a multiply-add: vectors come out the same bits on
		// every machine.
		ss += float64(x * x)
	}
	inv := scale / math.Sqrt(ss)
	for i, f := range src {
		dst[i] = float32(f * inv)
	}
	return true
}

// The binary format ("dkvemb"), little-endian throughout:
//
//	magic   6 bytes  "DKVEMB"
//	version uint16   1
//	flags   uint16   bit 0: words in frequency order; other bits zero
//	dim     uint32   1..DimMax
//	count   uint32   1..modelWordsMax
//	words   count × (uvarint byte length 1..wordBytesMax, UTF-8 bytes)
//	vectors count × (float32 scale s > 0, dim × int8 q): v[i] ≈ s·q[i]
//	crc     uint32   CRC-32C (Castagnoli) of every byte before it
//
// Each unit vector is quantised on its own: s = max|v[i]|/127 and q[i] =
// round(v[i]/s), so each component is off by at most s/2 and the largest
// component is exact. ReadModel renormalises.
const (
	modelMagic      = "DKVEMB"
	modelVersion    = 1
	modelFlagRanked = 1
	modelHeaderSize = 6 + 2 + 2 + 4 + 4
	quantLevels     = 127
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteModel writes m in the binary format.
func (m *Model) WriteModel(w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	var hdr [modelHeaderSize]byte
	copy(hdr[:], modelMagic)
	binary.LittleEndian.PutUint16(hdr[6:], modelVersion)
	flags := uint16(0)
	if m.ranked {
		flags |= modelFlagRanked
	}
	binary.LittleEndian.PutUint16(hdr[8:], flags)
	binary.LittleEndian.PutUint32(hdr[10:], uint32(m.dim))
	binary.LittleEndian.PutUint32(hdr[14:], uint32(len(m.words)))
	bw.Write(hdr[:])
	var lb [binary.MaxVarintLen64]byte
	for _, word := range m.words {
		bw.Write(lb[:binary.PutUvarint(lb[:], uint64(len(word)))])
		bw.WriteString(word)
	}
	q := make([]byte, 4+m.dim)
	for i := range m.words {
		quantise(q, m.row(i))
		bw.Write(q)
	}
	if err := bw.Flush(); err != nil { // bufio keeps the first write error
		return err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	_, err := w.Write(sum[:])
	return err
}

// quantise writes v's scale and int8 components into q (4+len(v) bytes).
func quantise(q []byte, v []float32) {
	big := float32(0)
	n := float32(0)
	for _, f := range v {
		big = max(big, float32(math.Abs(float64(f))))
		n += f * f
	}
	// A model's vectors are unit length by construction; anything else is a
	// bug that would write a vector ReadModel refuses or distorts.
	if !(big > 0) || n < 0.99 || n > 1.01 {
		panic("vecidx: WriteModel of a vector that is not unit length")
	}
	s := big / quantLevels
	binary.LittleEndian.PutUint32(q, math.Float32bits(s))
	for i, f := range v {
		x := math.Round(float64(f / s))
		x = max(-quantLevels, min(quantLevels, x))
		q[4+i] = byte(int8(x))
	}
}

// ReadModel reads a model in the binary format. The whole input is read
// (at most modelBytesMax bytes) and its checksum checked before anything
// else, so a flipped bit anywhere is ErrMalformed.
func ReadModel(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, modelBytesMax+1))
	if err != nil {
		return nil, err
	}
	if len(data) > modelBytesMax {
		return nil, fmt.Errorf("%w: model over %d bytes", ErrTooLarge, modelBytesMax)
	}
	return parseModel(data)
}

// parseModel parses a whole model file held in memory; it keeps no
// reference to data.
func parseModel(data []byte) (*Model, error) {
	if len(data) < modelHeaderSize+4 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(data))
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, the file says %08x", ErrMalformed, got, want)
	}
	if string(body[:6]) != modelMagic {
		return nil, fmt.Errorf("%w: not a dkv embeddings model (magic %q)", ErrMalformed, body[:6])
	}
	if v := binary.LittleEndian.Uint16(body[6:]); v != modelVersion {
		return nil, fmt.Errorf("%w: version %d, this reader knows %d", ErrMalformed, v, modelVersion)
	}
	flags := binary.LittleEndian.Uint16(body[8:])
	if flags&^modelFlagRanked != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrMalformed, flags)
	}
	dim := binary.LittleEndian.Uint32(body[10:])
	count := binary.LittleEndian.Uint32(body[14:])
	if count == 0 {
		return nil, ErrEmpty
	}
	if count > modelWordsMax {
		return nil, fmt.Errorf("%w: %d words, over %d", ErrTooLarge, count, modelWordsMax)
	}
	b, err := newModelBuilder(int(dim), flags&modelFlagRanked != 0, int(count))
	if err != nil {
		return nil, err
	}
	words := make([]string, 0, count)
	p := body[modelHeaderSize:]
	for i := range int(count) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n == 0 || n > wordBytesMax || uint64(len(p)-k) < n {
			return nil, fmt.Errorf("%w: word %d: bad length", ErrMalformed, i)
		}
		words = append(words, string(p[k:k+int(n)]))
		p = p[k+int(n):]
	}
	rowBytes := 4 + int(dim)
	if len(p) != int(count)*rowBytes {
		return nil, fmt.Errorf("%w: %d bytes of vectors, %d words × %d need %d", ErrMalformed, len(p), count, rowBytes, int(count)*rowBytes)
	}
	scratch := make([]float64, dim)
	for i, w := range words {
		q := p[i*rowBytes : (i+1)*rowBytes]
		s := math.Float32frombits(binary.LittleEndian.Uint32(q))
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("%w: word %d (%q): scale %v", ErrMalformed, i, w, s)
		}
		for j := range scratch {
			scratch[j] = float64(s) * float64(int8(q[4+j]))
		}
		if w != strings.ToLower(w) {
			return nil, fmt.Errorf("%w: word %d (%q) is not lower-case", ErrMalformed, i, w)
		}
		added, err := b.add(w, scratch)
		if err != nil {
			return nil, fmt.Errorf("word %d: %w", i, err)
		}
		if !added {
			return nil, fmt.Errorf("%w: word %d (%q) appears twice", ErrMalformed, i, w)
		}
	}
	m := b.model()
	// The codes, for Embed: a vector read back is its code over the
	// code's length (the scale cancels out when it is normalised).
	m.q8Stride = (int(dim) + 63) &^ 63
	m.q8 = make([]int8, int(count)*m.q8Stride) // large: page-aligned, so every code starts a cache line
	m.wq = make([]float32, count)
	for i := range int(count) {
		q := p[i*rowBytes+4 : (i+1)*rowBytes]
		ss := 0.0
		for j, c := range q {
			m.q8[i*m.q8Stride+j] = int8(c)
			ss += float64(int8(c)) * float64(int8(c))
		}
		m.wq[i] = float32(float64(m.weights[i]) / math.Sqrt(ss))
	}
	return m, nil
}
