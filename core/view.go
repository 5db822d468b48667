package core

import (
	"slices"
	"strconv"
	"time"
)

// Views are the pinned copies of a node's store that consistent scans read
// (Request.Consistent, Request.View): a scan of many pages then sees the
// store of one instant, the first page's, however the keys change while
// the client walks. A view is a copy-on-write clone, so it costs nothing
// when it is made; it pins the tree nodes that later writes replace, which
// is why views are few (viewsMax) and short-lived (viewIdle, viewLife).
//
// A view's id is drawn from the node's Rand, so that an id a client holds
// from before a restart names no view of the new process.
type Views struct {
	byID     map[uint64]*view // looked up by id only, never walked
	order    []*view          // least recently used first
	mutation Mutation         // a single node's planted bug, for its scans
}

type view struct {
	id     uint64
	store  *Store
	opened int64 // clock nanoseconds
	used   int64
}

// Limits of the views.
const (
	// viewsMax bounds the views a node keeps; opening one more drops the
	// least recently used.
	viewsMax = 64
	// viewIdle drops a view no page has read for this long.
	viewIdle = time.Minute
	// viewLife drops a view this long after it was opened, however busy:
	// every write to the store meanwhile copies the tree nodes it
	// replaces, which the view keeps alive.
	viewLife = 10 * time.Minute
)

// NewViews makes an empty table.
func NewViews() *Views { return &Views{byID: map[uint64]*view{}} }

// newViewsWith makes an empty table whose scans have a single node's
// planted bug.
func newViewsWith(mut Mutation) *Views { return &Views{byID: map[uint64]*view{}, mutation: mut} }

// Open pins a clone of store, made now, and returns its id for the scan's
// answer (FormatViewID).
func (v *Views) Open(store *Store, now int64, r Rand) uint64 {
	v.sweep(now)
	if len(v.order) >= viewsMax {
		v.drop(v.order[0])
	}
	id := r.Uint64()
	for id == 0 || v.byID[id] != nil {
		id = r.Uint64()
	}
	w := &view{id: id, store: store.Clone(), opened: now, used: now}
	if v.mutation == MutViewSharesStore {
		w.store = store
	}
	v.byID[id] = w
	v.order = append(v.order, w)
	assert(len(v.byID) == len(v.order), "views: the table and its order disagree")
	return id
}

// Get returns the store of view id, if it is still kept, and marks it
// used now.
func (v *Views) Get(id uint64, now int64) (*Store, bool) {
	v.sweep(now)
	w := v.byID[id]
	if w == nil {
		return nil, false
	}
	w.used = now
	for i, o := range v.order {
		if o == w {
			copy(v.order[i:], v.order[i+1:])
			v.order[len(v.order)-1] = w
			break
		}
	}
	return w.store, true
}

// Has reports whether the view a scan named (FormatViewID) is kept.
func (v *Views) Has(id string, now int64) bool {
	v.sweep(now)
	return v.byID[ParseViewID(id)] != nil
}

// Drop forgets view id: the walk is done, or (a node's call) the view was
// opened after a write of a batch that failed, so its clone holds writes
// that the batch's undo took back.
func (v *Views) Drop(id uint64) {
	if w := v.byID[id]; w != nil {
		v.drop(w)
	}
}

// Len is how many views are kept.
func (v *Views) Len() int { return len(v.order) }

// Clear drops every view: a cluster node that stops leading drops them, so
// that a walk ends where the leadership does and no follower holds old
// stores.
func (v *Views) Clear() {
	clear(v.byID)
	clear(v.order) // no stale pointer keeps a clone alive
	v.order = v.order[:0]
}

// Sweep drops the views that are idle or old. A node calls it every turn:
// a view a client walked away from must not wait for the next scan to go.
func (v *Views) Sweep(now int64) { v.sweep(now) }

// sweep drops the views that are idle or old.
func (v *Views) sweep(now int64) {
	for i := 0; i < len(v.order); {
		w := v.order[i]
		if now-w.used >= int64(viewIdle) || now-w.opened >= int64(viewLife) {
			v.drop(w)
			continue
		}
		i++
	}
}

// drop forgets w. slices.Delete zeroes the slot it frees: a stale pointer
// left past the slice's length would keep the view's clone, a whole old
// store, alive.
func (v *Views) drop(w *view) {
	delete(v.byID, w.id)
	if i := slices.Index(v.order, w); i >= 0 {
		v.order = slices.Delete(v.order, i, i+1)
	}
}

// Scan answers a scan (req, validated) of store, or of the view it names:
// a consistent scan whose page leaves keys opens a view of store as it is
// now, and the answer names it (Response.View) for the next pages; a page
// of a view reads the view, or is answered CodeScanExpired when it is gone.
// ascendOf is the node's walk of a store (ScanResponse's ascend). An item
// whose key expires says the time it has left at nowMs (calendar
// milliseconds), by the deadlines of the store or view read. opened is the
// view the page opened, 0 if none.
func (v *Views) Scan(req *Request, store *Store, ascendOf func(*Store) func(from string, f func(key, value string) bool), bytesMax int, now, nowMs int64, r Rand) (resp Response, opened uint64) {
	if req.View != "" && req.Close {
		// Dropped whether or not it was still kept: the client is done
		// with it either way.
		v.Drop(ParseViewID(req.View))
		return Response{OK: true, Items: []KV{}, More: new(bool)}, 0
	}
	if req.View != "" {
		s, ok := v.Get(ParseViewID(req.View), now)
		if !ok {
			return ErrorResponse(CodeScanExpired, "the consistent scan's view %s is gone: unused for %v, open for %v, one of more than %d, or the node restarted or lost its leadership; start the scan again", req.View, viewIdle, viewLife, viewsMax), 0
		}
		resp = scanResponse(req, ascendOf(s), ttlOf(s, nowMs), bytesMax, v.mutation)
		if *resp.More {
			resp.View = req.View
		} else {
			v.Drop(ParseViewID(req.View)) // the walk is done
		}
		return resp, 0
	}
	resp = scanResponse(req, ascendOf(store), ttlOf(store, nowMs), bytesMax, v.mutation)
	if req.Consistent && *resp.More {
		opened = v.Open(store, now, r)
		resp.View = FormatViewID(opened)
	}
	return resp, opened
}

// ttlOf gives a scan's items the time their keys have left in s at nowMs,
// as a ttl answers it (TTLResponse); nil for a store without deadlines.
func ttlOf(s *Store, nowMs int64) func(key string) *uint64 {
	if s.ttl.len() == 0 {
		return nil
	}
	return func(key string) *uint64 {
		at, ok := s.Deadline(key)
		if !ok {
			return nil
		}
		left := uint64(max(at-nowMs, 0))
		return &left
	}
}

// FormatViewID is a view id as a scan's answer carries it.
func FormatViewID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseViewID reads what FormatViewID wrote; 0 for anything else.
func ParseViewID(s string) uint64 {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) > 16 {
		return 0
	}
	return id
}
