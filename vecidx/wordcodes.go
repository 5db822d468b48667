package vecidx

// WithWordCodes returns a copy of m whose vocabulary words carry a code
// of the caller's, code(word) for each (0: none), which EmbedScan hands
// back with every word of a text it finds in the vocabulary. A caller
// that needs its own fact about every word of a value (the full-text
// index needs its term) thus gets it from the lookup Embed makes anyway,
// in the cache line Embed has loaded, instead of from a table of its own
// that misses the cache again. The copy shares everything with m but its
// word table (a few MB for the built-in model); m is not changed, so
// models stay read-only and safe to share.
func (m *Model) WithWordCodes(code func(word string) uint64) *Model {
	c := *m
	t := *m.table
	t.slots = make([]wordSlot, len(m.table.slots))
	copy(t.slots, m.table.slots)
	for i := range t.slots {
		e := &t.slots[i]
		if e.meta == 0 {
			continue
		}
		id := int(e.meta&(slotStop-1)) - 1
		e.word = code(m.words[id])
	}
	c.table = &t
	c.coded = true
	return &c
}

// HasWordCodes reports whether m is a copy WithWordCodes made.
func (m *Model) HasWordCodes() bool { return m.coded }
