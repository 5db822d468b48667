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
// text, as node logic must be (see docs/ARCHITECTURE.md, "The one idea":
// nothing here touches files, clocks or goroutines; cmd/node opens the
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
// Model.EmbedScan is Embed that also hands the caller each word it finds,
// with a code of the caller's kept in that word's table slot
// (Model.WithWordCodes): the full-text index takes its terms from there
// (internal/indexes), so a value's words are looked up once for both
// indexes, in the cache line Embed loads anyway.
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
// segment.go, hnsw.go, nibble.go) answering top-k cosine queries: HNSW
// graphs (Malkov and Yashunin, "Efficient and robust approximate nearest
// neighbor search using Hierarchical Navigable Small World graphs",
// arXiv:1603.09320) written here against the paper — levels drawn with
// mL = 1/ln M, greedy descent through the upper layers, a best-first
// search with a result set of ef in layer 0, neighbours chosen by the
// paper's heuristic (Algorithm 4, keepPrunedConnections; copies of a
// neighbour, nodes of the same code, are set aside, see linkBack), M links
// a layer and 2·M in layer 0 — kept in segments, as Lucene keeps one graph per
// segment. A write puts its vector in a new node of the growing segment
// and returns; the node is linked into that segment's graph later, in
// bounded units of Work the node's host runs in spare turns (or by the
// write itself past PendingMax unlinked nodes), and until then every
// search scans it exactly. A segment is sealed at SegmentVectors (4,096)
// nodes, so every write links into a graph of a few thousand nodes, which
// stays in the cache: at 100k vectors, an insert into one graph of all of
// them cost ~120 µs (mostly cache misses), one into a segment costs
// 8–12 µs (BenchmarkLink). A removed or replaced vector leaves a tombstone, skipped in
// results; a segment whose tombstones pass 70% of its nodes is compacted
// (its live vectors linked again in the growing segment). When nothing
// else is left to do, Work merges sealed segments into larger graphs, up
// to MergeVectorsMax nodes, linking the smaller one's live vectors into
// the larger one's graph with EfConstruction (Lucene too keeps the largest
// graph of a merge), with the whole of a Work call's budget: a twentieth
// of a core at a busy node's pacer ticks, two fifths once it is idle, so
// an index loaded with 100k values settles in half a minute. A search runs every segment's
// graph with EfSearch scaled by the square root of its share of the
// vectors, plus the exact scan of what is unlinked, and scores the best
// 20·k candidates again with the float32 vectors, so reported scores are
// exact. Graph nodes hold 4-bit codes (sixteen components a word, four
// multiply-adds an integer multiply; one 64-byte line a node at 100
// dimensions), which is what a traversal reads for every similarity.
// Below ExactBelow vectors a search is the exact scan, which is also the
// reference the tests measure recall against. At 100k value vectors of
// the default model (1 KB texts), merged, with the default options (M 16,
// EfConstruction 32, SegmentEfConstruction 8, EfSearch 400), a search
// finds 95.8% of the exact top 10 at 18–24 times the exact scan's queries
// a second (cmd/bench index, three runs; BenchmarkBench100k). Until the
// segments are merged, it runs them all: at 100k vectors in 30 segments,
// recall@10 0.95 at only 1.4 times the exact scan's queries a second. The index was an
// inverted file for a while (k-means lists, cheaper writes, recall 0.97 at
// ~20 times), dropped for the graphs that issue 10 asks for; it is in the
// history (commit 97e3a4e).
package vecidx
