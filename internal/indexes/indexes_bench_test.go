package indexes

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"dkv/vecidx"
)

// BenchmarkPut is what a write with indexes on costs the node's loop: a
// value of about 1 KB of words from the model's vocabulary.
func BenchmarkPut(b *testing.B) {
	m, err := vecidx.Default()
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	texts := make([]string, 1024)
	for i := range texts {
		var sb strings.Builder
		for sb.Len() < 1000 {
			sb.WriteString(m.Word(int(r.ExpFloat64()*2000) % m.Len()))
			sb.WriteByte(' ')
		}
		texts[i] = sb.String()
	}
	s := New(DefaultConfig(m, "built-in"))
	i := 0
	for b.Loop() {
		s.Put(fmt.Sprintf("k%d", i%50000), texts[i%len(texts)])
		i++
	}
}
