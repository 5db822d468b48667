module dkv

go 1.26.8

require (
	github.com/anishathalye/porcupine v1.3.1
	github.com/go-json-experiment/json v1.27.2
	github.com/google/btree v1.1.3
	pgregory.net/rapid v1.3.0
)

require golang.org/x/sync v0.25.0
