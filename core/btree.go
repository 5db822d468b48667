package core

import (
	"encoding/binary"
	"math"
	"strings"
	"unsafe"
)

// The store's B-tree. It is google/btree's algorithm (top-down splits on
// insert, steal-or-merge on delete, copy-on-write clones marked by an owner
// per tree) written for one item type, for what a million keys cost:
//
//   - An item is 16 bytes and its key and value are one allocation. With
//     btree.BTreeG[entry] an entry was two strings (32 bytes) pointing to two
//     allocations; with 100-byte values and 11-byte keys that is 16 + 112
//     bytes of strings where one allocation takes 112, and the node slots
//     hold half as many bytes.
//   - A leaf that is full when a key beyond all of its keys arrives is split
//     where the key goes, not in the middle, so keys stored in ascending runs
//     (a snapshot's load, a bulk fill of key%08d) leave full leaves behind,
//     not half-empty ones.
//   - A node's search compares 4-byte key prefixes kept beside its items
//     (see node) and reads a key only when they tie on a key longer than
//     them, where a search through btree.BTreeG read a key from the heap
//     at every step.
//
// BenchmarkStoreMemory, 1M keys of 100-byte values: 135 B/key stored in key
// order (google/btree: 197), 145 in random order (176). BenchmarkStore and
// perf at SET with 50 clients on 1M keys: Get and Set about a third
// faster, the store's share of the node's CPU 13.5% -> 8%.

// item is one key and its value, held in a single allocation: the key's
// bytes, then the value's. The allocation is never written after it is
// made, so the strings key and value return may outlive the item (a Get's
// answer, an undo's old value) like any string.
type item struct {
	data *byte // start of the allocation; nil when key and value are both empty
	klen uint32
	vlen uint32
}

// makeItem copies key and value into one allocation of their length: the
// caller's strings are not kept, so a key or value that shares a larger
// buffer (a request line, a log record) does not keep it alive.
func makeItem(key, value string) item {
	assert(len(key) <= math.MaxUint32 && len(value) <= math.MaxUint32, "a key or value over 4 GiB cannot be stored")
	var s string
	switch {
	case value == "":
		s = strings.Clone(key)
	case key == "":
		s = strings.Clone(value)
	default:
		// A concatenation allocates its result without zeroing it first.
		s = key + value
	}
	return item{data: unsafe.StringData(s), klen: uint32(len(key)), vlen: uint32(len(value))}
}

func (it item) key() string { return unsafe.String(it.data, it.klen) }

func (it item) value() string {
	if it.vlen == 0 {
		// Not a pointer to the allocation's end: that may be the next one.
		return ""
	}
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(it.data), it.klen)), it.vlen)
}

// btreeDegree sets the node size: at most 2*degree-1 items (63 items of 16
// bytes: a 1 KiB allocation) and, but for the root, at least degree-1 after
// a delete rebalanced it. They are variables only so that tests can build
// deep trees from a few keys (setBtreeDegree).
const btreeDegree = 32

var (
	btreeItemsMax = 2*btreeDegree - 1
	btreeItemsMin = btreeDegree - 1
)

// treeOwner marks the nodes a tree may change in place; a clone gives both
// trees new owners, so the nodes they share are copied before a write. It
// has a size so that two owners are never the same pointer.
type treeOwner struct{ _ int }

// A node's search looks at 4-byte key prefixes kept beside its items, not
// at the keys: the keys are scattered over the heap, and a binary search
// that reads six of them per node is six cache misses per level. Every key
// of a node starts with the node's prefix (prefix, skip bytes long); pfx[i]
// holds the 4 bytes of item i's key after it, big-endian and zero-padded,
// so pfx order is key order, and only equal pfx need the keys themselves
// (not even then when the key ends within them and the item's key has its
// length: the key found, the commonest tie, costs no read of the item's
// bytes, which BenchmarkStore's get at 100k keys took ~30% of its time on).
// Keys that share far more than 4 bytes with their neighbours
// ("user:session:…") still differ in the bytes after the node's prefix.
// (BenchmarkStore: Get and Set at 1M keys about a third faster; 8-byte
// prefixes were no faster, for twice the memory.)
type node struct {
	items []item
	pfx   []uint32
	// children is nil in a leaf; otherwise it holds len(items)+1 nodes.
	children []*node
	owner    *treeOwner
	// The prefix lives in the node, which a search reads anyway: in an
	// allocation of its own it was one more cache miss per level.
	prefixBytes [prefixBytesMax]byte
	skip        uint8 // the prefix's length
}

// prefixBytesMax bounds a node's prefix (keys may share more); it keeps
// a node in 112 bytes.
const prefixBytesMax = 24

func (n *node) prefix() string { return unsafe.String(&n.prefixBytes[0], n.skip) }

// load4 is the 4 bytes of s from off, big-endian, zero-padded.
func load4(s string, off int) uint32 {
	if off+4 <= len(s) {
		return binary.BigEndian.Uint32(unsafe.Slice(unsafe.StringData(s[off:]), 4))
	}
	var v uint32
	for i := 0; i < 4; i++ {
		v <<= 8
		if off+i < len(s) {
			v |= uint32(s[off+i])
		}
	}
	return v
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// refresh recomputes the node's prefix from its keys (the longest the
// first and the last share) and every pfx.
func (n *node) refresh() {
	skip := 0
	if len(n.items) > 0 {
		first := n.items[0].key()
		skip = min(commonPrefix(first, n.items[len(n.items)-1].key()), prefixBytesMax)
		copy(n.prefixBytes[:], first[:skip])
	}
	n.skip = uint8(skip)
	n.pfx = n.pfx[:len(n.items)]
	for i := range n.items {
		n.pfx[i] = load4(n.items[i].key(), skip)
	}
}

// admit makes the node's prefix one that key shares: a key that does not
// shortens it, and every pfx is computed again.
func (n *node) admit(key string) {
	skip := int(n.skip)
	if len(key) >= skip && key[:skip] == n.prefix() {
		return
	}
	skip = commonPrefix(n.prefix(), key)
	n.skip = uint8(skip)
	for i := range n.items {
		n.pfx[i] = load4(n.items[i].key(), skip)
	}
}

// insert puts it at index i.
func (n *node) insert(i int, it item) {
	k := it.key()
	n.admit(k)
	n.items = insertAt(n.items, i, it)
	n.pfx = insertAt(n.pfx, i, load4(k, int(n.skip)))
}

// put makes it the item at index i, in place of another.
func (n *node) put(i int, it item) {
	k := it.key()
	n.admit(k)
	n.items[i] = it
	n.pfx[i] = load4(k, int(n.skip))
}

// remove takes out the item at index i.
func (n *node) remove(i int) item {
	var it item
	n.items, it = removeAt(n.items, i)
	n.pfx = n.pfx[:len(n.items)]
	copy(n.pfx[i:], n.pfx[i+1:len(n.items)+1])
	return it
}

type btree struct {
	root   *node
	length int
	// bytes is the data bytes of its items (EntryDataBytes), kept as
	// they come and go: a store's bound (Limits.DataBytesMax) reads it at
	// every write that grows the store.
	bytes int64
	owner *treeOwner
}

// itemOverheadBytes is what a key costs beyond its own bytes and its
// value's, for a store's data bytes: its 16-byte slot in a node and a share
// of the node's key prefixes, the node slack, and the allocator's rounding
// of the key and value's one allocation. BenchmarkStoreMemory measured 135
// to 145 bytes of heap a key for 111 bytes of key and value: 24 to 34 more.
const itemOverheadBytes = 32

// EntryDataBytes is what a key of keyBytes holding a value of valueBytes
// adds to a store's data bytes (Store.DataBytes).
func EntryDataBytes(keyBytes, valueBytes int) int64 {
	return int64(keyBytes) + int64(valueBytes) + itemOverheadBytes
}

func (it item) dataBytes() int64 { return EntryDataBytes(int(it.klen), int(it.vlen)) }

func newBtree() *btree { return &btree{owner: new(treeOwner)} }

// clone returns a tree holding what t holds, in O(1): t and the clone share
// every node until one of them writes.
func (t *btree) clone() *btree {
	out := *t
	t.owner, out.owner = new(treeOwner), new(treeOwner)
	return &out
}

// find returns the index of the first item whose key is >= key, and
// whether it is key.
func (n *node) find(key string) (int, bool) {
	skip := int(n.skip)
	if skip > 0 && (len(key) < skip || key[:skip] != n.prefix()) {
		// Every key here starts with the prefix: key is below them all
		// or above them all.
		if key < n.prefix() {
			return 0, false
		}
		return len(n.items), false
	}
	q := load4(key, skip)
	lo, hi := 0, len(n.items)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		c := 0
		switch p := n.pfx[m]; {
		case p < q:
			c = -1
		case p > q:
			c = 1
		case len(key)-skip <= 4 && int(n.items[m].klen) == len(key):
			// The pfx hold all of both keys past the prefix (zero-padded,
			// so the lengths must agree too): the keys are equal, and the
			// item's bytes, most likely not in the cache, are not read.
			c = 0
		default:
			c = strings.Compare(n.items[m].key()[skip:], key[skip:])
		}
		switch {
		case c == 0:
			return m, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return lo, false
}

func (t *btree) get(key string) (item, bool) {
	n := t.root
	for n != nil {
		i, found := n.find(key)
		if found {
			return n.items[i], true
		}
		if n.children == nil {
			break
		}
		n = n.children[i]
	}
	return item{}, false
}

func (t *btree) newNode(leaf bool) *node {
	n := &node{items: make([]item, 0, btreeItemsMax), pfx: make([]uint32, 0, btreeItemsMax), owner: t.owner}
	if !leaf {
		n.children = make([]*node, 0, btreeItemsMax+1)
	}
	return n
}

// mutable returns n if t owns it, or t's copy of it.
func (t *btree) mutable(n *node) *node {
	if n.owner == t.owner {
		return n
	}
	c := t.newNode(n.children == nil)
	c.items = append(c.items, n.items...)
	c.pfx = append(c.pfx, n.pfx...)
	c.prefixBytes, c.skip = n.prefixBytes, n.skip
	if n.children != nil {
		c.children = append(c.children, n.children...)
	}
	return c
}

// mutableChild makes n's child i one t may change, and returns it.
func (t *btree) mutableChild(n *node, i int) *node {
	c := t.mutable(n.children[i])
	n.children[i] = c
	return c
}

// split cuts the full node n (which t owns) before item at and returns that
// item and a new node holding everything after it. Both halves take the
// longest prefix their keys share.
func (t *btree) split(n *node, at int) (item, *node) {
	sep := n.items[at]
	right := t.newNode(n.children == nil)
	right.items = append(right.items, n.items[at+1:]...)
	right.pfx = right.pfx[:len(right.items)]
	clear(n.items[at:])
	n.items = n.items[:at]
	if n.children != nil {
		right.children = append(right.children, n.children[at+1:]...)
		clear(n.children[at+1:])
		n.children = n.children[:at+1]
	}
	n.refresh()
	right.refresh()
	return sep, right
}

// splitPoint is where to split the full node n before key is stored in
// it: in the middle, or, for a leaf whose keys are all below key, just
// before its last item, so that an ascending run fills leaves to the brim.
// (A leaf left short this way is only ever short at its tree's growing
// edge; deletes rebalance it like any other.)
func splitPoint(n *node, key string) int {
	if last := len(n.items) - 1; n.children == nil && n.items[last].key() < key {
		return last
	}
	return btreeItemsMax / 2
}

// set stores it, replacing the item with its key if there is one.
func (t *btree) set(it item) (old item, existed bool) {
	key := it.key()
	if t.root == nil {
		t.root = t.newNode(true)
		t.root.items = append(t.root.items, it)
		t.root.refresh()
		t.length = 1
		t.bytes = it.dataBytes()
		return item{}, false
	}
	t.root = t.mutable(t.root)
	if len(t.root.items) >= btreeItemsMax {
		left := t.root
		sep, right := t.split(left, splitPoint(left, key))
		t.root = t.newNode(false)
		t.root.items = append(t.root.items, sep)
		t.root.refresh()
		t.root.children = append(t.root.children, left, right)
	}
	n := t.root
	for {
		i, found := n.find(key)
		if found {
			old = n.items[i]
			n.items[i] = it // the same key: its pfx stands
			t.bytes += it.dataBytes() - old.dataBytes()
			return old, true
		}
		if n.children == nil {
			n.insert(i, it)
			t.length++
			t.bytes += it.dataBytes()
			return item{}, false
		}
		if len(n.children[i].items) >= btreeItemsMax {
			child := t.mutableChild(n, i)
			sep, right := t.split(child, splitPoint(child, key))
			n.insert(i, sep)
			n.children = insertAt(n.children, i+1, right)
			switch c := strings.Compare(key, sep.key()); {
			case c == 0:
				old = n.items[i]
				n.items[i] = it
				t.bytes += it.dataBytes() - old.dataBytes()
				return old, true
			case c > 0:
				i++
			}
		}
		n = t.mutableChild(n, i)
	}
}

func insertAt[T any](s []T, i int, v T) []T {
	var zero T
	s = append(s, zero)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func removeAt[T any](s []T, i int) ([]T, T) {
	v := s[i]
	copy(s[i:], s[i+1:])
	var zero T
	s[len(s)-1] = zero
	return s[:len(s)-1], v
}

// delete removes key's item and returns it.
func (t *btree) delete(key string) (item, bool) {
	if t.root == nil || len(t.root.items) == 0 {
		return item{}, false
	}
	t.root = t.mutable(t.root)
	out, ok := t.remove(t.root, key, false)
	if len(t.root.items) == 0 && t.root.children != nil {
		t.root = t.root.children[0]
	}
	if ok {
		t.length--
		t.bytes -= out.dataBytes()
	}
	return out, ok
}

// remove removes key's item (or, with max, the last item) from the subtree
// of n, which t owns, keeping every child it passes through above
// btreeItemsMin items before it descends.
func (t *btree) remove(n *node, key string, max bool) (item, bool) {
	var i int
	var found bool
	if max {
		if n.children == nil {
			return n.remove(len(n.items) - 1), true
		}
		i = len(n.items)
	} else {
		i, found = n.find(key)
		if n.children == nil {
			if !found {
				return item{}, false
			}
			return n.remove(i), true
		}
	}
	if len(n.children[i].items) <= btreeItemsMin {
		t.growChild(n, i)
		return t.remove(n, key, max)
	}
	child := t.mutableChild(n, i)
	if found {
		// The item is here: its predecessor, the last item of the child
		// before it, takes its place.
		out := n.items[i]
		pred, _ := t.remove(child, "", true)
		n.put(i, pred)
		return out, true
	}
	return t.remove(child, key, max)
}

// growChild gives n's child i one more item than btreeItemsMin, from a
// sibling that can spare one or by merging it with a sibling. The nodes it
// changes take their prefixes afresh.
func (t *btree) growChild(n *node, i int) {
	switch {
	case i > 0 && len(n.children[i-1].items) > btreeItemsMin:
		child := t.mutableChild(n, i)
		from := t.mutableChild(n, i-1)
		stolen := from.remove(len(from.items) - 1)
		child.items = insertAt(child.items, 0, n.items[i-1])
		n.put(i-1, stolen)
		if from.children != nil {
			var c *node
			from.children, c = removeAt(from.children, len(from.children)-1)
			child.children = insertAt(child.children, 0, c)
		}
		from.refresh()
		child.refresh()
	case i < len(n.items) && len(n.children[i+1].items) > btreeItemsMin:
		child := t.mutableChild(n, i)
		from := t.mutableChild(n, i+1)
		stolen := from.remove(0)
		child.items = append(child.items, n.items[i])
		n.put(i, stolen)
		if from.children != nil {
			var c *node
			from.children, c = removeAt(from.children, 0)
			child.children = append(child.children, c)
		}
		from.refresh()
		child.refresh()
	default:
		// Neither sibling can spare an item, so each holds at most
		// btreeItemsMin: the two and the item between them fit one node.
		if i >= len(n.items) {
			i--
		}
		child := t.mutableChild(n, i)
		sep := n.remove(i)
		var right *node
		n.children, right = removeAt(n.children, i+1)
		child.items = append(child.items, sep)
		child.items = append(child.items, right.items...)
		child.children = append(child.children, right.children...)
		child.refresh()
	}
}

// ascend calls f for every item with a key >= from (every item, unless
// bounded) in key order, until f returns false; it reports whether f
// never did.
func (n *node) ascend(from string, bounded bool, f func(item) bool) bool {
	i, found := 0, false
	if bounded {
		i, found = n.find(from)
	}
	if n.children != nil && !found && !n.children[i].ascend(from, bounded, f) {
		return false
	}
	for ; i < len(n.items); i++ {
		if !f(n.items[i]) {
			return false
		}
		if n.children != nil && !n.children[i+1].ascend("", false, f) {
			return false
		}
	}
	return true
}
