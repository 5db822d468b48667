package core

// BulkGetResponse answers a bulk_get: get reads one key of the node's state,
// all of them in the same turn, so the answer is one instant's. An answer
// whose values add up to more than valuesBytesMax (the request line limit:
// what one bulk_set may have written) is refused rather than built, so a
// read of many large values cannot make a reply of gigabytes.
func BulkGetResponse(keys []string, get func(key string) (string, bool), valuesBytesMax int) Response {
	values := make([]*string, len(keys))
	total := 0
	for i, k := range keys {
		v, ok := get(k)
		if !ok {
			continue
		}
		total += len(v)
		if total > valuesBytesMax {
			return ErrorResponse(CodeTooLarge, "bulk_get's values pass %d bytes, the request line limit; ask for fewer keys", valuesBytesMax)
		}
		values[i] = &v
	}
	return Response{OK: true, Values: values}
}

// DeletedResponse answers a bulk_delete that found deleted of its keys.
func DeletedResponse(deleted uint64) Response {
	return Response{OK: true, Deleted: &deleted}
}

// DistinctKeys returns keys without repeats, in order of first appearance.
// Bulk requests are bounded (BulkEntriesMax), so the quadratic scan of a
// small list beats a map, and it leaks no map order.
func DistinctKeys(keys []string) []string {
	out := make([]string, 0, len(keys))
	if len(keys) > 64 {
		seen := make(map[string]struct{}, len(keys))
		for _, k := range keys {
			if _, dup := seen[k]; !dup {
				seen[k] = struct{}{}
				out = append(out, k)
			}
		}
		return out
	}
	for i, k := range keys {
		dup := false
		for _, e := range keys[:i] {
			if e == k {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}
