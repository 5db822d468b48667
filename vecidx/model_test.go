package vecidx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"testing"

	"pgregory.net/rapid"
)

// modelGen draws a small model: distinct lower-case words and vectors
// with components of very different sizes (including exact zeros, so
// one-hot and sparse vectors occur).
func modelGen() *rapid.Generator[*Model] {
	return rapid.Custom(func(t *rapid.T) *Model {
		dim := rapid.IntRange(1, 40).Draw(t, "dim")
		n := rapid.IntRange(1, 30).Draw(t, "n")
		seen := map[string]bool{}
		var words []string
		var vecs [][]float32
		for len(words) < n {
			w := rapid.StringMatching(`[a-zé'\-]{1,12}`).Draw(t, "word")
			if seen[w] {
				continue
			}
			v := make([]float32, dim)
			for i := range v {
				switch rapid.IntRange(0, 3).Draw(t, "kind") {
				case 0:
					v[i] = 0
				case 1:
					v[i] = float32(rapid.Float64Range(-1e-3, 1e-3).Draw(t, "tiny"))
				default:
					v[i] = float32(rapid.Float64Range(-5, 5).Draw(t, "x"))
				}
			}
			nonzero := false
			for _, f := range v {
				nonzero = nonzero || f != 0
			}
			if !nonzero {
				v[rapid.IntRange(0, dim-1).Draw(t, "one")] = 1
			}
			seen[w] = true
			words = append(words, w)
			vecs = append(vecs, v)
		}
		m, err := NewModel(words, vecs, rapid.Bool().Draw(t, "ranked"))
		if err != nil {
			t.Fatalf("NewModel: %v", err)
		}
		return m
	})
}

// fataler is what testing.T and rapid.T share.
type fataler interface{ Fatal(args ...any) }

func writeModelBytes(t fataler, m *Model) []byte {
	var buf bytes.Buffer
	if err := m.WriteModel(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestModelRoundTrip: ReadModel(WriteModel(m)) has the same words in the
// same order, and each vector within the quantisation bound. For a unit
// vector v with largest component c, the step is s = c/127 and each
// component moves by at most s/2, so the quantised v' is within
// ‖e‖ ≤ √d·s/2 of v; renormalising moves it by |1−‖v'‖| ≤ ‖e‖ more, so the
// vector read back is within √d·c/127 of v (plus float32 rounding).
func TestModelRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := modelGen().Draw(t, "model")
		b := writeModelBytes(t, m)
		got, err := ReadModel(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("ReadModel: %v", err)
		}
		if got.Len() != m.Len() || got.Dim() != m.Dim() || got.Ranked() != m.Ranked() {
			t.Fatalf("read %d×%d ranked=%v, wrote %d×%d ranked=%v", got.Len(), got.Dim(), got.Ranked(), m.Len(), m.Dim(), m.Ranked())
		}
		for i := range m.Len() {
			if got.Word(i) != m.Word(i) {
				t.Fatalf("word %d: %q, wrote %q", i, got.Word(i), m.Word(i))
			}
			v, _ := m.Lookup(m.Word(i))
			u, ok := got.Lookup(m.Word(i))
			if !ok {
				t.Fatalf("%q lost", m.Word(i))
			}
			c, dist, norm := 0.0, 0.0, 0.0
			for j := range v {
				c = max(c, math.Abs(float64(v[j])))
				d := float64(u[j] - v[j])
				dist += d * d
				norm += float64(u[j]) * float64(u[j])
			}
			bound := math.Sqrt(float64(m.Dim()))*c/quantLevels + 1e-5
			if math.Sqrt(dist) > bound {
				t.Fatalf("%q: moved %g, bound %g", m.Word(i), math.Sqrt(dist), bound)
			}
			if math.Abs(norm-1) > 1e-5 {
				t.Fatalf("%q: read back with norm² %g", m.Word(i), norm)
			}
		}
		// Quantisation is idempotent: writing what was read gives the same
		// int8 components (the scales differ by the renormalisation).
		b2 := writeModelBytes(t, got)
		if len(b2) != len(b) {
			t.Fatalf("second write %d bytes, first %d", len(b2), len(b))
		}
		vecStart := len(b) - 4 - m.Len()*(4+m.Dim())
		for i := range m.Len() {
			row := vecStart + i*(4+m.Dim())
			if !bytes.Equal(b[row+4:row+4+m.Dim()], b2[row+4:row+4+m.Dim()]) {
				t.Fatalf("word %d: components changed on the second round trip", i)
			}
		}
	})
}

// TestModelFlippedBit: every single-bit error anywhere in a model file is
// refused as ErrMalformed (CRC-32C detects all of them).
func TestModelFlippedBit(t *testing.T) {
	m, err := NewModel([]string{"alpha", "beta", "gamma"}, [][]float32{{1, 2, 3, 4}, {0, -1, 0, 0.5}, {3, 3, -3, 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	b := writeModelBytes(t, m)
	if _, err := ReadModel(bytes.NewReader(b)); err != nil {
		t.Fatalf("intact file refused: %v", err)
	}
	for i := range b {
		for bit := range 8 {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			if _, err := ReadModel(bytes.NewReader(c)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("byte %d bit %d flipped: err %v, want ErrMalformed", i, bit, err)
			}
		}
	}
	for n := range len(b) {
		if _, err := ReadModel(bytes.NewReader(b[:n])); !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut to %d bytes: err %v, want ErrMalformed", n, err)
		}
	}
}

// withCRC rewrites a model file's checksum, so that a test can reach the
// checks behind it.
func withCRC(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

// TestModelStructureChecks: files with a valid checksum but a wrong header
// or layout are refused with the right error.
func TestModelStructureChecks(t *testing.T) {
	m, err := NewModel([]string{"one", "two"}, [][]float32{{1, 0}, {0, 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	good := writeModelBytes(t, m)
	edit := func(f func(b []byte) []byte) []byte { return withCRC(f(bytes.Clone(good))) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), ErrMalformed},
		{"version", edit(func(b []byte) []byte { b[6] = 2; return b }), ErrMalformed},
		{"flags", edit(func(b []byte) []byte { b[8] |= 4; return b }), ErrMalformed},
		{"dim zero", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[10:], 0); return b }), ErrMalformed},
		{"dim huge", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[10:], DimMax+1); return b }), ErrTooLarge},
		{"count zero", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[14:], 0); return b }), ErrEmpty},
		{"count huge", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[14:], modelWordsMax+1); return b }), ErrTooLarge},
		{"count off by one", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[14:], 3); return b }), ErrMalformed},
		{"duplicate word", edit(func(b []byte) []byte { copy(b[modelHeaderSize+5:], "one"); return b }), ErrMalformed},
		{"upper-case word", edit(func(b []byte) []byte { b[modelHeaderSize+1] = 'O'; return b }), ErrMalformed},
		{"zero scale", edit(func(b []byte) []byte { copy(b[len(b)-4-2*6:], []byte{0, 0, 0, 0}); return b }), ErrMalformed},
		{"zero vector", edit(func(b []byte) []byte { copy(b[len(b)-4-2:], []byte{0, 0}); return b }), ErrMalformed},
		{"trailing byte", withCRC(append(bytes.Clone(good[:len(good)-4]), 7, 0, 0, 0, 0)), ErrMalformed},
		{"empty input", nil, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ReadModel(bytes.NewReader(c.b)); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

// TestModelReadGarbage: random bytes, with or without a valid checksum
// and header, never panic and never load.
func TestModelReadGarbage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b := rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "bytes")
		if rapid.Bool().Draw(t, "header") && len(b) >= modelHeaderSize+4 {
			copy(b, modelMagic)
			binary.LittleEndian.PutUint16(b[6:], modelVersion)
			b = withCRC(b)
		}
		m, err := ReadModel(bytes.NewReader(b))
		if err == nil {
			// Possible only if the bytes happen to form a valid model; then
			// it must hold unit vectors.
			for i := range m.Len() {
				v, _ := m.Lookup(m.Word(i))
				if n := dot(v, v); math.Abs(float64(n)-1) > 1e-4 {
					t.Fatalf("loaded a non-unit vector: %v", n)
				}
			}
		}
	})
}

func TestNewModel(t *testing.T) {
	cases := []struct {
		name  string
		words []string
		vecs  [][]float32
		want  error
	}{
		{"empty", nil, nil, ErrEmpty},
		{"count mismatch", []string{"a"}, nil, ErrMalformed},
		{"mixed dims", []string{"a", "b"}, [][]float32{{1, 2}, {1, 2, 3}}, ErrMixedDim},
		{"nan", []string{"a"}, [][]float32{{float32(math.NaN()), 1}}, ErrMalformed},
		{"inf", []string{"a"}, [][]float32{{float32(math.Inf(-1)), 1}}, ErrMalformed},
		{"zero vector", []string{"a"}, [][]float32{{0, 0}}, ErrMalformed},
		{"empty word", []string{""}, [][]float32{{1}}, ErrMalformed},
		{"not utf-8", []string{"\xff"}, [][]float32{{1}}, ErrMalformed},
		{"long word", []string{string(make([]byte, wordBytesMax+1))}, [][]float32{{1}}, ErrTooLarge},
		{"dim over DimMax", []string{"a"}, [][]float32{make([]float32, DimMax+1)}, ErrTooLarge},
		{"dim zero", []string{"a"}, [][]float32{{}}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewModel(c.words, c.vecs, true); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
	// Duplicates after lower-casing: the first wins.
	m, err := NewModel([]string{"Apple", "apple", "pear"}, [][]float32{{1, 0}, {0, 1}, {1, 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 2 || m.Word(0) != "apple" || m.Word(1) != "pear" {
		t.Fatalf("words %q %q (len %d), want apple pear", m.Word(0), m.Word(1), m.Len())
	}
	if v, ok := m.Lookup("APPLE"); !ok || v[0] != 1 || v[1] != 0 {
		t.Fatalf("Lookup(APPLE) = %v %v, want the first vector", v, ok)
	}
	v, _ := m.Lookup("pear")
	if math.Abs(float64(v[0])-math.Sqrt(0.5)) > 1e-6 {
		t.Fatalf("pear not normalised: %v", v)
	}
	v[0] = 42 // Lookup returns a copy
	if w, _ := m.Lookup("pear"); w[0] == 42 {
		t.Fatal("Lookup returned the model's own storage")
	}
}

// bruteNearestEmb is Nearest's specification: every other word scored by
// the same dot product, sorted by score then rank.
func bruteNearestEmb(m *Model, word string, k int) []WordScore {
	q, _ := m.Lookup(word)
	type s struct {
		i     int
		score float32
	}
	var all []s
	for i := range m.Len() {
		if m.Word(i) == word {
			continue
		}
		v, _ := m.Lookup(m.Word(i))
		all = append(all, s{i, dot(q, v)})
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].score > all[b].score })
	var out []WordScore
	for _, x := range all[:min(k, len(all))] {
		out = append(out, WordScore{m.Word(x.i), x.score})
	}
	return out
}

func TestNearestMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := modelGen().Draw(t, "model")
		w := m.Word(rapid.IntRange(0, m.Len()-1).Draw(t, "query"))
		k := rapid.IntRange(1, 40).Draw(t, "k")
		got, err := m.Nearest(w, k)
		if err != nil {
			t.Fatal(err)
		}
		want := bruteNearestEmb(m, w, k)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Nearest(%q, %d) = %v, want %v", w, k, got, want)
		}
	})
}

func TestNearestErrors(t *testing.T) {
	m, err := NewModel([]string{"a", "b"}, [][]float32{{1, 0}, {0, 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Nearest("zzz", 3); !errors.Is(err, ErrNoKnownWords) {
		t.Errorf("unknown word: %v", err)
	}
	if _, err := m.Nearest("a", NearestMax+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("k over NearestMax: %v", err)
	}
	if got, err := m.Nearest("a", 0); err != nil || len(got) != 0 {
		t.Errorf("k=0: %v %v, want empty", got, err)
	}
	if got, err := m.Nearest("A", 5); err != nil || len(got) != 1 || got[0].Word != "b" {
		t.Errorf("k over vocabulary: %v %v, want just b", got, err)
	}
}

// TestSIFWeights: Zipf's law gives rank r probability 1/(r·H(n)); the
// weights follow a/(a+p), so they rise with rank.
func TestSIFWeights(t *testing.T) {
	const n = 5000
	w := sifWeights(n, true)
	h := 0.0
	for r := 1; r <= n; r++ {
		h += 1 / float64(r)
	}
	for _, r := range []int{1, 2, 10, 100, 4999, 5000} {
		p := 1 / (float64(r) * h)
		want := sifA / (sifA + p)
		if math.Abs(float64(w[r-1])-want) > 1e-6 {
			t.Errorf("rank %d: weight %g, want %g", r, w[r-1], want)
		}
	}
	for i := 1; i < n; i++ {
		if w[i] <= w[i-1] {
			t.Fatalf("weight of rank %d (%g) not above rank %d's (%g)", i+1, w[i], i, w[i-1])
		}
	}
	for _, x := range sifWeights(10, false) {
		if x != 1 {
			t.Fatalf("unranked weight %g, want 1", x)
		}
	}
}
