package core

import "fmt"

// entry is a key and its value, as the snapshot loader hands them to the
// tree (ReplaceOrInsert); the tree keeps them as an item.
type entry struct {
	key   string
	value string
}

// Store is the key-value state machine: an ordered map whose Clone is
// copy-on-write, so a snapshot can walk a frozen copy while writes go on.
// Its B-tree (btree.go) keeps each key and value in one allocation.
type Store struct {
	tree *storeTree
	// ttl holds the deadlines of the keys that expire.
	ttl deadlines
	// mutation plants a bug, for the simulator's tests (SingleConfig).
	mutation Mutation
	// obs hears of every change (the node's indexes); clones have none.
	obs Observer
}

// storeTree is the store's B-tree, with the one method the snapshot
// loader calls on it directly.
type storeTree struct{ btree }

// ReplaceOrInsert stores e, replacing what its key held.
func (t *storeTree) ReplaceOrInsert(e entry) {
	t.set(makeItem(e.key, e.value))
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{tree: &storeTree{*newBtree()}}
}

// Get returns the value of key and whether it exists. The value shares the
// store's copy: it costs no allocation.
func (s *Store) Get(key string) (string, bool) {
	it, ok := s.tree.get(key)
	return it.value(), ok
}

// Set stores value under key and returns the previous value, if any. The
// store keeps its own copy of key and value, in one allocation.
func (s *Store) Set(key, value string) (old string, existed bool) {
	prev, existed := s.tree.set(makeItem(key, value))
	s.ttl.remove(key) // a write without a deadline keeps the key for good
	if s.obs != nil {
		s.obs.Put(key, value)
		if ic, ok := s.obs.(insertObserver); ok && !existed {
			ic.Inserted(key)
		}
	}
	if s.mutation == MutSetReturnsNewValue {
		return value, existed
	}
	return prev.value(), existed
}

// SetExpiring is Set with a deadline: the calendar time (milliseconds since
// the Unix epoch, > 0) after which the node deletes the key (Deadline,
// Due). A later Set, SetExpiring or Delete of the key replaces it.
func (s *Store) SetExpiring(key, value string, at int64) (old string, existed bool) {
	old, existed = s.Set(key, value)
	s.ttl.set(key, at)
	return old, existed
}

// SetDeadline gives key, which exists, the deadline at in place of the one
// it had (at 0: none), its value unchanged.
func (s *Store) SetDeadline(key string, at int64) {
	if at == 0 && s.mutation == MutPersistKeepsDeadline {
		return
	}
	if at == 0 {
		s.ttl.remove(key)
		return
	}
	s.ttl.set(key, at)
}

// Deadline returns key's deadline, if it has one.
func (s *Store) Deadline(key string) (int64, bool) { return s.ttl.get(key) }

// NextDeadline returns the earliest deadline of any key, if one has one.
func (s *Store) NextDeadline() (int64, bool) { return s.ttl.next() }

// Due calls f for the keys whose deadline is before now, earliest first,
// until f returns false. f must not write to the store.
func (s *Store) Due(now int64, f func(key string, at int64) bool) { s.ttl.due(now, f) }

// Expiring is the number of keys with a deadline.
func (s *Store) Expiring() int { return s.ttl.len() }

// Delete removes key and returns the previous value, if any.
func (s *Store) Delete(key string) (old string, existed bool) {
	prev, existed := s.tree.delete(key)
	s.ttl.remove(key)
	if existed && s.obs != nil {
		s.obs.Remove(key)
	}
	return prev.value(), existed
}

// insertObserver is an Observer that also hears, after a Put, that the
// key held no value before it: a rebuild of indexes counts what its walk
// has still to hand over so (AttachedIndexes).
type insertObserver interface {
	Inserted(key string)
}

// Observe makes o hear of every later change to s (nil: none). Clones do
// not inherit it: a snapshot's frozen copy is not the indexed state.
func (s *Store) Observe(o Observer) { s.obs = o }

// Len is the number of keys.
func (s *Store) Len() int { return s.tree.length }

// DataBytes is what the store's keys and values count against a node's
// bound (Limits.DataBytesMax): each key's bytes, its value's, and a fixed
// cost a key for its place in the tree (EntryDataBytes). It is kept as
// keys come and go, so reading it costs nothing; it is about 75% of the
// heap the keys take (BenchmarkStoreMemory), the rest being the
// collector's room and the snapshots' copies of what writes replace.
func (s *Store) DataBytes() int64 { return s.tree.bytes }

// DataBytesOf is what key counts in DataBytes now: 0 if it does not exist.
func (s *Store) DataBytesOf(key string) int64 {
	it, ok := s.tree.get(key)
	if !ok {
		return 0
	}
	return it.dataBytes()
}

// CheckDataBytes recomputes DataBytes from the keys and values held and
// reports a difference: the count is kept as keys come and go, and a path
// that missed it would let the bound drift (the simulator checks every
// node's at the end of a run).
func (s *Store) CheckDataBytes() error {
	var sum int64
	s.Ascend("", func(key, value string) bool {
		sum += EntryDataBytes(len(key), len(value))
		return true
	})
	if sum != s.DataBytes() {
		return fmt.Errorf("the store counts %d data bytes, and its %d keys and values make %d", s.DataBytes(), s.Len(), sum)
	}
	return nil
}

// DataGrowth is how many data bytes setting items would add to the store
// (less than 0: take away). A later item of a key replaces an earlier one,
// as in a bulk_set.
func (s *Store) DataGrowth(items []KV) int64 {
	if len(items) == 1 && s.mutation == MutDataGrowthIgnoresOld {
		return EntryDataBytes(len(items[0].Key), len(items[0].Value))
	}
	if len(items) == 1 {
		return EntryDataBytes(len(items[0].Key), len(items[0].Value)) - s.DataBytesOf(items[0].Key)
	}
	var growth int64
	seen := make(map[string]struct{}, len(items))
	for i := len(items) - 1; i >= 0; i-- {
		kv := items[i]
		if _, dup := seen[kv.Key]; dup {
			continue
		}
		seen[kv.Key] = struct{}{}
		growth += EntryDataBytes(len(kv.Key), len(kv.Value)) - s.DataBytesOf(kv.Key)
	}
	return growth
}

// Clone returns a copy-on-write copy: later writes to either do not show in
// the other, and the clone costs O(1) until one side writes. The clone has
// no observer.
func (s *Store) Clone() *Store {
	if s.mutation == MutCloneSharesTree {
		return &Store{tree: s.tree, ttl: s.ttl, mutation: s.mutation}
	}
	return &Store{tree: &storeTree{*s.tree.clone()}, ttl: s.ttl.clone(), mutation: s.mutation}
}

// Ascend calls f for every key >= from in order until f returns false. The
// strings share the store's copies.
func (s *Store) Ascend(from string, f func(key, value string) bool) {
	if s.tree.root == nil {
		return
	}
	s.tree.root.ascend(from, true, func(it item) bool {
		return f(it.key(), it.value())
	})
}

// undo remembers what one key held before a write of the current turn, so a
// turn whose log write fails can be taken back out of memory.
type undo struct {
	key     string
	value   string
	existed bool
	at      int64 // the key's deadline, 0 if none
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
		switch {
		case u.existed && u.at != 0:
			s.SetExpiring(u.key, u.value, u.at)
		case u.existed:
			s.Set(u.key, u.value)
		default:
			s.Delete(u.key)
		}
	}
	s.obs = obs
}
