package textidx

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"dkv/textidx/corpus"
)

// cpuTime returns the process's user+system CPU time. The benchmarks report
// it per op beside ns/op because the machine is shared: wall time per op
// grows with other processes' load, CPU time much less.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports CPU ns/op at the end of a benchmark.
type cpuMeter struct{ start time.Duration }

func startCPU(b *testing.B) cpuMeter {
	b.ResetTimer()
	return cpuMeter{start: cpuTime()}
}

func (m cpuMeter) stop(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-m.start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// wordsPer1KB is how many corpus words make about 1 KB of text.
const wordsPer1KB = 155

// texts1KB returns n synthetic texts of about 1 KB each.
func texts1KB(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]string, n)
	for i := range out {
		out[i] = corpus.SyntheticText(r, wordsPer1KB)
	}
	return out
}

func BenchmarkAnalyze1KB(b *testing.B) {
	texts := texts1KB(1, 256)
	o := DefaultOptions()
	total := 0
	for _, t := range texts {
		total += len(t)
	}
	b.SetBytes(int64(total / len(texts)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for i := 0; i < b.N; i++ {
		_ = Analyze(texts[i%len(texts)], o)
	}
	cpu.stop(b)
}

// BenchmarkAnalyzer1KB is BenchmarkAnalyze1KB with a reused Analyzer, as a
// host that keeps one per connection would run it.
func BenchmarkAnalyzer1KB(b *testing.B) {
	texts := texts1KB(1, 256)
	a := NewAnalyzer(DefaultOptions())
	total := 0
	for _, t := range texts {
		total += len(t)
	}
	b.SetBytes(int64(total / len(texts)))
	b.ReportAllocs()
	cpu := startCPU(b)
	for i := 0; i < b.N; i++ {
		_ = a.Analyze(texts[i%len(texts)])
	}
	cpu.stop(b)
}

// BenchmarkPut1KB measures Put of an analysed 1 KB document over a random
// one of 50,000 keys of an index that already holds them all: each Put
// replaces a document, so it pays for the removal too.
func BenchmarkPut1KB(b *testing.B) {
	const keys = 50_000
	texts := texts1KB(2, 1000)
	o := DefaultOptions()
	docs := make([]Doc, len(texts))
	for i, t := range texts {
		docs[i] = Analyze(t, o)
	}
	x := New(o)
	for k := 0; k < keys; k++ {
		x.Put(fmt.Sprintf("key%06d", k), docs[k%len(docs)])
	}
	r := rand.New(rand.NewPCG(3, 4))
	names := make([]string, keys)
	for k := range names {
		names[k] = fmt.Sprintf("key%06d", k)
	}
	b.ReportAllocs()
	cpu := startCPU(b)
	for i := 0; i < b.N; i++ {
		x.Put(names[r.IntN(keys)], docs[i%len(docs)])
	}
	cpu.stop(b)
	s := x.Stats()
	b.ReportMetric(float64(s.Bytes)/float64(s.Postings), "bytes/posting")
}

// BenchmarkSearch100k measures 1–3 word queries (words drawn from the
// corpus's Zipf distribution, stop words skipped) over 100,000 documents of
// about 150 words, and reports the latency percentiles besides ns/op.
func BenchmarkSearch100k(b *testing.B) {
	for _, mode := range []Mode{All, Any} {
		b.Run(mode.String(), func(b *testing.B) {
			x, queries := searchFixture(b)
			lat := make([]time.Duration, 0, b.N)
			cpu := startCPU(b)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if _, err := x.Search(Query{Text: queries[i%len(queries)], Mode: mode}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			cpu.stop(b)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}

var fixture struct {
	x       *Index
	queries []string
}

// searchFixture builds the 100k-document index once per process.
func searchFixture(b *testing.B) (*Index, []string) {
	if fixture.x != nil {
		return fixture.x, fixture.queries
	}
	const docs = 100_000
	r := rand.New(rand.NewPCG(5, 6))
	o := DefaultOptions()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := New(o)
	for i := 0; i < docs; i++ {
		x.Set(fmt.Sprintf("doc%06d", i), corpus.SyntheticText(r, 150))
	}
	z := corpus.NewZipf(r)
	queries := make([]string, 1000)
	for i := range queries {
		q := ""
		for n := 1 + r.IntN(3); n > 0; {
			w := corpus.Word(int(z.Uint64()))
			if isStopWord([]byte(w)) {
				continue
			}
			q += w + " "
			n--
		}
		queries[i] = q
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := x.Stats()
	b.Logf("index: %d docs, %d terms, %d postings, Stats.Bytes %.1f MB (%.1f bytes/posting), heap grew %.1f MB, avgdl %.1f",
		s.Docs, s.Terms, s.Postings, float64(s.Bytes)/1e6, float64(s.Bytes)/float64(s.Postings),
		float64(after.HeapAlloc-before.HeapAlloc)/1e6, s.AvgDocLen)
	fixture.x, fixture.queries = x, queries
	return x, queries
}
