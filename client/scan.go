package client

import (
	"context"
	"fmt"
	"iter"

	"dkv/core"
)

// Scan reads one page of the keys that start with prefix ("" for every
// key) and come after startAfter ("" for the first page), in key order,
// with their values: at most limit keys (0: the server's default, 100;
// at most its --max-bulk-entries), fewer where their bytes would pass its
// --max-request-bytes. more says whether keys are left; the next page
// starts after the last key of this one. A page is one read at one
// instant; a walk of many pages is not (ScanAll).
func (c *ops) Scan(ctx context.Context, prefix, startAfter string, limit int) (items []KV, more bool, err error) {
	resp, err := c.scan(ctx, prefix, startAfter, limit, false)
	if err != nil {
		return nil, false, err
	}
	return resp.Items, *resp.More, nil
}

// ScanKeys is Scan without the values: a page's bytes are its keys alone.
func (c *ops) ScanKeys(ctx context.Context, prefix, startAfter string, limit int) (keys []string, more bool, err error) {
	resp, err := c.scan(ctx, prefix, startAfter, limit, true)
	if err != nil {
		return nil, false, err
	}
	return resp.Keys, *resp.More, nil
}

func (c *ops) scan(ctx context.Context, prefix, startAfter string, limit int, keysOnly bool) (*core.Response, error) {
	if limit < 0 {
		return nil, fmt.Errorf("dkv: scan: limit must not be negative, got %d", limit)
	}
	resp, err := c.do(ctx, core.Request{Op: core.OpScan, Prefix: prefix, StartAfter: startAfter, Limit: uint64(limit), KeysOnly: keysOnly})
	switch {
	case err != nil:
	case resp.More == nil:
		err = fmt.Errorf("%w: a scan's answer without \"more\"", ErrProtocol)
	case keysOnly && resp.Keys == nil, !keysOnly && resp.Items == nil:
		err = fmt.Errorf("%w: a scan's answer without its page", ErrProtocol)
	}
	if err != nil {
		return nil, fmt.Errorf("dkv: scan of prefix %q after %q: %w", prefix, startAfter, err)
	}
	return resp, nil
}

// ScanAll walks every key that starts with prefix, in key order, with its
// value, a page of pageSize at a time (0: the server's default). Each page
// is read at its own instant: a key written or deleted during the walk
// may be seen or not, but every key that exists throughout is seen once.
// The walk stops at the first error, which it yields.
//
//	for kv, err := range c.ScanAll(ctx, "user:", 0) {
//		if err != nil { ... }
//		fmt.Println(kv.Key, kv.Value)
//	}
func (c *ops) ScanAll(ctx context.Context, prefix string, pageSize int) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		after := ""
		for {
			items, more, err := c.Scan(ctx, prefix, after, pageSize)
			if err != nil {
				yield(KV{}, err)
				return
			}
			for _, kv := range items {
				if !yield(kv, nil) {
					return
				}
			}
			if !more {
				return
			}
			if len(items) == 0 {
				yield(KV{}, fmt.Errorf("dkv: scan of prefix %q: %w: an empty page that says more", prefix, ErrProtocol))
				return
			}
			after = items[len(items)-1].Key
		}
	}
}
