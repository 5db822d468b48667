module dkv

go 1.26.8

require github.com/go-json-experiment/json v1.27.2

require (
	github.com/google/btree v1.1.3 // indirect
	pgregory.net/rapid v1.3.0 // indirect
)
