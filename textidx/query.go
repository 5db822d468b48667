package textidx

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Errors of Search, matched with errors.Is; the returned error wraps one of
// them with what exactly was wrong.
var (
	ErrEmptyQuery    = errors.New("textidx: empty query")
	ErrQueryTooLarge = errors.New("textidx: query too large")
	ErrBadQuery      = errors.New("textidx: bad query")
	ErrBadLimit      = errors.New("textidx: bad limit")
)

// Mode says how a query's parts combine.
type Mode int

const (
	// All: a document matches if it holds every term and every phrase.
	All Mode = iota
	// Any: a document matches if it holds at least one term outside
	// quotes, or one whole phrase.
	Any
)

func (m Mode) String() string {
	switch m {
	case All:
		return "all"
	case Any:
		return "any"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Query is a search: words, and phrases in double quotes.
type Query struct {
	Text  string
	Mode  Mode
	Limit int // hits wanted; 0 means 10 (or ResultsMax if smaller)
}

// Hit is one matching document.
type Hit struct {
	Key   string
	Score float64
}

// queryWord is one term of a clause and its offset within the clause.
type queryWord struct {
	term   string
	offset uint32
}

// clause is one part of a query: a single term, or a phrase of two or more
// terms at fixed offsets from the first (offset 0).
type clause struct {
	words []queryWord
}

func (c clause) isPhrase() bool { return len(c.words) > 1 }

// parsedQuery is a query's clauses and its distinct terms, sorted: the order
// in which scores are summed, so that every path sums the same way.
type parsedQuery struct {
	clauses []clause
	terms   []string
}

// parseQuery splits q into clauses. Text between double quotes is a phrase;
// outside them each word is a clause. Stop words are dropped but count in a
// phrase's offsets; a phrase left with one term is a plain term.
func parseQuery(text string, o Options) (parsedQuery, error) {
	var pq parsedQuery
	if len(text) > o.QueryBytesMax {
		return pq, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrQueryTooLarge, len(text), o.QueryBytesMax)
	}
	if !utf8.ValidString(text) {
		return pq, fmt.Errorf("%w: not valid UTF-8", ErrBadQuery)
	}
	parts := strings.Split(text, `"`)
	if len(parts)%2 == 0 {
		return pq, fmt.Errorf("%w: a double quote at byte %d is not closed", ErrBadQuery, strings.LastIndexByte(text, '"'))
	}
	words := 0
	for i, part := range parts {
		phrase := i%2 == 1
		tz := newTokenizer(part, o.TokenBytesMax, nil)
		var ph clause
		first, position := -1, 0
		for tz.next() {
			words++
			if words > o.QueryTermsMax {
				return pq, fmt.Errorf("%w: more than %d words", ErrQueryTooLarge, o.QueryTermsMax)
			}
			p := position
			position++
			if tz.long || isStopWord(tz.tok) {
				continue
			}
			w := tz.tok
			if tz.stemmable {
				w = stem(w)
			}
			term := string(w)
			if !phrase {
				pq.clauses = append(pq.clauses, clause{words: []queryWord{{term: term}}})
				continue
			}
			if first < 0 {
				first = p
			}
			ph.words = append(ph.words, queryWord{term: term, offset: uint32(p - first)})
		}
		if len(ph.words) == 1 {
			ph.words[0].offset = 0
		}
		if len(ph.words) > 0 {
			pq.clauses = append(pq.clauses, ph)
		}
	}
	if words == 0 {
		return pq, fmt.Errorf("%w: no words in %q", ErrEmptyQuery, text)
	}
	for _, c := range pq.clauses {
		for _, w := range c.words {
			pq.terms = append(pq.terms, w.term)
		}
	}
	slices.Sort(pq.terms)
	pq.terms = slices.Compact(pq.terms)
	return pq, nil
}

// limitOf checks q.Limit and returns the number of hits to return.
func limitOf(limit int, o Options) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("%w: %d is negative", ErrBadLimit, limit)
	case limit > o.ResultsMax:
		return 0, fmt.Errorf("%w: %d is over the limit of %d", ErrBadLimit, limit, o.ResultsMax)
	case limit == 0:
		return min(limitDefault, o.ResultsMax), nil
	}
	return limit, nil
}
