package textidx

import "math"

// bm25 holds what scoring needs for one search: the parameters and the
// collection's mean document length.
type bm25 struct {
	k1, b, avgdl float64
}

// idf is Lucene's form of the BM25 inverse document frequency,
// ln((N − n + 0.5)/(n + 0.5) + 1), which stays positive even for a term in
// more than half the documents (Robertson & Zaragoza's form can go
// negative there).
func idf(docs, docFreq int) float64 {
	n, df := float64(docs), float64(docFreq)
	return math.Log((n-df+0.5)/(df+0.5) + 1)
}

// norm is the length part of the denominator, k1·(1 − b + b·|D|/avgdl),
// computed once per document rather than once per term.
func (m bm25) norm(length uint32) float64 {
	return m.k1 * (1 - m.b + m.b*float64(length)/m.avgdl)
}

// term is one query term's share of a document's score:
// IDF · f·(k1+1) / (f + norm). Every path of Search goes through here and
// sums shares in the query's term order, so equal inputs give bit-equal
// scores and ties are real ties.
func (m bm25) term(idf float64, freq uint32, norm float64) float64 {
	f := float64(freq)
	return idf * (f * (m.k1 + 1)) / (f + norm)
}
