// Package textidx is a full-text index over the store's values, ranked with
// BM25. It does not know the store: the node calls Put (or Set) and Remove
// for every write, in the order of the writes (a server makes those calls
// on a goroutine of the indexes' own, cmd/node/indexworker.go), and Reset
// when a snapshot replaces the store; Search answers queries from the index
// alone. The expensive, pure part — Analyze, which turns a value into a Doc
// of terms — is safe to run on any goroutine (the host may analyse a value
// on the connection that received it, with an Analyzer per connection to
// make less garbage); the Index itself is node logic, owned by one
// goroutine, and the same calls in the same order give the same results.
//
// # Analysis
//
// Tokenizer. A word is a run of letters and digits (unicode.IsLetter,
// unicode.IsDigit); combining marks stay inside a word, and there is no
// Unicode normalisation (NFC "crème" and NFD "crème" are different words).
// Everything else separates words. Words are lower-cased (unicode.ToLower).
// Apostrophes (' and ’): a possessive "'s" at the end of a word is dropped
// ("John's" → "john", "it's" → "it"); an apostrophe between two word
// characters is dropped and the word goes on ("don't" → "dont",
// "rock'n'roll" → "rocknroll"); any other apostrophe separates. Each Han,
// Hiragana or Katakana character, and each letter or digit of Thai, Lao,
// Khmer or Myanmar with the combining marks after it, is a word by itself
// (unigrams), so a query finds a word inside unspaced text of those
// scripts; Hangul is spaced and splits as usual.
// A word longer than TokenBytesMax bytes is skipped, not cut.
//
// Stop words. 177 common English words (stopwords.go), matched after
// lower-casing and the apostrophe rules ("dont", "youre"), are dropped.
//
// Stemming. Words of ASCII letters (up to 48) are stemmed with the English
// (Porter2) stemmer, written from the Snowball description; words with
// digits or other letters are kept as they are.
// The stop-word tests and stems of the 4,096 most frequent English words
// are worked out once, when the package is initialised, and looked up
// (lexicon.go): stemming was 40% of Analyze's time; the lookup changes no
// result.
//
// Shared reading. A node's embedding model reads the same words of every
// value, so a host may let its reading serve both (scanned.go): Scanned
// builds the Doc from the words the embedding finds, each with the
// WordCode its word table holds for it (stop word, or the stem as the
// word's first bytes and an ending, worked out once per vocabulary word),
// and reads only the words without a code with the tokenizer. It takes
// plain text only (ASCII, no control characters but tab, LF and CR), where
// the two readings' words are known to agree, and gives Analyze's Doc bit
// for bit; other text goes to Analyze.
//
// Positions. Every word takes a position, counting from 0 — stop words and
// skipped words too — so "united states of america" holds "united" at 0,
// "state" at 1 and "america" at 3, and a phrase never matches across a
// removed word. The document length |D| counts only the indexed words.
//
// Non-text values are indexed as empty documents, i.e. not at all: a value
// that is not valid UTF-8; or holds a control character other than tab, LF
// and CR (C0, DEL, C1); or has fewer than one letter in four of its
// non-space characters (numbers, symbols); or whose words average more than
// 20 characters (base64 and other blobs, whose "words" run for dozens of
// characters between the odd '+' or '/'). A short base64 string such as
// "aGVsbG8=" looks like a word and is indexed as one. No input makes
// Analyze panic.
//
// # Queries
//
// A query is words and "double-quoted phrases", analysed like values. In All
// mode (the default) a document matches if it holds every term and every
// phrase; in Any mode, if it holds at least one term outside quotes or one
// whole phrase. A phrase matches where its terms sit at the same distances
// as in the query (stop words in the query keep their place: "states of
// america" needs "america" two positions after "state", whatever word is
// between); only kept positions count (see PositionsPerTermMax). A phrase
// with one term left is a plain term; an empty phrase ("") is ignored. An
// unclosed quote is ErrBadQuery.
//
// Results are best first, by score, ties broken by key ascending. A query
// with no words at all (empty, or only spaces and punctuation) is
// ErrEmptyQuery; a query whose words are all stop words, all unknown, or
// all over TokenBytesMax returns no hits and a nil error. Errors wrap
// ErrEmptyQuery, ErrQueryTooLarge (over QueryBytesMax bytes or
// QueryTermsMax words, stop words included, or phrases that need more than
// PhraseChecksMax lookups), ErrBadQuery (unclosed quote,
// invalid UTF-8, unknown Mode) and ErrBadLimit (Limit < 0 or over
// ResultsMax; 0 means 10) and are matched with errors.Is.
//
// # Scoring
//
// BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25
// and Beyond", Foundations and Trends in Information Retrieval 3(4), 2009):
//
//	score(D, Q) = Σ_{q ∈ Q} IDF(q) · f(q,D)·(k1 + 1) / (f(q,D) + k1·(1 − b + b·|D|/avgdl))
//	IDF(q)      = ln( (N − n(q) + 0.5) / (n(q) + 0.5) + 1 )
//
// Q is the query's distinct terms (inside and outside phrases; phrases only
// decide which documents match), f(q,D) the term's frequency in D, |D| the
// document length, avgdl the mean length of the N indexed documents, and
// n(q) the number of them holding q. The IDF is Lucene's variant, with the
// "+ 1" inside the logarithm, so that it stays positive for terms in more
// than half the documents, where the paper's form goes negative. Defaults:
// k1 = 1.2, b = 0.75. Scores are summed in one fixed term order on every
// path, so equal inputs give bit-equal scores and ties are real ties.
//
// # Limits
//
// Options holds every limit, with defaults in DefaultOptions:
// TokenBytesMax 64 (longer words skipped), TermsPerDocMax 4096 distinct
// terms per value (later new terms dropped), PositionsPerTermMax 128
// positions kept per term per value (the first ones), QueryBytesMax 1024,
// QueryTermsMax 32 words, ResultsMax 1000 hits, PhraseChecksMax 2,097,152
// lookups of a phrase word's position in one search. A phrase is tried at
// each kept position of its word with the fewest in the document, and its
// other words looked up from there, so a phrase of w words costs up to
// (w − 1)·PositionsPerTermMax lookups a document holding its words: some
// 4,000 for 32 words that each value repeats, and 20,000 such values took
// 5 s, which the bound cuts to a refusal after about 0.15 s.
//
// # Structure and cost
//
// Each term has a list of postings (document id, frequency) in the order
// documents were put; each live document has a forward index: its terms
// sorted by the high half of their hash, with term ids, hash tags,
// frequencies and positions, in one allocation. Search in All mode walks the rarest term's
// postings and looks the other terms up in each document's forward index
// (binary search); Any mode adds up scores term by term; a heap of size
// Limit keeps the best hits.
//
// Removal (and replacement, which removes first) marks the document dead
// and counts a dead posting on each of its terms; a term's list is
// compacted in one pass once its dead postings outnumber its live ones, so
// removal costs O(1) per term, amortised, and never searches a long list.
// A dead document id is reused once no posting names it. The longest pause
// is one compaction of the longest list, a few nanoseconds per posting
// (0.8 ms measured for a term held by 100,000 of 200,000 documents), and
// the dictionary's doubling, which rehashes every term once.
//
// Memory per indexed (term, document) pair: 8 bytes of posting and, in
// the forward index of a value of under 65,536 words (the narrow layout,
// see forward), 10 bytes (term id, and 16-bit hash tag, frequency and
// position start) and 2 bytes per kept position, i.e. per indexed word;
// longer values take 16 and 4. On top come slack in the postings lists
// (a short list's slice grows by half; a long one is kept in 4 KiB chunks
// and only its last chunk has room: see postings.go), dead postings
// awaiting compaction (at most as many as the live ones), 64 bytes and the
// text per distinct term, and about 100 bytes plus the key per document.
// Stats.Bytes estimates the total from counters kept as the index
// changes: for 100,000 synthetic documents of 150 words it says 24.2
// bytes per posting, 182 MB (25.5 when every list was one slice grown by
// half, 33 with the wide layout only and lists that doubled); for 1 KB
// values overwritten at random, 33 against 37 with one slice a list, whose
// room stayed at its longest after compaction (BenchmarkSearch100k and
// BenchmarkPut1KB report these).
package textidx
