package vecidx

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestReadText(t *testing.T) {
	long := "w " + strings.Repeat("0.5 ", 20000) + "\n"
	cases := []struct {
		name    string
		in      string
		o       LoadOptions
		want    error  // nil: loads
		words   string // the vocabulary in order, when it loads
		errText string // a part of the message, when it fails
	}{
		{name: "glove", in: "the 1 0 0\nof 0 1 0\ncat 0 0 2\n", words: "the of cat"},
		{name: "glove tabs crlf trailing space", in: "the\t1 0 0 \r\nof 0 1 0\r\n", words: "the of"},
		{name: "word2vec", in: "3 2\nthe 1 0\nof 0 1\ncat 1 1\n", words: "the of cat"},
		{name: "word2vec trailing spaces", in: "2 2 \nthe 1 0 \nof 0 1 \n", words: "the of"},
		{name: "blank lines", in: "\nthe 1 0\n\n  \nof 0 1\n\n", words: "the of"},
		{name: "upper case folded", in: "The 1 0\nOF 0 1\n", words: "the of"},
		{name: "duplicate: first wins", in: "the 1 0\nof 0 1\nThe 0 1\n", words: "the of"},
		{name: "WordsMax keeps the first", in: "a 1 0\nb 0 1\nc 1 1\n", o: LoadOptions{WordsMax: 2}, words: "a b"},
		{name: "WordsMax with header", in: "3 2\na 1 0\nb 0 1\nc 1 1\n", o: LoadOptions{WordsMax: 2}, words: "a b"},
		{name: "exponent and sign", in: "x 1e-3 -2.5E+1\n", words: "x"},
		{name: "one-dimensional", in: "x 3\ny -1\n", words: "x y"},
		// A file saved by an editor that writes a byte order mark: the
		// mark is no part of the first word, nor of a word2vec header.
		{name: "glove after a byte order mark", in: "\ufeffthe 1 0\nof 0 1\n", words: "the of"},
		{name: "word2vec after a byte order mark", in: "\ufeff2 2\nthe 1 0\nof 0 1\n", words: "the of"},

		{name: "empty file", in: "", want: ErrEmpty},
		{name: "only blank lines", in: "\n\n \n", want: ErrEmpty},
		{name: "header only", in: "0 100\n", want: ErrEmpty},
		{name: "non-number", in: "the 1 0\nof 0 x\n", want: ErrMalformed, errText: "line 2"},
		{name: "word with no values", in: "the 1 0\nof\n", want: ErrMalformed, errText: "line 2"},
		{name: "nan", in: "the 1 NaN\n", want: ErrMalformed, errText: "line 1"},
		{name: "inf", in: "the 1 0\nof +Inf 0\n", want: ErrMalformed, errText: "line 2"},
		{name: "float32 overflow", in: "the 1e39 0\n", want: ErrMalformed},
		{name: "zero vector", in: "the 0 0\n", want: ErrMalformed},
		{name: "not utf-8", in: "th\xffe 1 0\n", want: ErrMalformed},
		{name: "mixed dims", in: "the 1 0 0\nof 0 1 0\ncat 1 1\n", want: ErrMixedDim, errText: "line 3 has 2 values, line 1 has 3"},
		{name: "mixed dims after blank", in: "\nthe 1 0 0\ncat 1 1 1 1\n", want: ErrMixedDim, errText: "line 3 has 4 values, line 2 has 3"},
		{name: "header dim disagrees", in: "2 3\nthe 1 0\n", want: ErrMixedDim, errText: "header"},
		{name: "header count too high", in: "3 2\nthe 1 0\nof 0 1\n", want: ErrMalformed, errText: "header says 3"},
		{name: "header count too low", in: "1 2\nthe 1 0\nof 0 1\n", want: ErrMalformed, errText: "header says 1"},
		{name: "header dim zero", in: "2 0\n", want: ErrMalformed},
		{name: "header dim over DimMax", in: fmt.Sprintf("2 %d\n", DimMax+1), want: ErrTooLarge},
		{name: "dim over DimMax", in: "x " + strings.Repeat("1 ", DimMax+1) + "\n", want: ErrTooLarge},
		{name: "dim over option", in: "x 1 1 1\n", o: LoadOptions{DimMax: 2}, want: ErrTooLarge},
		{name: "huge line", in: "the 1 0\nof 1 1\n" + long, want: ErrTooLarge, errText: "line 3"},
		{name: "line over option", in: "the 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", o: LoadOptions{LineBytesMax: 64}, want: ErrTooLarge},
		{name: "long word", in: strings.Repeat("w", wordBytesMax+1) + " 1\n", want: ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ReadText(strings.NewReader(c.in), c.o)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("err %v, want %v", err, c.want)
				}
				if !strings.Contains(err.Error(), c.errText) {
					t.Fatalf("err %q does not say %q", err, c.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ws []string
			for i := range m.Len() {
				ws = append(ws, m.Word(i))
			}
			if got := strings.Join(ws, " "); got != c.words {
				t.Fatalf("words %q, want %q", got, c.words)
			}
		})
	}
}

// TestReadTextVectors: the duplicate's line is checked but its vector is
// not the one kept, vectors are normalised, and the order is the rank.
func TestReadTextVectors(t *testing.T) {
	m, err := ReadText(strings.NewReader("b 3 4\na 0 2\nB 1 0\n"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Lookup("b"); math.Abs(float64(v[0])-0.6) > 1e-6 || math.Abs(float64(v[1])-0.8) > 1e-6 {
		t.Fatalf("b = %v, want the first line's (0.6, 0.8)", v)
	}
	if !m.Ranked() {
		t.Fatal("a text model is ranked unless told otherwise")
	}
	m, err = ReadText(strings.NewReader("b 3 4\na 0 2\n"), LoadOptions{Unranked: true})
	if err != nil || m.Ranked() {
		t.Fatalf("Unranked: ranked=%v err=%v", m.Ranked(), err)
	}
	if _, err := ReadText(strings.NewReader("b 3 4\nb 1 x\n"), LoadOptions{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a malformed duplicate line: %v, want ErrMalformed", err)
	}
}

// TestReadTextMatchesBruteForce: vectors written in either format (with
// the shortest decimal that round-trips a float32) read back as the
// normalised originals, first occurrence winning.
func TestReadTextMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dim := rapid.IntRange(1, 12).Draw(t, "dim")
		n := rapid.IntRange(1, 20).Draw(t, "n")
		word2vec := rapid.Bool().Draw(t, "word2vec")
		var sb strings.Builder
		if word2vec {
			fmt.Fprintf(&sb, "%d %d\n", n, dim)
		}
		first := map[string][]float64{}
		var order []string
		for range n {
			w := rapid.StringMatching(`[a-cA-C]{1,2}`).Draw(t, "word")
			sb.WriteString(w)
			v := make([]float64, dim)
			for i := range v {
				f := float32(rapid.Float64Range(-10, 10).Draw(t, "x"))
				if i == 0 {
					f = float32(rapid.Float64Range(0.5, 10).Draw(t, "x0")) // non-zero
				}
				v[i] = float64(f)
				sb.WriteString(" " + strconv.FormatFloat(float64(f), 'g', -1, 32))
			}
			sb.WriteString("\n")
			lw := strings.ToLower(w)
			if _, ok := first[lw]; !ok {
				first[lw] = v
				order = append(order, lw)
			}
		}
		m, err := ReadText(strings.NewReader(sb.String()), LoadOptions{})
		if err != nil {
			t.Fatalf("%v\n%s", err, sb.String())
		}
		if m.Len() != len(order) || m.Dim() != dim {
			t.Fatalf("%d×%d, want %d×%d", m.Len(), m.Dim(), len(order), dim)
		}
		for i, w := range order {
			if m.Word(i) != w {
				t.Fatalf("word %d = %q, want %q", i, m.Word(i), w)
			}
			got, _ := m.Lookup(w)
			norm := 0.0
			for _, f := range first[w] {
				norm += f * f
			}
			norm = math.Sqrt(norm)
			for j, f := range first[w] {
				if math.Abs(float64(got[j])-f/norm) > 1e-6 {
					t.Fatalf("%q[%d] = %v, want %v", w, j, got[j], f/norm)
				}
			}
		}
	})
}

// TestReadTextGarbage: arbitrary input never panics, and what loads is a
// consistent model of unit vectors.
func TestReadTextGarbage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := rapid.StringMatching(`([a-z0-9 .eE+\-\n\t]|NaN|Inf|\x00|\xff){0,200}`).Draw(t, "input")
		m, err := ReadText(strings.NewReader(in), LoadOptions{LineBytesMax: 100})
		if err != nil {
			return
		}
		for i := range m.Len() {
			v, ok := m.Lookup(m.Word(i))
			if !ok || len(v) != m.Dim() {
				t.Fatalf("word %d inconsistent", i)
			}
			if n := dot(v, v); math.Abs(float64(n)-1) > 1e-4 {
				t.Fatalf("non-unit vector %v", v)
			}
		}
	})
}
