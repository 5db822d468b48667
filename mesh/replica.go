package mesh

import (
	"fmt"

	"github.com/google/btree"

	"dkv/core"
)

// replica is a mesh node's state: for every key the item with the highest
// stamp it has seen, tombstones included, in a core.Store (see version.go),
// plus what anti-entropy and tombstone collection need to stay cheap: a
// digest per bucket, updated with every change, and the tombstones ordered by
// stamp.
type replica struct {
	store   *core.Store
	digests [bucketsN]uint64
	total   uint64 // the XOR of every digest: equal states, equal totals
	live    int    // keys with a value (the store also holds tombstones)
	tombs   *btree.BTreeG[tombRef]
	// maxStamp is the highest stamp ever put here: a restarted node's
	// clock starts above it.
	maxStamp Stamp
	// idx, when set, holds the live values (see attach).
	idx *core.AttachedIndexes
	// ahead counts the live values at positions idx's rebuild has not
	// walked past: what it has still to hand over (rebuildLeft).
	ahead int
}

// tombRef orders tombstones by stamp, so that collecting those at or below
// a horizon is a walk from the front.
type tombRef struct {
	stamp Stamp
	sk    string
}

func tombLess(a, b tombRef) bool {
	if c := a.stamp.Compare(b.stamp); c != 0 {
		return c < 0
	}
	return a.sk < b.sk
}

// newReplica wraps a recovered store, checking every version in it and
// computing the digests.
func newReplica(s *core.Store) (*replica, error) {
	r := &replica{store: s, tombs: btree.NewG(16, tombLess)}
	var bad error
	s.Ascend("", func(sk, v string) bool {
		if len(sk) < bucketPrefixBytes+1 || bucketOfStoreKey(sk) != bucketOf(userKey(sk)) {
			bad = fmt.Errorf("store key %q is not a mesh key", sk)
			return false
		}
		it, err := decodeVersion(userKey(sk), v)
		if err != nil {
			bad = fmt.Errorf("key %q: %w", userKey(sk), err)
			return false
		}
		r.account(sk, v, &it, +1)
		return true
	})
	if bad != nil {
		return nil, fmt.Errorf("%w: snapshot is not a mesh node's: %v", core.ErrCorrupt, bad)
	}
	return r, nil
}

// account adds (+1) or removes (-1) one stored version's share of the
// digests, counts and tombstone index.
func (r *replica) account(sk, v string, it *Item, sign int) {
	h := versionHash(sk, v)
	r.digests[bucketOfStoreKey(sk)] ^= h
	r.total ^= h
	if sign > 0 && r.maxStamp.Less(it.Stamp) {
		r.maxStamp = it.Stamp
	}
	if !it.Tomb && r.idx != nil && !r.idx.Covers(sk) {
		r.ahead += sign // the rebuild's walk will hand this value over
	}
	switch {
	case !it.Tomb:
		r.live += sign
	case sign > 0:
		r.tombs.ReplaceOrInsert(tombRef{stamp: it.Stamp, sk: sk})
	default:
		r.tombs.Delete(tombRef{stamp: it.Stamp, sk: sk})
	}
}

// get returns the item held for key, tombstones included.
func (r *replica) get(key string) (Item, bool) {
	return r.getStore(storeKey(key))
}

func (r *replica) getStore(sk string) (Item, bool) {
	v, ok := r.store.Get(sk)
	if !ok {
		return Item{}, false
	}
	it, err := decodeVersion(userKey(sk), v)
	assert(err == nil, "replica holds a malformed version")
	return it, true
}

// undo restores one store key to what it held before a write.
type undo struct {
	sk      string
	v       string
	existed bool
}

// apply keeps it if it is newer than what the replica holds for its key
// (last writer wins) and reports whether it did. undos, when not nil,
// records how to take the change back.
func (r *replica) apply(it *Item, undos *[]undo) bool {
	sk, v := storeKey(it.Key), encodeVersion(it)
	// One walk of the tree in the common case, a newer item: replace, and
	// put the old version back in the rare one.
	oldV, held := r.store.Set(sk, v)
	if held && !versionStamp(oldV).Less(it.Stamp) {
		r.store.Set(sk, oldV)
		return false
	}
	if held {
		old, err := decodeVersion(userKey(sk), oldV)
		assert(err == nil, "replica holds a malformed version")
		r.account(sk, oldV, &old, -1)
	}
	r.account(sk, v, it, +1)
	r.index(sk, it)
	if undos != nil {
		*undos = append(*undos, undo{sk: sk, v: oldV, existed: held})
	}
	return true
}

// growth is how many data bytes (core.Store.DataBytes) storing items,
// one per key, would add to the store (less than 0: take away): each is
// kept as its store key and its encoded version.
func (r *replica) growth(items []Item) int64 {
	var g int64
	for i := range items {
		it := &items[i]
		sk := storeKey(it.Key)
		g += core.EntryDataBytes(len(sk), versionHeaderBytes+len(it.Value)) - r.store.DataBytesOf(sk)
	}
	return g
}

// upperGrowth is the most that storing items can add to a store's data
// bytes: every key counted as new (core.Limits.NearDataBound).
func upperGrowth(items []Item) int64 {
	var g int64
	for i := range items {
		g += core.EntryDataBytes(bucketPrefixBytes+len(items[i].Key), versionHeaderBytes+len(items[i].Value))
	}
	return g
}

// attach rebuilds idx from the live values and keeps it in step with
// every change from now on (see core.AttachedIndexes; a position is a
// store key). The replica tells the indexes itself, rather than through
// the store's observer, because the store holds encoded versions and
// tombstones, and apply's rare put-back of an older version would be two
// changes where the indexed state sees none.
func (r *replica) attach(idx core.Indexes, clock core.Clock, cfg core.IndexBuildConfig, logf func(string, ...any)) *core.AttachedIndexes {
	if idx == nil {
		return nil
	}
	r.ahead = r.live
	r.idx = core.NewAttachedIndexes(idx, func(from string, f func(pos, key, value string) bool) {
		r.store.Ascend(from, func(sk, v string) bool {
			it, err := decodeVersion(userKey(sk), v)
			assert(err == nil, "replica holds a malformed version")
			if it.Tomb {
				return true
			}
			if !f(sk, it.Key, it.Value) {
				return false
			}
			// Handed over (the walk has passed it), unless this is the
			// measure of the values' bytes before the rebuild began.
			if r.idx.Covers(sk) {
				r.ahead--
			}
			return true
		})
	}, r.live, clock, cfg, logf, core.MutNone)
	r.idx.Begin()
	return r.idx
}

// rebuildLeft is how many values the indexes' rebuild has still to hand
// over: those at positions its walk has not reached. The rebuild's own
// total is the count of live values when it began, but the replica
// changes meanwhile, most of all on a node catching up from its peers: a
// key set ahead of the walk is one more to index, and a tombstone that
// replaces a value ahead of it (the walk skips tombstones, counting
// nothing) is one fewer. With that total alone, status showed every value
// indexed, dkv_index_rebuild_left 0, while thousands were still to come,
// or values left that never would be (found by review).
func (r *replica) rebuildLeft() int { return r.ahead }

// index tells the indexes that it is now the item at sk.
func (r *replica) index(sk string, it *Item) {
	if it.Tomb {
		r.idx.Remove(sk, it.Key)
	} else {
		r.idx.Put(sk, it.Key, it.Value)
	}
}

// remove drops whatever sk holds.
func (r *replica) remove(sk string) {
	oldV, held := r.store.Get(sk)
	if !held {
		return
	}
	old, err := decodeVersion(userKey(sk), oldV)
	assert(err == nil, "replica holds a malformed version")
	r.account(sk, oldV, &old, -1)
	r.store.Delete(sk)
	if !old.Tomb {
		r.idx.Remove(sk, old.Key)
	}
}

// rollback takes back the changes undos recorded, newest first.
func (r *replica) rollback(undos []undo) {
	for i := len(undos) - 1; i >= 0; i-- {
		u := undos[i]
		if !u.existed {
			r.remove(u.sk)
			continue
		}
		it, err := decodeVersion(userKey(u.sk), u.v)
		assert(err == nil, "undo holds a malformed version")
		cur, held := r.store.Get(u.sk)
		if held {
			old, err := decodeVersion(userKey(u.sk), cur)
			assert(err == nil, "replica holds a malformed version")
			r.account(u.sk, cur, &old, -1)
		}
		r.store.Set(u.sk, u.v)
		r.account(u.sk, u.v, &it, +1)
		r.index(u.sk, &it)
	}
}

// collect drops tombstones whose stamp is at or below horizon, at most max
// of them, and returns how many it dropped.
func (r *replica) collect(horizon Stamp, max int) int {
	var drop []tombRef
	r.tombs.Ascend(func(t tombRef) bool {
		if horizon.Less(t.stamp) || len(drop) == max {
			return false
		}
		drop = append(drop, t)
		return true
	})
	for _, t := range drop {
		r.remove(t.sk)
	}
	return len(drop)
}

// bucketItems calls f for the items of bucket b with key >= from, in key
// order, until f returns false.
func (r *replica) bucketItems(b int, from string, f func(it *Item, v string) bool) {
	prefix := string([]byte{byte(b >> 8), byte(b)})
	r.store.Ascend(prefix+from, func(sk, v string) bool {
		if sk[:bucketPrefixBytes] != prefix {
			return false
		}
		it, err := decodeVersion(userKey(sk), v)
		assert(err == nil, "replica holds a malformed version")
		return f(&it, v)
	})
}

// tombstones is how many tombstones the replica holds.
func (r *replica) tombstones() int { return r.tombs.Len() }
