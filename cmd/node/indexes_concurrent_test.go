package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/client"
)

// indexWrite is one acknowledged write of a key, with when the client sent
// it and when the acknowledgement came.
type indexWrite struct {
	start, end time.Time
	river      bool // the value holds the word searched for
}

// indexSearch is one answered search: its interval and the keys it found.
type indexSearch struct {
	start, end time.Time
	keys       []string
}

// A real server's searches, taken while writers keep changing which values
// hold the word searched for, find exactly what some moment of the
// search's own interval held: every key whose last write acknowledged
// before the search began held the word is found unless a later write that
// overlaps the search took it away, and no key is found that held the word
// at no moment the search could have seen. The writes go through the
// server's index worker (queued, applied in order) while the searches wait
// for it: a search that missed a write acknowledged before it was sent, or
// saw a value never written, fails here.
func TestIndexSearchesSeeEveryAcknowledgedWrite(t *testing.T) {
	s := start(t, filepath.Join(t.TempDir(), "data"), "--enable-indexes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const (
		writers      = 4
		keysEach     = 8
		writesEach   = 150
		searchers    = 3
		riverValue   = "a boat on the river"
		noRiverValue = "a stone in the garden"
	)
	history := make([]map[string][]indexWrite, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers+searchers)
	done := make(chan struct{})
	for w := range writers {
		history[w] = map[string][]indexWrite{}
		goClient(&wg, s.addr, errs, func(c *client.KVClient) {
			x := uint32(w + 1)
			for i := range writesEach {
				x = x*1664525 + 1013904223
				key := fmt.Sprintf("w%d-k%d", w, int(x>>8)%keysEach)
				river := x>>20&1 == 0
				value := noRiverValue
				if river {
					value = riverValue
				}
				value += fmt.Sprintf(" %d", i) // every write its own value
				begin := time.Now()
				if err := c.Set(ctx, key, value); err != nil {
					errs <- fmt.Errorf("set %s: %w", key, err)
					return
				}
				history[w][key] = append(history[w][key], indexWrite{begin, time.Now(), river})
			}
		})
	}
	var smu sync.Mutex
	var searches []indexSearch
	var swg sync.WaitGroup
	for range searchers {
		goClient(&swg, s.addr, errs, func(c *client.KVClient) {
			for {
				select {
				case <-done:
					return
				default:
				}
				begin := time.Now()
				hits, err := c.Search(ctx, "river", client.Limit(1000))
				if err != nil {
					errs <- fmt.Errorf("search: %w", err)
					return
				}
				found := indexSearch{start: begin, end: time.Now()}
				for _, h := range hits {
					found.keys = append(found.keys, h.Key)
				}
				smu.Lock()
				searches = append(searches, found)
				smu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)
	swg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	writes := map[string][]indexWrite{}
	for _, h := range history {
		for k, ws := range h {
			writes[k] = ws
		}
	}
	keys := make([]string, 0, len(writes))
	for k := range writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, sr := range searches {
		for _, k := range keys {
			held := slices.Contains(sr.keys, k)
			if !possible(writes[k], sr, held) {
				t.Fatalf("a search in [%v, %v] %s %s, which no moment of it allows; the key's writes: %s",
					sr.start.Format("15:04:05.000000"), sr.end.Format("15:04:05.000000"),
					map[bool]string{true: "found", false: "did not find"}[held], k, describe(writes[k]))
			}
		}
	}
	if len(searches) < 10 {
		t.Fatalf("only %d searches ran beside the writes", len(searches))
	}
	t.Logf("%d searches checked against %d writes to %d keys", len(searches), writers*writesEach, len(keys))
}

// possible reports whether a search over [sr.start, sr.end] may see a key
// whose writes (in order, one at a time) are ws as holding the word (held)
// or not: the versions it may see are the last one acknowledged before it
// began (none: the key did not exist) through the last one sent before it
// ended.
func possible(ws []indexWrite, sr indexSearch, held bool) bool {
	first := -1 // the last write acknowledged before the search began
	for i, w := range ws {
		if w.end.Before(sr.start) {
			first = i
		}
	}
	if first < 0 && !held {
		return true // the key may not have existed yet
	}
	for i := max(first, 0); i < len(ws) && ws[i].start.Before(sr.end); i++ {
		if ws[i].river == held {
			return true
		}
	}
	return false
}

func describe(ws []indexWrite) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "\n  [%s, %s] river=%v", w.start.Format("15:04:05.000000"), w.end.Format("15:04:05.000000"), w.river)
	}
	return b.String()
}
