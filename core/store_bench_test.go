package core

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// benchKey is the key%08d of cmd/bench's fills.
func benchKey(i int) string { return fmt.Sprintf("key%08d", i) }

// filledStore holds n keys of 100-byte values, stored in key order (as a
// snapshot's load and cmd/bench's fill store them) or in random order.
func filledStore(n int, random bool) (*Store, []string) {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = benchKey(i)
	}
	order := keys
	if random {
		order = append([]string(nil), keys...)
		r := rand.New(rand.NewPCG(1, 2))
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	// Fresh strings for every write, as a decoded request brings them.
	s := NewStore()
	value := make([]byte, 100)
	for _, k := range order {
		s.Set(strings.Clone(k), string(value))
	}
	return s, keys
}

// The store's operations on the node's loop, in stores of 100k and 1M
// keys: Set of an existing key (the benchmarks' overwrite), Get, Get with
// its value copied, and Set while a snapshot's clone is held
// (copy-on-write).
func BenchmarkStore(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		s, keys := filledStore(n, true)
		value := string(make([]byte, 100))
		r := rand.New(rand.NewPCG(3, 4))
		b.Run(fmt.Sprintf("set/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Set(keys[r.IntN(n)], value)
			}
		})
		b.Run(fmt.Sprintf("get/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := s.Get(keys[r.IntN(n)]); !ok {
					b.Fatal("missing")
				}
			}
		})
		// A Get whose value is then copied, as a reply does: the value's
		// bytes are read from memory too.
		b.Run(fmt.Sprintf("get_copy/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 256)
			for b.Loop() {
				v, ok := s.Get(keys[r.IntN(n)])
				if !ok {
					b.Fatal("missing")
				}
				buf = append(buf[:0], v...)
			}
		})
		b.Run(fmt.Sprintf("set_cloned/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%10_000 == 0 {
					s.Clone() // a new snapshot: every path is shared again
				}
				s.Set(keys[r.IntN(n)], value)
				i++
			}
		})
	}
}

// BenchmarkStoreMemory reports the heap the store holds per key, 1M keys of
// 100-byte values stored in key order and in random order.
func BenchmarkStoreMemory(b *testing.B) {
	for _, random := range []bool{false, true} {
		name := "ordered"
		if random {
			name = "random"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				s, keys := filledStore(1_000_000, random)
				runtime.GC()
				runtime.ReadMemStats(&m1)
				keysBytes := len(keys) * 16 // the benchmark's own []string
				for _, k := range keys {
					keysBytes += (len(k) + 15) &^ 15
				}
				b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)-int64(keysBytes))/float64(s.Len()), "B/key")
				runtime.KeepAlive(s)
				runtime.KeepAlive(keys)
			}
		})
	}
}
