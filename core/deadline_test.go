package core

import (
	"cmp"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// Property: the store's deadlines against a map of key → (value,
// deadline): sets with and without one, deletes, expiries (applyRecord's
// recordExpire) that a rollback takes back, and clones written to on both
// sides. Deadline, NextDeadline, Due (in deadline order) and Expiring agree
// with the model after every step.
func TestStoreDeadlinesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		type kv = modelEntry
		type replica struct {
			s     *Store
			model map[string]kv
		}
		keys := rapid.SampledFrom([]string{"a", "b", "c", "ab", "k1", "k2", "\x00", "zz"})
		ats := rapid.Int64Range(1, 8)
		rs := []*replica{{s: NewStore(), model: map[string]kv{}}}
		for range rapid.IntRange(1, 200).Draw(t, "steps") {
			r := rs[rapid.IntRange(0, len(rs)-1).Draw(t, "replica")]
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0:
				k := keys.Draw(t, "key")
				r.s.Set(k, "v")
				r.model[k] = kv{"v", 0}
			case 1:
				k, at := keys.Draw(t, "key"), ats.Draw(t, "at")
				r.s.SetExpiring(k, "e", at)
				r.model[k] = kv{"e", at}
			case 2:
				k := keys.Draw(t, "key")
				r.s.Delete(k)
				delete(r.model, k)
			case 3:
				// Expire what is due at now, as a node does, and perhaps
				// take it back as a failed batch is.
				now := ats.Draw(t, "now")
				var items []KV
				var due []int64
				r.s.Due(now, func(key string, at int64) bool {
					items, due = append(items, KV{Key: key}), append(due, at)
					return true
				})
				// Give one a deadline that is no longer its own: it stays.
				if len(items) > 0 && rapid.Bool().Draw(t, "stale") {
					due[0]++
				}
				var undos []undo
				applyRecord(r.s, recordExpire, items, due, &undos)
				if rapid.Bool().Draw(t, "rollback") {
					r.s.rollback(undos)
					break
				}
				for i, it := range items {
					if r.model[it.Key].at == due[i] {
						delete(r.model, it.Key)
					}
				}
			case 4:
				if len(rs) < 3 {
					rs = append(rs, &replica{s: r.s.Clone(), model: maps.Clone(r.model)})
				}
			case 5:
				// A set that expires, taken back.
				k, at := keys.Draw(t, "key"), ats.Draw(t, "at")
				var undos []undo
				applyRecord(r.s, recordSetExpiring, []KV{{Key: k, Value: "x"}}, []int64{at}, &undos)
				r.s.rollback(undos)
			}
			for _, r := range rs {
				checkDeadlines(t, r.s, r.model)
			}
		}
	})
}

// modelEntry is a key's value and deadline (0: none) in a model.
type modelEntry struct {
	value string
	at    int64
}

func checkDeadlines(t *rapid.T, s *Store, model map[string]modelEntry) {
	t.Helper()
	type pair struct {
		at  int64
		key string
	}
	var want []pair
	for k, m := range model {
		got, ok := s.Get(k)
		if !ok || got != m.value {
			t.Fatalf("key %q holds %q %v, want %q", k, got, ok, m.value)
		}
		at, ok := s.Deadline(k)
		if ok != (m.at != 0) || at != m.at {
			t.Fatalf("key %q: deadline %d %v, want %d", k, at, ok, m.at)
		}
		if m.at != 0 {
			want = append(want, pair{m.at, k})
		}
	}
	if s.Len() != len(model) {
		t.Fatalf("%d keys, want %d", s.Len(), len(model))
	}
	if s.Expiring() != len(want) {
		t.Fatalf("%d keys expire, want %d", s.Expiring(), len(want))
	}
	slices.SortFunc(want, func(a, b pair) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.key, b.key)) })
	next, ok := s.NextDeadline()
	if ok != (len(want) > 0) || (ok && next != want[0].at) {
		t.Fatalf("NextDeadline %d %v, want the first of %v", next, ok, want)
	}
	var got []pair
	s.Due(5, func(key string, at int64) bool { got = append(got, pair{at, key}); return true })
	i := 0
	for i < len(want) && want[i].at < 5 {
		i++
	}
	if len(got) != i || (i > 0 && !slices.Equal(got, want[:i])) {
		t.Fatalf("Due(5) = %v, want %v", got, want[:i])
	}
}
