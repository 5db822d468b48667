package core

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// A scan's pages, followed by start_after, are the keys with the prefix in
// order, each once, whatever the limit and the byte bound; More is true
// exactly while keys are left.
func TestScanPagesAreTheKeysInOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := NewStore()
		model := map[string]string{}
		for _, k := range rapid.SliceOfN(rapid.StringMatching(`[ab]{0,4}`), 0, 40).Draw(t, "keys") {
			if k == "" {
				continue
			}
			v := strings.Repeat("v", rapid.IntRange(0, 20).Draw(t, "value bytes"))
			s.Set(k, v)
			model[k] = v
		}
		prefix := rapid.StringMatching(`[ab]{0,2}`).Draw(t, "prefix")
		var want []KV
		for k, v := range model {
			if strings.HasPrefix(k, prefix) {
				want = append(want, KV{Key: k, Value: v})
			}
		}
		slices.SortFunc(want, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
		keysOnly := rapid.Bool().Draw(t, "keys only")
		req := &Request{Op: OpScan, Prefix: prefix, KeysOnly: keysOnly, Limit: uint64(rapid.IntRange(0, 7).Draw(t, "limit"))}
		bytesMax := rapid.IntRange(1, 60).Draw(t, "bytes max")
		var got []KV
		for page := 0; ; page++ {
			if page > len(want)+1 {
				t.Fatalf("no end after %d pages", page)
			}
			resp := ScanResponse(req, s.Ascend, nil, bytesMax)
			if !resp.OK || resp.More == nil {
				t.Fatalf("page %d: %+v", page, resp)
			}
			n := len(resp.Items)
			if keysOnly {
				n = len(resp.Keys)
				if resp.Items != nil {
					t.Fatalf("keys_only answered items: %+v", resp)
				}
				for _, k := range resp.Keys {
					got = append(got, KV{Key: k, Value: model[k]})
				}
			} else {
				got = append(got, resp.Items...)
			}
			limit := int(req.Limit)
			if limit == 0 {
				limit = ScanLimitDefault
			}
			if n > limit {
				t.Fatalf("page %d has %d keys; the limit is %d", page, n, limit)
			}
			if *resp.More && n == 0 {
				t.Fatalf("page %d is empty but says more", page)
			}
			if !*resp.More {
				break
			}
			req.StartAfter = got[len(got)-1].Key
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages gave %v, want %v", got, want)
		}
	})
}

// The byte bound stops a page early, but never before its first key.
func TestScanByteBound(t *testing.T) {
	s := NewStore()
	for i := range 5 {
		s.Set(fmt.Sprintf("k%d", i), strings.Repeat("v", 10))
	}
	// An item {"key":"k0","value":"vvvvvvvvvv"}, and its comma: 34 bytes.
	resp := ScanResponse(&Request{Op: OpScan}, s.Ascend, nil, 70)
	if len(resp.Items) != 2 || !*resp.More {
		t.Fatalf("70 bytes: %+v", resp)
	}
	// Control bytes count as they are escaped, six each.
	c := NewStore()
	for i := range 5 {
		c.Set(fmt.Sprintf("k%d", i), strings.Repeat("\x01", 10))
	}
	if resp := ScanResponse(&Request{Op: OpScan}, c.Ascend, nil, 150); len(resp.Items) != 1 || !*resp.More {
		t.Fatalf("150 bytes of escaped values: %d items", len(resp.Items))
	}
	resp = ScanResponse(&Request{Op: OpScan}, s.Ascend, nil, 1)
	if len(resp.Items) != 1 || !*resp.More {
		t.Fatalf("1 byte: %+v", resp)
	}
	resp = ScanResponse(&Request{Op: OpScan, Prefix: "x"}, s.Ascend, nil, 1)
	if resp.Items == nil || len(resp.Items) != 0 || *resp.More {
		t.Fatalf("no key: %+v", resp)
	}
}

// Scan's fields decode, are checked against the limits, and are refused as
// a session (a read has nothing to deduplicate).
func TestScanRequests(t *testing.T) {
	req, bad := DecodeRequest([]byte(`{"op":"scan","prefix":"user:","start_after":"user:7","limit":50,"keys_only":true}`))
	if bad != nil {
		t.Fatal(bad.Error)
	}
	if req.Op != OpScan || req.Prefix != "user:" || req.StartAfter != "user:7" || req.Limit != 50 || !req.KeysOnly {
		t.Fatalf("decoded %+v", req)
	}
	l := DefaultLimits()
	for _, tc := range []struct {
		line, code string
	}{
		{`{"op":"scan"}`, ""},
		{`{"op":"scan","limit":0}`, CodeBadRequest},
		{`{"op":"scan","limit":10001}`, CodeTooLarge},
		{`{"op":"scan","prefix":"` + strings.Repeat("p", 4097) + `"}`, CodeTooLarge},
		{`{"op":"scan","start_after":"` + strings.Repeat("p", 4097) + `"}`, CodeTooLarge},
		{`{"op":"scan","keys_only":1}`, CodeBadRequest},
		{`{"op":"scan","client_id":1,"seq":1}`, CodeBadRequest},
	} {
		req, bad := DecodeRequest([]byte(tc.line))
		if bad == nil {
			bad = l.Validate(req)
		}
		code := ""
		if bad != nil {
			code = bad.Error.Code
		}
		if code != tc.code {
			t.Errorf("%.60s: code %q, want %q (%+v)", tc.line, code, tc.code, bad)
		}
	}
}

// QuotedBytesMax is never less than what a string takes encoded.
func TestQuotedBytesMaxBoundsTheEncoding(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		str := rapid.String().Draw(t, "s")
		if enc := appendString(nil, str); len(enc) > QuotedBytesMax(str) {
			t.Fatalf("%q encodes to %d bytes, over its bound %d", str, len(enc), QuotedBytesMax(str))
		}
	})
	for _, str := range []string{"", "plain", "\x00\x1f", `"\`, "\u2028\u2029", "é😀"} {
		if enc := appendString(nil, str); len(enc) > QuotedBytesMax(str) {
			t.Errorf("%q encodes to %d bytes, over its bound %d", str, len(enc), QuotedBytesMax(str))
		}
	}
}
