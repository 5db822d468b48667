package core

import "strings"

// ScanLimitDefault is the page of a scan that names no limit.
const ScanLimitDefault = 100

// ScanResponse answers a scan (req, validated) over a store that ascend
// walks in key order from a key on (as Store.Ascend does; a mesh's skips
// its tombstones). The page holds at most req.Limit keys and, past its
// first, at most bytesMax bytes of them encoded (QuotedBytesMax, and each
// item's framing), so that an answer stays within what a client reads in
// one line; More says whether a key is left after it, which the next page
// starts after. ttlOf, if not nil, gives an item's TTLMs: the time its key
// has left, nil for a key that does not expire.
func ScanResponse(req *Request, ascend func(from string, f func(key, value string) bool), ttlOf func(key string) *uint64, bytesMax int) Response {
	return scanResponse(req, ascend, ttlOf, bytesMax, MutNone)
}

// ttlFieldBytesMax is what an item's ttl_ms adds to its encoding at most.
const ttlFieldBytesMax = len(`,"ttl_ms":18446744073709551615`)

// scanResponse is ScanResponse with a single node's planted bug.
func scanResponse(req *Request, ascend func(from string, f func(key, value string) bool), ttlOf func(key string) *uint64, bytesMax int, mut Mutation) Response {
	limit := int(req.Limit)
	if limit == 0 {
		limit = ScanLimitDefault
	}
	from := req.Prefix
	if req.StartAfter > from {
		from = req.StartAfter
	}
	resp := Response{OK: true}
	if req.KeysOnly {
		resp.Keys = []string{}
	} else {
		resp.Items = []KV{}
	}
	more := false
	n, total := 0, 0
	ascend(from, func(key, value string) bool {
		if !strings.HasPrefix(key, req.Prefix) {
			return false // past the prefix: the keys that have it are contiguous
		}
		if key == req.StartAfter {
			return true
		}
		size := QuotedBytesMax(key) + 1 // and a comma
		var ttl *uint64
		if !req.KeysOnly {
			size += QuotedBytesMax(value) + len(`{"key":,"value":}`)
			if ttlOf != nil {
				if ttl = ttlOf(key); ttl != nil {
					size += ttlFieldBytesMax
				}
			}
		}
		if n == limit || (n > 0 && total+size > bytesMax) {
			more = true
			return false
		}
		n++
		total += size
		if req.KeysOnly {
			resp.Keys = append(resp.Keys, key)
		} else {
			resp.Items = append(resp.Items, KV{Key: key, Value: value, TTLMs: ttl})
		}
		return mut != MutScanFullPageIsLast || n < limit
	})
	resp.More = &more
	return resp
}
