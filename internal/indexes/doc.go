// Package indexes joins the full-text index (textidx) and the similarity
// index (vecidx) behind core.Indexes, the small interface through which a
// node keeps them in step with its store. cmd/node wires it in with
// --enable-indexes; the simulator wires it into its nodes to check the
// indexes against a brute-force scan of their state.
//
// A value is indexed twice on every Put: its words for BM25 search, and
// its embedding (the weighted mean of its words' vectors) for
// similarity. A value whose words the embedding model does not know has no
// vector and is found by search only. A plain value's words are read once
// for both (Set.analyse): the embedding's reading hands each word, with
// the full-text code the model's word table carries for it, to
// textidx.Scanned. Both indexes are node logic: no
// goroutines, no clock, no map order in any output, so the simulator's
// runs stay a function of their seed.
package indexes
