package vecidx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far. The machine
// the figures were measured on is shared, so wall time per operation
// swings with other work; CPU time is the steadier measure of cost, and
// the benchmarks report both.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCorpus makes the text that cmd/bench index writes: words of the
// model's vocabulary that are all letters a–z, drawn with Zipf's law
// (exponent 1.07), so that stop words and common words come as often as in
// prose; and queries of 1–3 words from ranks 100..5100 of that list, words
// a user searches for. The figures the issue sets are measured on this mix,
// so the benchmarks here use the same one.
type benchCorpus struct {
	words []string
	zipf  []float64 // cumulative weights
}

func newBenchCorpus(m *Model) *benchCorpus {
	c := &benchCorpus{}
	sum := 0.0
	for i := range m.Len() {
		w := m.Word(i)
		if strings.IndexFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			continue
		}
		c.words = append(c.words, w)
		sum += 1 / math.Pow(float64(len(c.words)), 1.07)
		c.zipf = append(c.zipf, sum)
	}
	return c
}

func (c *benchCorpus) word(r *rand.Rand) string {
	x := r.Float64() * c.zipf[len(c.zipf)-1]
	i, _ := slices.BinarySearch(c.zipf, x)
	return c.words[min(i, len(c.words)-1)]
}

// text is about n bytes of words.
func (c *benchCorpus) text(r *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.word(r))
	}
	return b.String()
}

func (c *benchCorpus) query(r *rand.Rand) string {
	n := 1 + r.IntN(3)
	q := make([]string, n)
	for i := range q {
		q[i] = c.words[100+r.IntN(min(5000, len(c.words)-100))]
	}
	return strings.Join(q, " ")
}

// benchVectors embeds n texts of about 1 KB and nq queries of the bench's
// mix with m. Texts and queries without a vector are skipped.
func benchVectors(tb testing.TB, m *Model, n, nq int) (docs, queries [][]float32) {
	tb.Helper()
	c := newBenchCorpus(m)
	r := rand.New(rand.NewPCG(1, 2))
	for len(docs) < n {
		if v, err := m.Embed(c.text(r, 1000)); err == nil {
			docs = append(docs, v)
		}
	}
	r = rand.New(rand.NewPCG(3, 4))
	for len(queries) < nq {
		if v, err := m.Embed(c.query(r)); err == nil {
			queries = append(queries, v)
		}
	}
	return docs, queries
}

// BenchmarkEmbed1KB: Embed of ~1 KB values of the bench's corpus (about
// 170 words, a third of them stop words).
//
//	go test ./vecidx/ -run '^$' -bench Embed1KB
func BenchmarkEmbed1KB(b *testing.B) {
	m, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	c := newBenchCorpus(m)
	r := rand.New(rand.NewPCG(1, 2))
	texts := make([]string, 256)
	bytes := 0
	for i := range texts {
		texts[i] = c.text(r, 1000)
		bytes += len(texts[i])
	}
	b.SetBytes(int64(bytes / len(texts)))
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		if _, err := m.Embed(texts[i%len(texts)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(i)/1e3, "cpu-µs/op")
}

// BenchmarkBench100k is cmd/bench index's similarity figure at 100k
// values, in process: 100k value vectors of ~1 KB bench texts, put into
// the default index and built through Work (timed: s-build), then 20,000
// Puts that replace vectors and the Work they leave (linking, compaction,
// merges; timed: cpu-µs/write, and cpu-µs/put for the Puts alone), then
// recall@10 of 500 bench queries against Exact (on 200 of them, as the
// bench does) and the speedup of Search over Exact.
//
//	go test ./vecidx/ -run '^$' -bench Bench100k -benchtime 1x
func BenchmarkBench100k(b *testing.B) {
	benchFigure(b, 100000, DefaultIndexOptions())
}

// BenchmarkBench20k is the same at the bench's quick size.
func BenchmarkBench20k(b *testing.B) {
	benchFigure(b, 20000, DefaultIndexOptions())
}

func benchFigure(b *testing.B, n int, o IndexOptions) {
	m, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	docs, queries := benchVectors(b, m, n, 500)
	b.ResetTimer()
	for range b.N {
		measureBench(b, o, docs, queries)
	}
}

// measureBench builds an index of docs with o and reports what cmd/bench
// index reports, and what Puts and their Work cost.
func measureBench(b *testing.B, o IndexOptions, docs, queries [][]float32) {
	const k, exactN, replaces = 10, 200, 20000
	x := NewIndex(len(docs[0]), o)
	keys := make([]string, len(docs))
	start, cpu := time.Now(), cpuTime()
	for i, v := range docs {
		keys[i] = fmt.Sprintf("v%d", i)
		if err := x.Put(keys[i], v); err != nil {
			b.Fatal(err)
		}
		if i%8 == 7 {
			x.Work(1)
		}
	}
	for x.Work(1000) > 0 {
	}
	build, buildCPU := time.Since(start), cpuTime()-cpu
	var sims uint64
	for _, sg := range x.segs {
		sims += sg.g.simsDone
	}
	b.ReportMetric(float64(sims)/float64(len(docs)), "sims/built")
	cpu = cpuTime()
	for i := range replaces {
		if err := x.Put(keys[(i*7)%len(keys)], docs[(i*13+5)%len(docs)]); err != nil {
			b.Fatal(err)
		}
	}
	putCPU := cpuTime() - cpu
	for x.Work(1000) > 0 {
	}
	writeCPU := cpuTime() - cpu
	st := x.Stats()
	simsNow := func() (n uint64) {
		for _, sg := range x.segs {
			n += sg.g.simsDone
		}
		return n
	}
	sims0 := simsNow()
	start = time.Now()
	approx := make([][]Hit, len(queries))
	for i, q := range queries {
		approx[i], _ = x.Search(q, k)
	}
	approxTime := time.Since(start)
	b.ReportMetric(float64(simsNow()-sims0)/float64(len(queries)), "sims/search")
	start = time.Now()
	found := 0
	for i, q := range queries[:exactN] {
		for _, w := range x.Exact(q, k) {
			if slices.ContainsFunc(approx[i], func(h Hit) bool { return h.Key == w.Key }) {
				found++
			}
		}
	}
	exact := time.Since(start)
	hq, eq := float64(len(queries))/approxTime.Seconds(), float64(exactN)/exact.Seconds()
	b.ReportMetric(float64(found)/float64(exactN*k), "recall@10")
	b.ReportMetric(hq, "approx_q/s")
	b.ReportMetric(eq, "exact_q/s")
	b.ReportMetric(hq/eq, "speedup")
	b.ReportMetric(float64(putCPU.Nanoseconds())/replaces/1e3, "cpu-µs/put")
	b.ReportMetric(float64(writeCPU.Nanoseconds())/replaces/1e3, "cpu-µs/write")
	b.ReportMetric(build.Seconds(), "s-build")
	b.ReportMetric(float64(buildCPU.Nanoseconds())/float64(len(docs))/1e3, "cpu-µs/built")
	b.ReportMetric(float64(st.Segments), "segments")
	b.ReportMetric(float64(st.Bytes)/float64(len(docs)), "bytes/vector")
}

// BenchmarkBench100kUnmerged is BenchmarkBench100k with merges off: the
// index as a bulk load leaves it before idle work merges its segments.
func BenchmarkBench100kUnmerged(b *testing.B) {
	o := DefaultIndexOptions()
	o.MergeVectorsMax = 0
	benchFigure(b, 100000, o)
}
