package core

import "github.com/google/btree"

// storeDegree is the B-tree fan-out; 32 keeps nodes within a few cache lines
// of pointers and clones cheap.
const storeDegree = 32

type entry struct {
	key   string
	value string
}

func entryLess(a, b entry) bool { return a.key < b.key }

// Store is the key-value state machine: an ordered map whose Clone is
// copy-on-write, so a snapshot can walk a frozen copy while writes go on.
type Store struct {
	tree *btree.BTreeG[entry]
	// mutation plants a bug, for the simulator's tests (SingleConfig).
	mutation Mutation
	// obs hears of every change (the node's indexes); clones have none.
	obs Observer
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{tree: btree.NewG(storeDegree, entryLess)}
}

// Get returns the value of key and whether it exists.
func (s *Store) Get(key string) (string, bool) {
	e, ok := s.tree.Get(entry{key: key})
	return e.value, ok
}

// Set stores value under key and returns the previous value, if any.
func (s *Store) Set(key, value string) (old string, existed bool) {
	e, existed := s.tree.ReplaceOrInsert(entry{key: key, value: value})
	if s.obs != nil {
		s.obs.Put(key, value)
	}
	if s.mutation == MutSetReturnsNewValue {
		return value, existed
	}
	return e.value, existed
}

// Delete removes key and returns the previous value, if any.
func (s *Store) Delete(key string) (old string, existed bool) {
	e, existed := s.tree.Delete(entry{key: key})
	if existed && s.obs != nil {
		s.obs.Remove(key)
	}
	return e.value, existed
}

// Observe makes o hear of every later change to s (nil: none). Clones do
// not inherit it: a snapshot's frozen copy is not the indexed state.
func (s *Store) Observe(o Observer) { s.obs = o }

// Len is the number of keys.
func (s *Store) Len() int { return s.tree.Len() }

// Clone returns a copy-on-write copy: later writes to either do not show in
// the other, and the clone costs O(1) until one side writes. The clone has
// no observer.
func (s *Store) Clone() *Store {
	if s.mutation == MutCloneSharesTree {
		return &Store{tree: s.tree, mutation: s.mutation}
	}
	return &Store{tree: s.tree.Clone(), mutation: s.mutation}
}

// Ascend calls f for every key >= from in order until f returns false.
func (s *Store) Ascend(from string, f func(key, value string) bool) {
	s.tree.AscendGreaterOrEqual(entry{key: from}, func(e entry) bool {
		return f(e.key, e.value)
	})
}

// undo remembers what one key held before a write of the current turn, so a
// turn whose log write fails can be taken back out of memory.
type undo struct {
	key     string
	value   string
	existed bool
}

// rollback restores the keys in undos, newest first.
func (s *Store) rollback(undos []undo) {
	obs := s.obs
	if s.mutation == MutRollbackUnindexed {
		s.obs = nil
	}
	for i := len(undos) - 1; i >= 0; i-- {
		u := undos[i]
		if s.mutation == MutRollbackOldestFirst {
			u = undos[len(undos)-1-i]
		}
		if u.existed {
			s.Set(u.key, u.value)
		} else {
			s.Delete(u.key)
		}
	}
	s.obs = obs
}
