package textidx

import (
	"errors"
	"fmt"
	"math"
)

// Options are the BM25 parameters and the limits of an Index. Every limit has
// a default in DefaultOptions; the zero value is not valid (K1 and B may be 0
// on purpose, so zero fields do not mean "default").
type Options struct {
	K1, B float64 // BM25 term-frequency saturation and length normalisation

	// TokenBytesMax: a word longer than this (in UTF-8 bytes, after
	// lower-casing) is skipped, not cut: a cut blob would be noise. It still
	// takes a position.
	TokenBytesMax int
	// TermsPerDocMax: distinct terms kept per value; terms first seen after
	// the limit is reached are dropped (with their occurrences, which then
	// do not count in the document's length either).
	TermsPerDocMax int
	// PositionsPerTermMax: positions kept per term per value, the first ones
	// in the text. A phrase is found only through kept positions; term
	// frequencies count every occurrence.
	PositionsPerTermMax int
	// QueryBytesMax: a longer query is refused with ErrQueryTooLarge.
	QueryBytesMax int
	// QueryTermsMax: a query with more words than this (stop words
	// included) is refused with ErrQueryTooLarge.
	QueryTermsMax int
	// ResultsMax: the largest Query.Limit; a larger one is ErrBadLimit.
	ResultsMax int
	// PhraseChecksMax bounds the work of one search's phrases: the
	// lookups of a phrase word's position (one per word after the first
	// for each place the phrase may start, in each document holding its
	// words). A search that needs more is refused with ErrQueryTooLarge.
	// A phrase costs up to its words times PositionsPerTermMax lookups a
	// document: a phrase of 32 words over 20,000 values of "alpha beta"
	// repeated took 5 s, and held the server's index updates, and so its
	// writes, for as long (found by review).
	PhraseChecksMax int
}

// limitDefault is the number of hits a Query with Limit 0 asks for.
const limitDefault = 10

// DefaultOptions returns the usual BM25 parameters (k1 = 1.2, b = 0.75) and
// limits sized for values of a few KB.
func DefaultOptions() Options {
	return Options{
		K1:                  1.2,
		B:                   0.75,
		TokenBytesMax:       64,
		TermsPerDocMax:      4096,
		PositionsPerTermMax: 128,
		QueryBytesMax:       1024,
		QueryTermsMax:       32,
		ResultsMax:          1000,
		// About 0.2 s of lookups; a phrase of three words whose first
		// occurs 5 times in each of 100,000 values needs 1,000,000.
		PhraseChecksMax: 2 << 20,
	}
}

// Limits the options themselves must stay under, so that counts fit the
// index's 32-bit fields with room to spare.
const (
	tokenBytesMaxMax   = 1 << 10
	optionCountMax     = QueryBytesMaxMax
	phraseChecksMaxMax = 1 << 40
)

// QueryBytesMaxMax is the largest QueryBytesMax (and bound on the other
// counts of Options): a server's query limit must stay within it.
const QueryBytesMaxMax = 1 << 20

// ErrBadOptions is returned by Options.Validate.
var ErrBadOptions = errors.New("textidx: bad options")

// Validate reports whether the options are usable. New and Analyze panic on
// options that are not, so a host checks its configuration with this first.
func (o Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadOptions}, args...)...)
	}
	switch {
	case !(o.K1 >= 0) || math.IsInf(o.K1, 0):
		return bad("K1 %v is not a finite number >= 0", o.K1)
	case !(o.B >= 0 && o.B <= 1):
		return bad("B %v is not within [0, 1]", o.B)
	case o.TokenBytesMax < 1 || o.TokenBytesMax > tokenBytesMaxMax:
		return bad("TokenBytesMax %d is not within [1, %d]", o.TokenBytesMax, tokenBytesMaxMax)
	case o.PhraseChecksMax < 1 || o.PhraseChecksMax > phraseChecksMaxMax:
		return bad("PhraseChecksMax %d is not within [1, %d]", o.PhraseChecksMax, phraseChecksMaxMax)
	}
	for _, c := range []struct {
		name string
		v    int
	}{
		{"TermsPerDocMax", o.TermsPerDocMax},
		{"PositionsPerTermMax", o.PositionsPerTermMax},
		{"QueryBytesMax", o.QueryBytesMax},
		{"QueryTermsMax", o.QueryTermsMax},
		{"ResultsMax", o.ResultsMax},
	} {
		if c.v < 1 || c.v > optionCountMax {
			return bad("%s %d is not within [1, %d]", c.name, c.v, optionCountMax)
		}
	}
	return nil
}

func (o Options) mustValidate() {
	if err := o.Validate(); err != nil {
		panic(err)
	}
}
