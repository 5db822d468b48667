package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"dkv/client"
	"dkv/core"
	"dkv/internal/indexes"
	"dkv/internal/nodeproc"
	"dkv/vecidx"
)

type indexBenchConfig struct {
	clusterBenchConfig // clients, duration, slices, ... of the write figure
	docs               int
	queries            int
	textBytes          int
	// altBin, altFlags: a second indexed server (another build, or more
	// flags), measured in the same slices, to compare index changes.
	altBin, altFlags string
}

func runIndexBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg indexBenchConfig
	cfg.register(fs, "(the write figure's, per server)")
	fs.IntVar(&cfg.docs, "docs", 100_000, "values indexed for the query and recall figures")
	fs.IntVar(&cfg.queries, "queries", 2000, "queries timed per figure")
	fs.IntVar(&cfg.textBytes, "text-bytes", 1000, "bytes of English text per value")
	fs.StringVar(&cfg.flags, "server-flags", "", "extra cmd/node flags for every server (e.g. --event-loops 0)")
	fs.StringVar(&cfg.altBin, "alt-node-bin", "", "when set (or --alt-server-flags is), a second indexed server from this cmd/node binary\n(default: the same as the others) takes part in the write figure's slices")
	fs.StringVar(&cfg.altFlags, "alt-server-flags", "", "more cmd/node flags for the second indexed server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.clients < 1 || cfg.slices < 1 || cfg.duration <= 0 || cfg.space < 1 || cfg.docs < 100 || cfg.queries < 10 || cfg.textBytes < 10 {
		fmt.Fprintln(stderr, "need --clients, --slices, --duration, --keys positive, --docs >= 100, --queries >= 10, --text-bytes >= 10")
		return 2
	}
	cfg.progress = stderr
	if err := indexBench(cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "bench index: %v\n", err)
		return 1
	}
	return 0
}

// corpus makes English-looking text: words of the built-in model's
// vocabulary (ranked by frequency in GloVe's corpus) drawn with Zipf's law,
// so common words, stop words among them, come as often as in prose.
type corpus struct {
	words []string
	zipf  []float64 // cumulative weights
	// queryWords are the middle of the vocabulary, words a user searches
	// for: neither stop words nor rarities, and in the embedding model.
	queryWords []string
}

func newCorpus(m *vecidx.Model) *corpus {
	c := &corpus{}
	sum := 0.0
	for i := range m.Len() {
		w := m.Word(i)
		if strings.IndexFunc(w, func(r rune) bool { return r < 'a' || r > 'z' }) >= 0 {
			continue // punctuation and numbers: prose is mostly words
		}
		c.words = append(c.words, w)
		sum += 1 / math.Pow(float64(len(c.words)), 1.07)
		c.zipf = append(c.zipf, sum)
	}
	for _, w := range c.words[100:min(len(c.words), 5100)] {
		if _, err := m.Embed(w); err == nil {
			c.queryWords = append(c.queryWords, w)
		}
	}
	return c
}

func (c *corpus) word(r *rand.Rand) string {
	x := r.Float64() * c.zipf[len(c.zipf)-1]
	i, _ := slices.BinarySearch(c.zipf, x)
	return c.words[min(i, len(c.words)-1)]
}

// text is about n bytes of words.
func (c *corpus) text(r *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.word(r))
	}
	return b.String()
}

// query is 1 to 3 query words.
func (c *corpus) query(r *rand.Rand) string {
	n := 1 + r.IntN(3)
	q := make([]string, n)
	for i := range q {
		q[i] = c.queryWords[r.IntN(len(c.queryWords))]
	}
	return strings.Join(q, " ")
}

func indexBench(cfg indexBenchConfig, out io.Writer) error {
	model, err := vecidx.Default()
	if err != nil {
		return err
	}
	corp := newCorpus(model)
	r := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 4096)
	for i := range pool {
		pool[i] = corp.text(r, cfg.textBytes)
	}
	fmt.Fprintf(out, "corpus: %d-word vocabulary of the built-in model, Zipf-distributed; values of ~%d bytes, e.g. %q\n\n",
		len(corp.words), cfg.textBytes, pool[0][:min(len(pool[0]), 120)]+"…")

	if err := indexWriteFigure(cfg, pool, out); err != nil {
		return err
	}
	docs := make([]string, cfg.docs)
	for i := range docs {
		docs[i] = corp.text(r, cfg.textBytes)
	}
	if err := indexInProcess(cfg, model, corp, docs, out); err != nil {
		return err
	}
	return indexQueryFigure(cfg, corp, docs, out)
}

// indexWriteFigure: durable Sets of text into a single node with and
// without --enable-indexes, in alternating slices of one run.
func indexWriteFigure(cfg indexBenchConfig, pool []string, out io.Writer) error {
	work, bin, err := workspace(cfg.dir, "dkv-bench-index-", cfg.nodeBin, out)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	flags := strings.Fields(cfg.flags)
	plain, err := nodeproc.Start(bin, filepath.Join(work, "plain"), flags...)
	if err != nil {
		return err
	}
	defer plain.Kill()
	indexed, err := nodeproc.Start(bin, filepath.Join(work, "indexed"), append(flags, "--enable-indexes")...)
	if err != nil {
		return err
	}
	defer indexed.Kill()
	systems := []*system{
		{name: "without indexes", pids: []int{plain.Pid()}, roles: []string{"plain"}, pause: true, procs: []*nodeproc.Process{plain}},
		{name: "with indexes", pids: []int{indexed.Pid()}, roles: []string{"indexed"}, pause: true, procs: []*nodeproc.Process{indexed}},
	}
	addrs := []string{plain.Addr, indexed.Addr}
	if cfg.altBin != "" || cfg.altFlags != "" {
		altBin := cfg.altBin
		if altBin == "" {
			altBin = bin
		}
		alt, err := nodeproc.Start(altBin, filepath.Join(work, "alt"), append(append(flags, "--enable-indexes"), strings.Fields(cfg.altFlags)...)...)
		if err != nil {
			return err
		}
		defer alt.Kill()
		systems = append(systems, &system{name: "with indexes (alt)", pids: []int{alt.Pid()}, roles: []string{"alt"}, pause: true, procs: []*nodeproc.Process{alt}})
		addrs = append(addrs, alt.Addr)
	}
	sets := make([][]func(ctx context.Context, key, value string) error, len(addrs))
	for range cfg.clients {
		for i, addr := range addrs {
			c, err := client.Dial(addr)
			if err != nil {
				return err
			}
			defer c.Close()
			sets[i] = append(sets[i], c.Set)
		}
	}
	wc := cfg.clusterBenchConfig
	wc.values = func(r *rand.Rand) string { return pool[r.IntN(len(pool))] }
	fmt.Fprintf(out, "writes: %d clients per server, ~%d-byte English values, %v per server in %d alternating slices, server flags %q ...\n",
		cfg.clients, cfg.textBytes, cfg.duration, cfg.slices, cfg.flags)
	// First into empty stores, as a node is loaded: most writes add a key,
	// and every byte the indexes keep for a value is fresh memory. Then
	// once every key holds a value, as a node lives: writes replace
	// values, and the memory of those they replace is used again.
	fmt.Fprintf(out, "\ninto empty stores (the key space fills as the run goes):\n")
	if err := indexWriteRun(cfg, wc, systems, sets, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nfilling every server's key space (%d keys) ...\n", cfg.space)
	for i, addr := range addrs {
		start := time.Now()
		if err := populate(addr, cfg.space, func(k int) string { return pool[k%len(pool)] }, io.Discard, io.Discard); err != nil {
			return fmt.Errorf("%s: %w", systems[i].name, err)
		}
		filled := time.Since(start)
		if err := waitIndexesSettled(addr); err != nil {
			return fmt.Errorf("%s: %w", systems[i].name, err)
		}
		fmt.Fprintf(out, "  %s: filled in %v, settled %v later\n", systems[i].name, filled.Round(100*time.Millisecond), (time.Since(start) - filled).Round(100*time.Millisecond))
	}
	full := make([]*system, len(systems))
	for i, s := range systems {
		full[i] = &system{name: s.name, pids: s.pids, roles: s.roles, pause: s.pause, procs: s.procs}
	}
	fmt.Fprintf(out, "into full stores (every key written once before, the indexes settled; writes replace values):\n")
	if err := indexWriteRun(cfg, wc, full, sets, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "(the target is judged on the first figure, into empty stores)\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := client.Dial(indexed.Addr); err == nil {
		if st, err := c.Status(ctx); err == nil && st.Indexes != nil {
			fmt.Fprintf(out, "indexed server after the run: %d values, %d words, %d postings, text index ~%d MiB, %d vectors (%d not yet linked into the similarity index's graphs)\n",
				st.Indexes.Docs, st.Indexes.Terms, st.Indexes.Postings, st.Indexes.TextBytes>>20, st.Indexes.Vectors, st.Indexes.Pending)
		}
		c.Close()
	}
	fmt.Fprintln(out)
	return nil
}

// indexWriteRun measures the systems' writes in alternating slices, each
// system's clients calling sets[i], and prints the figures.
func indexWriteRun(cfg indexBenchConfig, wc clusterBenchConfig, systems []*system, sets [][]func(ctx context.Context, key, value string) error, out io.Writer) error {
	for i, s := range systems {
		s.cpus = make([]time.Duration, 1)
		s.sets = sets[i]
	}
	if err := alternate(systems, wc); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tclients\tvalues/s\tp50\tp99\tp99.9\terrors\tserver CPU/op\tpage faults/op\t")
	for _, s := range systems {
		r := s.res
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t%.1fµs\t%.2f\t\n", s.name, r.clients, r.rate(),
			ms(r.lat.percentile(50)), ms(r.lat.percentile(99)), ms(r.lat.percentile(99.9)), r.errors,
			float64(s.cpuPerOp().Nanoseconds())/1000, s.faultsPerOp())
	}
	tw.Flush()
	p, x := systems[0], systems[1]
	fmt.Fprintf(out, "write throughput: indexed / plain = %.2f (target >= 0.5); CPU/op indexed / plain = %.2f\n",
		x.res.rate()/p.res.rate(), float64(x.cpuPerOp())/float64(p.cpuPerOp()))
	fmt.Fprintf(out, "by slice pair (adjacent in time), indexed / plain: %s\n", sliceRatios(x.sliceRates, p.sliceRates))
	if len(systems) > 2 {
		a := systems[2]
		fmt.Fprintf(out, "alt (%s %s): alt / indexed = %.2f, alt / plain = %.2f; CPU/op alt / indexed = %.2f\n",
			cmp.Or(cfg.altBin, "same binary"), cfg.altFlags, a.res.rate()/x.res.rate(), a.res.rate()/p.res.rate(), float64(a.cpuPerOp())/float64(x.cpuPerOp()))
		fmt.Fprintf(out, "by slice pair, alt / indexed: %s\n", sliceRatios(a.sliceRates, x.sliceRates))
	}
	return nil
}

// waitIndexesSettled waits, up to indexSettleMax, until the server at addr
// has no deferred index work left (a server without indexes has none).
func waitIndexesSettled(addr string) error {
	c, err := client.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), indexSettleMax+10*time.Second)
	defer cancel()
	_, err = settleIndexes(ctx, c)
	return err
}

// settleIndexes polls a server's status until its indexes have no
// deferred work left (links, merges), or indexSettleMax has passed, and
// returns the last status; its Indexes is nil for a server without.
func settleIndexes(ctx context.Context, c interface {
	Status(context.Context) (*core.Status, error)
}) (*core.Status, error) {
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		st, err := c.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		if st.Indexes == nil || st.Indexes.WorkLeft == 0 || time.Since(start) >= indexSettleMax {
			return st, nil
		}
	}
}

// indexInProcess: indexing throughput and the similarity index's recall,
// in this process, on the indexes a node runs (no network, no disk).
func indexInProcess(cfg indexBenchConfig, model *vecidx.Model, corp *corpus, docs []string, out io.Writer) error {
	set := indexes.New(indexes.DefaultConfig(model, "built-in"))
	t0 := time.Now()
	for i, d := range docs {
		set.Put(keyName(i), d)
	}
	put := time.Since(t0)
	t1 := time.Now()
	for set.Work(1024) {
	}
	train := time.Since(t1)
	st := set.Status()
	fmt.Fprintf(out, "indexing %d values in process: %.0f values/s as writes see it (full-text + embedding, %.1fµs each), deferred work (linking graphs, merging segments) after: %v; text index ~%d MiB (%.0f bytes per posting), %d words\n",
		len(docs), float64(len(docs))/put.Seconds(), float64(put.Microseconds())/float64(len(docs)),
		train.Round(time.Millisecond), st.TextBytes>>20, float64(st.TextBytes)/float64(max(st.Postings, 1)), st.Terms)

	// Recall@10 of the similarity index against exact search, on the
	// values' embeddings, for query words' embeddings.
	vec := vecidx.NewIndex(model.Dim(), vecidx.DefaultIndexOptions())
	for i, d := range docs {
		if v, err := model.Embed(d); err == nil {
			if err := vec.Put(keyName(i), v); err != nil {
				return err
			}
		}
	}
	for vec.Work(1024) > 0 {
	}
	r := rand.New(rand.NewPCG(3, 4))
	var qs [][]float32
	for len(qs) < cfg.queries {
		if v, err := model.Embed(corp.query(r)); err == nil {
			qs = append(qs, v)
		}
	}
	const k = 10
	t2 := time.Now()
	approx := make([][]vecidx.Hit, len(qs))
	for i, q := range qs {
		hits, err := vec.Search(q, k)
		if err != nil {
			return err
		}
		approx[i] = hits
	}
	approxTime := time.Since(t2)
	exactN := min(len(qs), 200) // exact search is slow: time a sample
	t3 := time.Now()
	found := 0
	for i, q := range qs[:exactN] {
		exact := vec.Exact(q, k)
		for _, h := range exact {
			if slices.ContainsFunc(approx[i], func(a vecidx.Hit) bool { return a.Key == h.Key }) {
				found++
			}
		}
	}
	exact := time.Since(t3)
	hq, eq := float64(len(qs))/approxTime.Seconds(), float64(exactN)/exact.Seconds()
	fmt.Fprintf(out, "similarity over %d value vectors: recall@10 = %.3f against exact search (target >= 0.95), %.0f queries/s against exact %.0f: %.1fx (target >= 10x)\n\n",
		vec.Len(), float64(found)/float64(exactN*k), hq, eq, hq/eq)
	return nil
}

// indexQueryFigure: full-text query latency through a real server holding
// cfg.docs values, as a client sees it.
func indexQueryFigure(cfg indexBenchConfig, corp *corpus, docs []string, out io.Writer) error {
	work, bin, err := workspace(cfg.dir, "dkv-bench-index-q-", cfg.nodeBin, out)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	srv, err := nodeproc.Start(bin, filepath.Join(work, "indexed"), append(strings.Fields(cfg.flags), "--enable-indexes")...)
	if err != nil {
		return err
	}
	defer srv.Kill()
	c, err := client.Dial(srv.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	const batch = 500
	t0 := time.Now()
	for i := 0; i < len(docs); i += batch {
		items := make([]client.KV, 0, batch)
		for j := i; j < min(i+batch, len(docs)); j++ {
			items = append(items, client.KV{Key: keyName(j), Value: docs[j]})
		}
		if err := c.BulkSet(ctx, items); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "loaded %d values into an indexed server in %v (bulk sets of %d)\n", len(docs), time.Since(t0).Round(time.Millisecond), batch)
	r := rand.New(rand.NewPCG(5, 6))
	figure := func(name string, ask func(q string) (int, error)) error {
		var lat latencies
		hits := 0
		for range cfg.queries {
			q := corp.query(r)
			t := time.Now()
			n, err := ask(q)
			if err != nil {
				return fmt.Errorf("%s %q: %w", name, q, err)
			}
			lat = append(lat, time.Since(t))
			hits += n
		}
		fmt.Fprintf(out, "%-30s p50 %s  p99 %s  p99.9 %s  (%d queries of 1-3 words, %.1f hits each)\n", name,
			ms(lat.percentile(50)), ms(lat.percentile(99)), ms(lat.percentile(99.9)), cfg.queries, float64(hits)/float64(cfg.queries))
		return nil
	}
	search := func(opts ...client.SearchOption) func(string) (int, error) {
		return func(q string) (int, error) {
			h, err := c.Search(ctx, q, opts...)
			return len(h), err
		}
	}
	if err := figure("search (all words)", search()); err != nil {
		return err
	}
	if err := figure("search (any word)", search(client.AnyWord())); err != nil {
		return err
	}
	similar := func(q string) (int, error) {
		h, err := c.SearchSimilar(ctx, q, 10)
		return len(h), err
	}
	if err := figure("search_similar (top 10)", similar); err != nil {
		return err
	}
	// The similarity index links and merges its segments in the node's
	// idle time; once it has settled, its searches are the fastest.
	st, err := c.Status(ctx)
	if err != nil || st.Indexes == nil {
		return fmt.Errorf("status: %v", err)
	}
	fmt.Fprintf(out, "server: %s\n", indexStatusLine(st.Indexes))
	t1 := time.Now()
	if st, err = settleIndexes(ctx, c); err != nil {
		return err
	}
	if st.Indexes == nil {
		return errors.New("status: the indexed server reports no indexes")
	}
	fmt.Fprintf(out, "after %v idle (deferred work left: %d units): %s\n", time.Since(t1).Round(100*time.Millisecond), st.Indexes.WorkLeft, indexStatusLine(st.Indexes))
	if err := figure("search_similar (top 10), settled", similar); err != nil {
		return err
	}
	fmt.Fprintln(out, "(latency as one client sees it over loopback, round trip included; targets for search: p50 <= 1 ms, p99 <= 10 ms)")
	return nil
}

// indexSettleMax bounds the wait for a loaded server's similarity index to
// finish its links and merges.
const indexSettleMax = 3 * time.Minute

func indexStatusLine(s *core.IndexStatus) string {
	return fmt.Sprintf("%d values, %d words, %d postings, text index ~%d MiB, %d vectors (%d pending) in %d segments, vectors ~%d MiB",
		s.Docs, s.Terms, s.Postings, s.TextBytes>>20, s.Vectors, s.Pending, s.Segments, s.VectorBytes>>20)
}

// sliceRatios lists a[i] / b[i] for the slices of two alternating systems,
// then their median and range: how much of a run's ratio is the weather.
func sliceRatios(a, b []float64) string {
	var rs []float64
	var sb strings.Builder
	for i := range min(len(a), len(b)) {
		if b[i] <= 0 {
			continue
		}
		r := a[i] / b[i]
		rs = append(rs, r)
		fmt.Fprintf(&sb, "%.2f ", r)
	}
	if len(rs) == 0 {
		return "none"
	}
	slices.Sort(rs)
	fmt.Fprintf(&sb, "(median %.2f, %.2f–%.2f)", rs[len(rs)/2], rs[0], rs[len(rs)-1])
	return sb.String()
}
