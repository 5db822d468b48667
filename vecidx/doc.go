// Package vecidx gives dkv's values meaning vectors and finds the nearest
// ones: the word embeddings behind search_similar, and the index over them.
//
// # Word embeddings
//
// A Model is a vocabulary with one unit vector per word, in frequency order
// when the source was. Default returns the model that ships with dkv
// (model/default.dkvemb, 4.9 MB, embedded in the binary, so it works offline
// on a fresh machine): the 44,000 most frequent words of GloVe 6B 100d
// (Pennington et al. 2014, public domain), retrofitted to WordNet 3.0
// (Faruqui et al. 2015) with a seeded tenth of WordNet's synonym pairs held
// out for measurement. model/BUILD.md records how it was built, from which
// inputs, and how well it ranks the held-out synonyms; cmd/embedbuild
// rebuilds it bit for bit. ReadText loads a user's own vectors instead
// (dkv's --embeddings PATH), in the GloVe text format ("word v1 … vd" per
// line) or the word2vec text format (the same after a "count dim" line),
// told apart by the first line. Words are lower-cased and the first of two
// equal words wins. Every malformed input is an error wrapping one of
// ErrMalformed (not a finite number, missing values, bad checksum),
// ErrMixedDim (naming both dimensions and the line), ErrEmpty or
// ErrTooLarge (over a named limit: LoadOptions, DimMax, wordBytesMax),
// never a panic.
//
// Model.Embed turns a value into its vector: the SIF-weighted mean of its
// words' vectors (Arora et al. 2017), weight a/(a+p(w)) with a = 1e-3 and
// p(w) from the word's rank by Zipf's law, less its component along the
// model's common direction (the paper's second step, with the direction
// computed from the model alone: the expected weighted word vector of
// Zipf-distributed text), normalised. Without that step the vectors of
// long values all lie within some 15° of one direction, which hides what
// a value is about and slows the nearest-neighbour search while making it
// less exact (recall@10 0.70 against 0.91 on 20k values of 1 KB).
// Tokenize says what a word is (letters, digits, inner apostrophes and
// hyphens, lower-cased); only the first TextBytesMax bytes and
// TextWordsMax words are read. English stop words are skipped; an unknown
// word is retried by its hyphen parts, without "'s", without apostrophes,
// then as a singular, and else skipped. A value that is empty,
// binary-looking, only stop words or only unknown words has no vector:
// ErrNoKnownWords, saying which. Embed is a pure function of model and
// text, as node logic must be (see DESIGN.md's determinism rules: nothing
// here touches files, clocks or goroutines; cmd/node opens the
// --embeddings file and hands ReadText a reader), and sums in float32 in
// the text's order with every product rounded, so its bits are the same
// on every platform. A node embeds every value it writes, so Embed is
// built for speed: words are found in a table of the model's own
// (wordtable.go) without copying them out of the text, a batch of words at
// a time so that the cache misses of their lookups, and then of their
// vectors, overlap; a model read from the binary format is summed from
// its int8 codes (a quarter of the float32 vectors' memory), four words a
// pass; and the only allocation is the vector returned. 1 KB of text takes
// 15–20 µs with the model in cache (BenchmarkEmbed1KB), and in a busy
// server, whose other work keeps pushing the model out of the cache, the
// lookups' misses once took as long again.
//
// The binary format (WriteModel, ReadModel) is little-endian:
//
//	magic   "DKVEMB"
//	version uint16 (1)
//	flags   uint16 (bit 0: words in frequency order)
//	dim     uint32, count uint32
//	words   count × (uvarint length, UTF-8 bytes), lower-case, distinct
//	vectors count × (float32 scale s, dim × int8 q), v[i] ≈ s·q[i]
//	crc     uint32, CRC-32C of everything before it
//
// Each unit vector is quantised alone with s = max|v[i]|/127, so a
// component moves by at most s/2 and the vector read back (renormalised)
// lies within √dim·max|v[i]|/127 of the original. ReadModel checks the
// checksum before anything else: a flipped bit is ErrMalformed.
//
// # Nearest-neighbour index
//
// The package also holds an index over value vectors (index.go,
// partition.go, trainer.go, nibble.go, code.go): an inverted file (IVF) —
// centroids trained by k-means on the vectors, and per centroid the list
// of vectors nearest to it — answering top-k cosine queries, with an exact
// scan instead while the index is below a size threshold, where a scan is
// both cheaper and exact. A Put or Remove is cheap and immediate: one
// comparison with each of about √n/3 centroids and an append to a list, or a
// swap out of one, with nothing left behind to clean up; the centroids are
// trained again in the node's spare time (Work) as the index grows or its
// data changes. A search ranks the centroids, scans the lists of the
// nearest until it has scored ScanShare of the vectors (or ScanMin), by
// 4-bit codes packed sixteen to a word, four multiply-adds to an integer
// multiply (56 bytes a vector at 100 dimensions, so the scan streams little
// memory), and scores the best few hundred of them again with the float32
// vectors, so reported scores are exact. At 100k value vectors of the
// default model (1 KB texts), with the default options, a Put costs about
// 5 µs of CPU and a search finds 96–97% of the exact top 10 at 20–25 times
// the exact scan's queries a second (BenchmarkBench100k; cmd/bench index). The index was an HNSW graph until a graph insert (0.12 ms at
// 100k vectors, most of it cache misses) proved too dear for a node that
// indexes every write; see index.go.
package vecidx
