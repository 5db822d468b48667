package vecidx

import _ "embed"

// defaultModel is the shipped English model (model/BUILD.md says how it
// was built): GloVe 6B 100d, the 44,000 most frequent words, retrofitted
// to WordNet 3.0, int8-quantised; 4.9 MB.
//
//go:embed model/default.dkvemb
var defaultModel []byte

// Default parses the shipped model. Each call parses it anew (about 40 ms:
// see BenchmarkDefault), since the package keeps no shared state: a caller
// loads it once and keeps the *Model, which is read-only.
func Default() (*Model, error) {
	return parseModel(defaultModel)
}
