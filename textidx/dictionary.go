package textidx

// dictionary maps terms to term ids: open addressing with linear probing
// over the 64-bit term hash that Analyze computed (off the node's loop).
// A slot holds the hash's high 32 bits as a tag and 1 + the term id, so a
// probe rarely touches a term that is not the one sought; the term's text
// is compared only on a tag match. Deletion shifts later entries back
// instead of leaving tombstones, so probes stay short however many terms
// come and go.
type dictionary struct {
	slots []uint64 // 0: empty; else tag<<32 | (tid + 1)
	count int
}

// dictionarySlotsMin is the table's smallest size, a power of two.
const dictionarySlotsMin = 1024

func (d *dictionary) mask() uint64 { return uint64(len(d.slots) - 1) }

// find returns the id of the term with hash h and text t.
func (d *dictionary) find(h uint64, t string, terms []termEntry) (uint32, bool) {
	if d.count == 0 {
		return 0, false
	}
	tag := h >> 32
	mask := d.mask()
	for i := h & mask; ; i = (i + 1) & mask {
		s := d.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == tag {
			tid := uint32(s) - 1
			if terms[tid].is(t, h) {
				return tid, true
			}
		}
	}
}

// insert adds term id tid with hash h, which must not be present. terms
// give the hashes of the entries already in, for a resize.
func (d *dictionary) insert(h uint64, tid uint32, terms []termEntry) {
	if 2*(d.count+1) > len(d.slots) {
		d.grow(terms)
	}
	d.place(h, uint64(h>>32)<<32|uint64(tid+1))
	d.count++
}

func (d *dictionary) place(h, slot uint64) {
	mask := d.mask()
	i := h & mask
	for d.slots[i] != 0 {
		i = (i + 1) & mask
	}
	d.slots[i] = slot
}

// grow doubles the table. It rehashes every entry at once: a pause of
// O(terms), once per doubling.
func (d *dictionary) grow(terms []termEntry) {
	old := d.slots
	d.slots = make([]uint64, max(dictionarySlotsMin, 2*len(old)))
	for _, s := range old {
		if s != 0 {
			d.place(uint64(terms[uint32(s)-1].hash), s)
		}
	}
}

// remove deletes term id tid with hash h, which must be present.
func (d *dictionary) remove(h uint64, tid uint32, terms []termEntry) {
	mask := d.mask()
	want := uint64(h>>32)<<32 | uint64(tid+1)
	i := h & mask
	for d.slots[i] != want {
		if d.slots[i] == 0 {
			panic("textidx: removing a term the dictionary does not hold")
		}
		i = (i + 1) & mask
	}
	// Shift back every later entry of the run whose home is not in (i, j].
	for j := (i + 1) & mask; d.slots[j] != 0; j = (j + 1) & mask {
		home := uint64(terms[uint32(d.slots[j])-1].hash) & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			d.slots[i] = d.slots[j]
			i = j
		}
	}
	d.slots[i] = 0
	d.count--
}

// touch loads the home slot of each hash, so that the lookups after it
// find them in cache (see Index.Put).
func (d *dictionary) touch(hashes []uint64) uint64 {
	if len(d.slots) == 0 {
		return 0
	}
	mask := d.mask()
	sink := uint64(0)
	for _, h := range hashes {
		sink += d.slots[h&mask]
	}
	return sink
}

// touchTerms loads, for each hash whose home slot holds a term with its
// tag (the usual case: a term already in the index, found at the first
// probe), that term's entry, so that find's comparison after it finds the
// entry in cache (see Index.Put). The home slots must have been touched.
func (d *dictionary) touchTerms(hashes []uint64, terms []termEntry) uint64 {
	if len(d.slots) == 0 {
		return 0
	}
	mask := d.mask()
	sink := uint64(0)
	for _, h := range hashes {
		if s := d.slots[h&mask]; s != 0 && s>>32 == h>>32 {
			sink += uint64(terms[uint32(s)-1].hash)
		}
	}
	return sink
}
