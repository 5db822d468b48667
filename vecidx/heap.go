package vecidx

// cand is a graph node and its similarity to the vector being searched
// for (or inserted).
type cand struct {
	sim float32
	id  uint32
}

// nearer orders candidates: the higher similarity first, and among equal
// similarities the lower id, so that a sort has one total order and never
// depends on how ties happened to fall.
func nearer(a, b cand) bool {
	if a.sim != b.sim {
		return a.sim > b.sim
	}
	return a.id < b.id
}

func cmpNearer(a, b cand) int {
	if nearer(a, b) {
		return -1
	}
	if nearer(b, a) {
		return 1
	}
	return 0
}

// nearHeap keeps the nearest candidate on top: the search frontier (C in
// the paper). The heaps are written out for their one element type rather
// than through container/heap, whose interface calls cost more than the
// comparisons in a search's inner loop.
type nearHeap []cand

func (h *nearHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !nearer(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *nearHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && nearer(s[r], s[l]) {
			m = r
		}
		if !nearer(s[m], s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// farHeap keeps the farthest candidate on top: the bounded result set (W in
// the paper), whose top is the one to drop when a nearer node is found.
type farHeap []cand

func (h *farHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !nearer(s[p], s[i]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *farHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && nearer(s[l], s[r]) {
			m = r
		}
		if !nearer(s[i], s[m]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// scanHit is a vector a segment's graph search found and its similarity by
// codes: the estimate that picks which vectors are scored exactly.
type scanHit struct {
	est float32
	e   *entry
}

// scanHeap keeps the best r scan hits by estimate, the worst on top. Of
// equal estimates the first offered stays, so the outcome is a function of
// the order of the offers. The heaps are written out for their one element
// type rather than through container/heap, whose interface calls cost more
// than the comparisons in a scan's inner loop.
type scanHeap []scanHit

// offer adds x if it is among the best r so far.
func (h *scanHeap) offer(x scanHit, r int) {
	s := *h
	if len(s) < r {
		s = append(s, x)
		i := len(s) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !(s[i].est < s[p].est) {
				break
			}
			s[i], s[p] = s[p], s[i]
			i = p
		}
		*h = s
		return
	}
	if !(x.est > s[0].est) {
		return
	}
	s[0] = x
	n := len(s)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if rr := l + 1; rr < n && s[rr].est < s[l].est {
			m = rr
		}
		if !(s[m].est < s[i].est) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
}

// hitHeap keeps the worst of the best k hits on top, for the exact scans.
type hitHeap []Hit

// worse is the reverse of the order results are reported in.
func worse(a, b Hit) bool { return better(b, a) }

// better is the order results are reported in: higher score first, ties by
// key ascending.
func better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Key < b.Key
}

func (h *hitHeap) push(x Hit) {
	*h = append(*h, x)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !worse(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *hitHeap) pop() Hit {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && worse(s[r], s[l]) {
			m = r
		}
		if !worse(s[m], s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// offer adds x to a heap holding at most k hits.
func (h *hitHeap) offer(x Hit, k int) {
	if len(*h) < k {
		h.push(x)
		return
	}
	if better(x, (*h)[0]) {
		(*h)[0] = x
		h.fix0()
	}
}

// fix0 restores the heap after its top was replaced.
func (h *hitHeap) fix0() {
	s := *h
	n := len(s)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && worse(s[r], s[l]) {
			m = r
		}
		if !worse(s[m], s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
}

// sorted empties the heap into a slice, best hit first.
func (h *hitHeap) sorted() []Hit {
	out := make([]Hit, len(*h))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = h.pop()
	}
	return out
}
