package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"dkv/core"
)

// Scan reads one page of the keys that start with prefix ("" for every
// key) and come after startAfter ("" for the first page), in key order,
// with their values: at most limit keys (0: the server's default, 100;
// at most its --max-bulk-entries), fewer where their bytes would pass its
// --max-request-bytes. more says whether keys are left; the next page
// starts after the last key of this one. A page is one read at one
// instant; a walk of many pages is not (ScanAll). An item whose key
// expires has TTLMs, the milliseconds it had left when the page was read.
func (c *ops) Scan(ctx context.Context, prefix, startAfter string, limit int) (items []KV, more bool, err error) {
	resp, err := c.scan(ctx, core.Request{Prefix: prefix, StartAfter: startAfter, Limit: uint64(limit)}, limit)
	if err != nil {
		return nil, false, err
	}
	return resp.Items, *resp.More, nil
}

// ScanKeys is Scan without the values: a page's bytes are its keys alone.
func (c *ops) ScanKeys(ctx context.Context, prefix, startAfter string, limit int) (keys []string, more bool, err error) {
	resp, err := c.scan(ctx, core.Request{Prefix: prefix, StartAfter: startAfter, Limit: uint64(limit), KeysOnly: true}, limit)
	if err != nil {
		return nil, false, err
	}
	return resp.Keys, *resp.More, nil
}

// scan sends one page's request (req's Op is set here); limit is the
// caller's, checked before it became req.Limit.
func (c *ops) scan(ctx context.Context, req core.Request, limit int) (*core.Response, error) {
	if limit < 0 {
		return nil, fmt.Errorf("dkv: scan: limit must not be negative, got %d", limit)
	}
	req.Op = core.OpScan
	resp, err := c.do(ctx, req)
	switch {
	case err != nil:
	case resp.More == nil:
		err = fmt.Errorf("%w: a scan's answer without \"more\"", ErrProtocol)
	case req.KeysOnly && resp.Keys == nil, !req.KeysOnly && resp.Items == nil:
		err = fmt.Errorf("%w: a scan's answer without its page", ErrProtocol)
	case req.Consistent && *resp.More && resp.View == "", req.View != "" && *resp.More && resp.View != req.View:
		err = fmt.Errorf("%w: a consistent scan's page with keys left names view %q", ErrProtocol, resp.View)
	}
	if err != nil {
		return nil, fmt.Errorf("dkv: scan of prefix %q after %q: %w", req.Prefix, req.StartAfter, err)
	}
	return resp, nil
}

// ScanOption changes how ScanAll walks.
type ScanOption func(*core.Request)

// Consistent makes ScanAll read every page at one instant, the first
// page's: the server pins a copy-on-write view of its store for the walk,
// so a key written or deleted meanwhile is seen as it was. The view lasts
// while pages keep coming (it goes after a minute unused, ten minutes
// open, or when the server restarts or, in a cluster, the leader
// changes); a walk whose view went ends with an error matching
// ErrScanExpired, and starting again is the remedy. A point-in-time copy
// of a live store: ScanAll(ctx, "", 1000, client.Consistent()).
func Consistent() ScanOption { return func(r *core.Request) { r.Consistent = true } }

// ScanAll walks every key that starts with prefix, in key order, with its
// value, a page of pageSize at a time (0: the server's default). Each page
// is read at its own instant: a key written or deleted during the walk
// may be seen or not, but every key that exists throughout is seen once.
// With Consistent, every page is read at the first page's instant. The
// walk stops at the first error, which it yields.
//
//	for kv, err := range c.ScanAll(ctx, "user:", 0) {
//		if err != nil { ... }
//		fmt.Println(kv.Key, kv.Value)
//	}
func (c *ops) ScanAll(ctx context.Context, prefix string, pageSize int, opts ...ScanOption) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		req := core.Request{Prefix: prefix, Limit: uint64(max(pageSize, 0))}
		for _, o := range opts {
			o(&req)
		}
		// open is the walk's view while pages are left: a walk that
		// ends before its last page (the caller stops, an error) closes
		// it, so that the server drops it now rather than keep it, and
		// what writes replace meanwhile, for a minute (found by review).
		var open string
		defer func() {
			if open != "" {
				c.closeView(ctx, open)
			}
		}()
		for {
			resp, err := c.scan(ctx, req, pageSize)
			if err != nil {
				if errors.Is(err, ErrScanExpired) {
					open = "" // gone: nothing to close
				}
				yield(KV{}, err)
				return
			}
			items, more := resp.Items, *resp.More
			if open = ""; more {
				open = resp.View
			}
			// Each key must go past the one before it, the first past
			// the key the page was asked to start after. A page that
			// does not go past it would start the next where this one
			// did, and one whose keys fall back could start it before:
			// either way, a walk without end (found by review, twice).
			prev := req.StartAfter
			for _, kv := range items {
				if kv.Key <= prev {
					yield(KV{}, fmt.Errorf("dkv: scan of prefix %q after %q: %w: a page with key %q after %q, not past it", prefix, req.StartAfter, ErrProtocol, kv.Key, prev))
					return
				}
				prev = kv.Key
			}
			for _, kv := range items {
				if !yield(kv, nil) {
					return
				}
			}
			if !more {
				return // the last page dropped the view
			}
			if len(items) == 0 {
				yield(KV{}, fmt.Errorf("dkv: scan of prefix %q: %w: an empty page that says more", prefix, ErrProtocol))
				return
			}
			req.StartAfter = items[len(items)-1].Key
			if req.Consistent {
				req.Consistent, req.View = false, resp.View
			}
		}
	}
}

// viewCloseTimeout bounds the close of a walk's view: a courtesy to the
// server, which drops an unused view after a minute anyway.
const viewCloseTimeout = 2 * time.Second

// closeView asks the server to drop a consistent walk's view (a scan with
// close), best effort: its answer, or its failure, changes nothing for the
// caller. It outlives the walk's context, which may be what ended it.
func (c *ops) closeView(ctx context.Context, view string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), viewCloseTimeout)
	defer cancel()
	_, _ = c.do(cctx, core.Request{Op: core.OpScan, View: view, Close: true})
}
