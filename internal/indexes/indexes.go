package indexes

import (
	"errors"
	"fmt"

	"dkv/core"
	"dkv/textidx"
	"dkv/vecidx"
)

// Config chooses the indexes' models and tuning.
type Config struct {
	Text textidx.Options
	// Model gives the word vectors; ModelName says where they came from
	// (for status).
	Model     *vecidx.Model
	ModelName string
	Vec       vecidx.IndexOptions
	// ValueBytesMax is the node's limit on a value (0: none): Prepare
	// leaves alone a write with a value over it, which the node refuses.
	ValueBytesMax int
}

// DefaultConfig indexes with the default options and the given model.
func DefaultConfig(model *vecidx.Model, modelName string) Config {
	return Config{
		Text:      textidx.DefaultOptions(),
		Model:     model,
		ModelName: modelName,
		Vec:       vecidx.DefaultIndexOptions(),
	}
}

// defaultLimit is the hits a search returns when it names no limit, and
// defaultTopK those of a search_similar without top_k.
const (
	defaultLimit = 10
	defaultTopK  = 5
)

// Set is a node's indexes.
type Set struct {
	cfg Config
	// model is cfg.Model with each word's full-text code in its word
	// table (textidx.WordCode), so that one reading of a value gives both
	// its words for the text index and its embedding (see analyse).
	model *vecidx.Model
	text  *textidx.Index
	vec   *vecidx.Index
	// expect is the prepared work of the write being applied (Expect).
	expect *prepared
	// bytes is Bytes's last full count; changes and changedBytes are the
	// Puts and Removes since it, and the values they carried. A full
	// count walks the similarity index's graphs, so Bytes, asked before
	// every client write while a bound is set, counts again only once
	// they pass bytesRecountChanges or bytesRecountValueBytes.
	bytes, changedBytes int64
	changes             int
	counted             bool
}

// A count of the indexes' bytes (Bytes) lags at most this many changes,
// or changes carrying this many value bytes: with them, a bound is passed
// by no more than their indexing takes (a value's embedding is about 950
// bytes, and a word no other value holds about 140).
const (
	bytesRecountChanges    = 256
	bytesRecountValueBytes = 1 << 20
)

// prepared is the work Prepare did for a write's values: each value's
// analysed words and its embedding, in the order of the request's items.
type prepared struct {
	items []preparedValue
	next  int // the item the next Put most likely is
	one   [1]preparedValue
}

type preparedValue struct {
	key, value string
	doc        textidx.Doc
	vec        []float32 // nil: the value has no embedding
}

var _ core.Indexes = (*Set)(nil)

// CodedModel returns a copy of m whose words carry their full-text codes
// (textidx.WordCode), as a Set reads values with. New makes it when a
// Config's Model has no codes; making it takes tens of milliseconds for
// the built-in model, so a caller that makes many Sets over one model (the
// simulator makes one for each check of each node) passes CodedModel's
// result as every Config's Model. A Model with codes must have them from
// here: nothing else in dkv codes a model.
func CodedModel(m *vecidx.Model) *vecidx.Model { return m.WithWordCodes(textidx.WordCode) }

// BuiltInConfig is DefaultConfig on the built-in English model (vecidx.
// Default), coded once here rather than in every New: what a node runs
// without --embeddings, and what tests of the indexes' callers use.
func BuiltInConfig() (Config, error) {
	m, err := vecidx.Default()
	if err != nil {
		return Config{}, err
	}
	return DefaultConfig(CodedModel(m), "built-in"), nil
}

// New returns empty indexes; a node fills them (core.AttachIndexes).
func New(cfg Config) *Set {
	if cfg.Model == nil {
		panic("indexes: a Config needs a Model")
	}
	model := cfg.Model
	if !model.HasWordCodes() {
		model = CodedModel(model)
	}
	return &Set{
		cfg:   cfg,
		model: model,
		text:  textidx.New(cfg.Text),
		vec:   vecidx.NewIndex(cfg.Model.Dim(), cfg.Vec),
	}
}

// Prepare analyses a write's values and embeds them, for Put to use. It
// only reads the request and the immutable model and options, so hosts
// call it on their connection goroutines, in parallel.
//
// Hosts call it before the node has checked the request, so it skips a
// write with a value over ValueBytesMax: the node refuses that write, and
// analysing its value first let any client make the server spend 0.8 s
// and 190 MB on a 16 MiB line it then answered too_large.
func (s *Set) Prepare(req *core.Request) {
	var items []core.KV
	switch req.Op {
	case core.OpSet:
		if req.Value == nil {
			return
		}
		items = []core.KV{{Key: req.Key, Value: *req.Value}}
	case core.OpBulkSet:
		items = req.Items
	default:
		return
	}
	if s.cfg.ValueBytesMax > 0 {
		for _, kv := range items {
			if len(kv.Value) > s.cfg.ValueBytesMax {
				return
			}
		}
	}
	p := &prepared{}
	if len(items) == 1 { // a set: one allocation, not two
		p.items = p.one[:]
	} else {
		p.items = make([]preparedValue, len(items))
	}
	for i, kv := range items {
		pv := &p.items[i]
		pv.key, pv.value = kv.Key, kv.Value
		pv.doc, pv.vec = s.analyse(kv.Value)
	}
	req.Prepared = p
}

// analyse is what both indexes make of value: its Doc, and its embedding
// (nil if it has none). A plain value is read once, by the embedding, which
// hands each word and its full-text code to the analysis (textidx.Scanned):
// the profile of a write had the two reading and looking up the same words
// separately for over half of the indexes' cost. Any other value is
// analysed and embedded separately; both ways give the same answers.
func (s *Set) analyse(value string) (textidx.Doc, []float32) {
	var a textidx.Scanned
	if !a.Start(value, s.cfg.Text, vecidx.TextBytesMax) {
		doc := textidx.Analyze(value, s.cfg.Text)
		v, err := s.model.Embed(value)
		if err != nil {
			return doc, nil
		}
		return doc, v
	}
	v, err := s.model.EmbedScan(value, a.Word)
	doc := a.Doc()
	if err != nil {
		return doc, nil
	}
	return doc, v
}

// Expect sets the prepared work the next Puts may use.
func (s *Set) Expect(p any) {
	s.expect, _ = p.(*prepared)
	if s.expect != nil {
		s.expect.next = 0
	}
}

// find returns the prepared work for key holding value, if any: the items
// come in the request's order, so the next one is looked at first.
func (s *Set) find(key, value string) *preparedValue {
	p := s.expect
	if p == nil {
		return nil
	}
	for range p.items {
		pv := &p.items[p.next]
		p.next = (p.next + 1) % len(p.items)
		if pv.key == key && pv.value == value {
			return pv
		}
	}
	return nil
}

// Put indexes value under key, replacing what key held.
func (s *Set) Put(key, value string) {
	s.changes++
	s.changedBytes += int64(len(key) + len(value))
	if pv := s.find(key, value); pv != nil {
		s.text.Put(key, pv.doc)
		if pv.vec == nil {
			s.vec.Remove(key)
			return
		}
		// The embedding was made for the index alone: it may keep it.
		err := s.vec.PutOwned(key, pv.vec)
		assert(err == nil, "an embedding of the model's own dimension must index: %v", err)
		return
	}
	doc, v := s.analyse(value)
	s.text.Put(key, doc)
	if v == nil {
		// No known word: the value has no vector. Its old one must not
		// stay behind to be found.
		s.vec.Remove(key)
		return
	}
	err := s.vec.PutOwned(key, v)
	assert(err == nil, "an embedding of the model's own dimension must index: %v", err)
}

// Remove forgets key.
func (s *Set) Remove(key string) {
	s.changes++
	s.text.Remove(key)
	s.vec.Remove(key)
}

// Reset forgets everything. Until Loaded, the similarity index does no
// deferred work as values come (they wait, searched exactly): a restart
// indexes a large store without waiting for the similarity index's graphs
// to be linked, and Work links them afterwards (searches scan what is not
// linked yet exactly).
func (s *Set) Reset() {
	s.counted = false
	s.text.Reset()
	s.vec.Reset()
	s.vec.Bulk(true)
}

// Loaded ends the load that Reset began.
func (s *Set) Loaded() { s.vec.Bulk(false) }

// Work does deferred work of the similarity index: linking new vectors into
// their segments' graphs, compacting and merging segments.
func (s *Set) Work(budget int) bool { return s.vec.Work(budget) > 0 }

// Search answers search and search_similar.
func (s *Set) Search(req *core.Request) core.Response {
	var hits []core.Hit
	var err error
	switch req.Op {
	case core.OpSearch:
		hits, err = s.search(req)
	case core.OpSearchSimilar:
		hits, err = s.similar(req)
	default:
		return core.ErrorResponse(core.CodeBadRequest, "op %q is not a search", req.Op)
	}
	if err != nil {
		return errorResponse(err)
	}
	if hits == nil {
		hits = []core.Hit{}
	}
	return core.Response{OK: true, Hits: hits}
}

func (s *Set) search(req *core.Request) ([]core.Hit, error) {
	// The default count within the hits a search may return (a server's
	// --max-hits, which it keeps in the full-text index's ResultsMax): a
	// default over it was refused, so every search without a limit on a
	// server of --max-hits under 10 was bad_request (found by review).
	q := textidx.Query{Text: req.Query, Mode: textidx.All, Limit: min(defaultLimit, s.cfg.Text.ResultsMax)}
	if req.Mode == core.SearchModeAny {
		q.Mode = textidx.Any
	}
	if req.Limit > 0 {
		q.Limit = int(req.Limit)
	}
	found, err := s.text.Search(q)
	if err != nil {
		return nil, err
	}
	hits := make([]core.Hit, len(found))
	for i, h := range found {
		hits[i] = core.Hit{Key: h.Key, Score: h.Score}
	}
	return hits, nil
}

func (s *Set) similar(req *core.Request) ([]core.Hit, error) {
	// Within the hits a search may return, as for search: a server of
	// --max-hits 3 answered 5 (found by review).
	k := min(defaultTopK, s.cfg.Text.ResultsMax)
	if req.TopK > 0 {
		k = int(req.TopK)
	}
	q, err := s.cfg.Model.Embed(req.Query)
	if err != nil {
		return nil, err
	}
	found, err := s.vec.Search(q, k)
	if err != nil {
		return nil, err
	}
	hits := make([]core.Hit, len(found))
	for i, h := range found {
		hits[i] = core.Hit{Key: h.Key, Score: float64(h.Score)}
	}
	return hits, nil
}

// errorResponse gives an index's refusal its protocol code.
func errorResponse(err error) core.Response {
	switch {
	case errors.Is(err, textidx.ErrQueryTooLarge), errors.Is(err, vecidx.ErrTooLarge):
		return core.ErrorResponse(core.CodeTooLarge, "%v", err)
	case errors.Is(err, vecidx.ErrOnlyStopWords):
		return core.ErrorResponse(core.CodeBadRequest, "every word of the query is a stop word (the, of, …), which the embedding model skips, so it has no vector to compare with the values'")
	case errors.Is(err, vecidx.ErrLooksBinary):
		return core.ErrorResponse(core.CodeBadRequest, "the query looks binary (control bytes), so it has no vector to compare with the values'")
	case errors.Is(err, vecidx.ErrNoKnownWords):
		return core.ErrorResponse(core.CodeBadRequest, "no word of the query is in the embedding model, so it has no vector to compare with the values'")
	default:
		return core.ErrorResponse(core.CodeBadRequest, "%v", err)
	}
}

// Bytes estimates the memory both indexes hold, as Status's TextBytes and
// VectorBytes, counted again once the changes since the last count pass a
// bound (bytesRecountChanges, bytesRecountValueBytes).
func (s *Set) Bytes() int64 {
	if !s.counted || s.changes >= bytesRecountChanges || s.changedBytes >= bytesRecountValueBytes {
		s.bytes = s.text.Stats().Bytes + s.vec.Stats().Bytes
		s.changes, s.changedBytes, s.counted = 0, 0, true
	}
	return s.bytes
}

// Status describes both indexes.
func (s *Set) Status() core.IndexStatus {
	ts, vs := s.text.Stats(), s.vec.Stats()
	return core.IndexStatus{
		Docs:        ts.Docs,
		Terms:       ts.Terms,
		Postings:    ts.Postings,
		TextBytes:   ts.Bytes,
		Vectors:     vs.Vectors,
		Pending:     vs.Pending,
		Segments:    vs.Segments,
		WorkLeft:    vs.WorkLeft,
		VectorBytes: vs.Bytes,
		Model:       s.cfg.ModelName,
		Words:       s.cfg.Model.Len(),
		Dim:         s.cfg.Model.Dim(),
	}
}

func assert(ok bool, format string, args ...any) {
	if !ok {
		panic(fmt.Sprintf("indexes: "+format, args...))
	}
}
