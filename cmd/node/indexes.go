package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"dkv/core"
	"dkv/internal/indexes"
	"dkv/vecidx"
)

// indexInlineValuesMax bounds --index-inline-values (whose default is
// core's): a billion values, more than a node holds.
const indexInlineValuesMax = 1_000_000_000

// indexHitsMax is the most hits a search of the indexes returns, so the
// largest --max-hits they take: the similarity index's bound on k.
const indexHitsMax = vecidx.KMax

// newIndexes builds the indexes of --enable-indexes: the word vectors of
// --embeddings (GloVe or word2vec text), or the model that ships in the
// binary. They are empty until the node attaches them to its recovered
// store.
func newIndexes(embeddings string, limits core.Limits, logf func(string, ...any)) (core.Indexes, error) {
	start := time.Now()
	model, name, err := loadModel(embeddings)
	if err != nil {
		return nil, err
	}
	logf("indexes: word vectors from %s: %d words, %d dimensions (loaded in %v)", name, model.Len(), model.Dim(), time.Since(start).Round(time.Millisecond))
	cfg := indexes.DefaultConfig(model, name)
	// The full-text index refuses queries by its own limit too: the
	// server's (--max-query-bytes) is the one to keep.
	cfg.Text.QueryBytesMax = limits.QueryBytesMax
	// And hits by its own limit: the server's (--max-hits, at most
	// indexHitsMax) is the one to keep.
	cfg.Text.ResultsMax = limits.HitsMax
	// Values are analysed ahead of the node only if it will take them.
	cfg.ValueBytesMax = limits.ValueBytesMax
	if err := cfg.Text.Validate(); err != nil {
		return nil, err
	}
	return indexes.New(cfg), nil
}

func loadModel(path string) (*vecidx.Model, string, error) {
	if path == "" {
		m, err := vecidx.Default()
		if err != nil {
			return nil, "", fmt.Errorf("the built-in embedding model: %w", err)
		}
		return m, "built-in", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("--embeddings: %w", err)
	}
	defer f.Close()
	m, err := vecidx.ReadText(bufio.NewReaderSize(f, 1<<20), vecidx.LoadOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("--embeddings %s: %w", path, err)
	}
	return m, path, nil
}
