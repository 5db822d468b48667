package vecidx

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// byteOrderMark is U+FEFF in UTF-8, which ReadText skips at the start of
// a file.
const byteOrderMark = "\ufeff"

// LoadOptions bounds what ReadText accepts. A zero field takes its default.
type LoadOptions struct {
	// WordsMax is how many distinct words to keep: the first WordsMax of
	// the file, which in GloVe and word2vec files are the most frequent.
	// The rest of the file is not read. Default 400,000 (all of GloVe 6B);
	// at most modelWordsMax.
	WordsMax int
	// DimMax refuses (ErrTooLarge) vectors longer than this. Default and
	// ceiling: DimMax, what the index takes.
	DimMax int
	// LineBytesMax refuses (ErrTooLarge) a longer line. Default 64 KiB: a
	// 300-dimensional line is about 3 KiB.
	LineBytesMax int
	// Unranked says the file is not in frequency order, so Embed weighs
	// every word the same instead of by rank.
	Unranked bool
}

const (
	loadWordsMaxDefault     = 400_000
	loadLineBytesMaxDefault = 64 << 10
)

func (o LoadOptions) withDefaults() LoadOptions {
	if o.WordsMax <= 0 {
		o.WordsMax = loadWordsMaxDefault
	}
	o.WordsMax = min(o.WordsMax, modelWordsMax)
	if o.DimMax <= 0 {
		o.DimMax = DimMax
	}
	o.DimMax = min(o.DimMax, DimMax)
	if o.LineBytesMax <= 0 {
		o.LineBytesMax = loadLineBytesMaxDefault
	}
	o.LineBytesMax = max(o.LineBytesMax, 64) // room for a word2vec header
	return o
}

// ReadText reads vectors in the GloVe text format (one "word v1 … vd" line
// per word) or the word2vec text format (the same lines after a first line
// "count dim"); a first line of exactly two non-negative integers is taken
// as a word2vec header. A UTF-8 byte order mark at the start of the file
// is skipped. Fields are separated by spaces or tabs; blank lines
// are skipped; a trailing space (common in word2vec files) is fine. Words
// are lower-cased, and of two words equal after that the first wins (the
// later line is still checked, then dropped). Values must be finite
// numbers, and every vector must have the same dimension as the first (or
// as the header): ErrMalformed and ErrMixedDim name the line. A file with
// no vectors is ErrEmpty.
func ReadText(r io.Reader, o LoadOptions) (*Model, error) {
	o = o.withDefaults()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(o.LineBytesMax, 64<<10)), o.LineBytesMax)
	var (
		b          *modelBuilder
		dim        int    // 0 until the header or the first vector sets it
		dimFrom    string // where dim came from, for ErrMixedDim
		headerN    = -1   // the word2vec header's count, when there is one
		lineNo     int
		vectors    int // lines that held a vector, duplicates included
		scratch    []float64
		firstLine  = true
		stoppedMax bool
	)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if lineNo == 1 {
			// A byte order mark, which editors on Windows put before the
			// text, is no part of the first word: kept, it made GloVe's
			// first word ("the") one no text holds, and a word2vec
			// header a word of one value, so that line 2 was refused as
			// a vector of another dimension.
			line = strings.TrimPrefix(line, byteOrderMark)
		}
		word, rest := nextField(line)
		if word == "" {
			continue // blank line
		}
		if firstLine {
			firstLine = false
			if n, d, ok := word2vecHeader(word, rest); ok {
				if d < 1 {
					return nil, fmt.Errorf("%w: line 1: header dimension %d", ErrMalformed, d)
				}
				if d > o.DimMax {
					return nil, fmt.Errorf("%w: line 1: header dimension %d over DimMax %d", ErrTooLarge, d, o.DimMax)
				}
				dim, dimFrom, headerN = d, "the header (line 1) says", n
				continue
			}
		}
		if len(word) > wordBytesMax {
			return nil, fmt.Errorf("%w: line %d: word of %d bytes, over %d", ErrTooLarge, lineNo, len(word), wordBytesMax)
		}
		n := countFields(rest)
		if n == 0 {
			return nil, fmt.Errorf("%w: line %d: word %q has no values", ErrMalformed, lineNo, word)
		}
		if dim == 0 {
			if n > o.DimMax {
				return nil, fmt.Errorf("%w: line %d: %d values, over DimMax %d", ErrTooLarge, lineNo, n, o.DimMax)
			}
			dim, dimFrom = n, fmt.Sprintf("line %d has", lineNo)
		}
		if n != dim {
			return nil, fmt.Errorf("%w: line %d has %d values, %s %d", ErrMixedDim, lineNo, n, dimFrom, dim)
		}
		if b == nil {
			hint := o.WordsMax
			if headerN >= 0 {
				hint = min(hint, headerN)
			}
			var err error
			if b, err = newModelBuilder(dim, !o.Unranked, hint); err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
			scratch = make([]float64, dim)
		}
		for i := range scratch {
			var f string
			f, rest = nextField(rest)
			x, err := strconv.ParseFloat(f, 32)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: value %d of %q is %q, not a float32", ErrMalformed, lineNo, i+1, word, f)
			}
			scratch[i] = x
		}
		vectors++
		if _, err := b.add(word, scratch); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if len(b.words) == o.WordsMax {
			stoppedMax = true
			break
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrTooLarge, lineNo+1, o.LineBytesMax)
		}
		return nil, err
	}
	if b == nil {
		return nil, ErrEmpty
	}
	if headerN >= 0 && !stoppedMax && vectors != headerN {
		return nil, fmt.Errorf("%w: the header says %d vectors, the file has %d", ErrMalformed, headerN, vectors)
	}
	return b.model(), nil
}

// word2vecHeader recognises a first line of exactly two non-negative
// integers.
func word2vecHeader(first, rest string) (count, dim int, ok bool) {
	second, tail := nextField(rest)
	if second == "" {
		return 0, 0, false
	}
	if more, _ := nextField(tail); more != "" {
		return 0, 0, false
	}
	c, err1 := strconv.ParseUint(first, 10, 31)
	d, err2 := strconv.ParseUint(second, 10, 31)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return int(c), int(d), true
}

func isFieldSep(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// nextField splits off the first space- or tab-separated field of s
// without allocating; field is "" when s holds none.
func nextField(s string) (field, rest string) {
	i := 0
	for i < len(s) && isFieldSep(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isFieldSep(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

func countFields(s string) int {
	n := 0
	for {
		var f string
		f, s = nextField(s)
		if f == "" {
			return n
		}
		n++
	}
}
