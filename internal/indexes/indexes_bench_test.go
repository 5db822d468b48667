package indexes

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/core"
	"dkv/vecidx"
)

// benchTexts are values of about 1 KB of words from the model's
// vocabulary, frequent words more often.
func benchTexts(m *vecidx.Model, n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	texts := make([]string, n)
	for i := range texts {
		var sb strings.Builder
		for sb.Len() < 1000 {
			sb.WriteString(m.Word(int(r.ExpFloat64()*2000) % m.Len()))
			sb.WriteByte(' ')
		}
		texts[i] = sb.String()
	}
	return texts
}

// benchKeys is the key space the benchmarks write: the bench's.
const benchKeys = 100_000

// cpuTime is the process's user and system CPU time so far: on a shared
// machine the steadier measure of cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPut is what a write with indexes on costs the node's loop when
// nothing was prepared (a replicated or replayed write): a value of about
// 1 KB of words from the model's vocabulary, analysed, embedded and
// indexed, over 100,000 keys.
func BenchmarkPut(b *testing.B) {
	m, err := vecidx.Default()
	if err != nil {
		b.Fatal(err)
	}
	texts := benchTexts(m, 1024)
	s := New(DefaultConfig(m, "built-in"))
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		s.Put(fmt.Sprintf("k%d", i%benchKeys), texts[i%len(texts)])
		i++
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(i)/1e3, "cpu-µs/op")
}

// BenchmarkPreparedWrite is a client's write as a server does it: Prepare
// (on the connection's goroutine), then the Put the node's loop does with
// the prepared work, with the deferred work a busy node's pacer gives it
// (a unit every 16 writes, about 2 ms at 8,000 writes a second). It
// reports the bytes allocated per write, which a server's collector must
// mark its whole index to reclaim.
func BenchmarkPreparedWrite(b *testing.B) {
	m, err := vecidx.Default()
	if err != nil {
		b.Fatal(err)
	}
	texts := benchTexts(m, 1024)
	s := New(DefaultConfig(m, "built-in"))
	b.ReportAllocs()
	i := 0
	cpu := cpuTime()
	for b.Loop() {
		key, value := fmt.Sprintf("k%d", i%benchKeys), texts[i%len(texts)]
		req := &core.Request{Op: core.OpSet, Key: key, Value: &value}
		s.Prepare(req)
		s.Expect(req.Prepared)
		s.Put(key, value)
		s.Expect(nil)
		if i%16 == 0 {
			s.Work(1)
		}
		i++
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(i)/1e3, "cpu-µs/op")
}
