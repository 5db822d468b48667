package core

import (
	"runtime"
	"strings"
	"testing"
)

// bulkLine is a request line whose "keys" (or bulk_set's "items") holds n
// entries; plain items take the fast path, escaped ones the general one.
func bulkLine(op string, n int, escaped bool) []byte {
	var b strings.Builder
	b.WriteString(`{"id":7,"op":"` + op + `",`)
	entry := `"a"`
	if op == OpBulkSet {
		b.WriteString(`"items":[`)
		entry = `{"key":"a","value":"b"}`
		if escaped {
			entry = `{"key":"\u0061","value":"b"}`
		}
	} else {
		b.WriteString(`"keys":[`)
	}
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(entry)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// A Codec with BulkEntriesMax refuses a bulk request past it with the
// node's code, too_large, and the id; at the limit the request decodes as
// the zero Codec decodes it, and the zero Codec decodes any number (the
// node's Validate refuses them).
func TestCodecRefusesBulkEntriesPastItsLimit(t *testing.T) {
	const entriesMax = 10
	codec := Codec{BulkEntriesMax: entriesMax}
	for _, tc := range []struct {
		op      string
		escaped bool
		what    string
	}{
		{OpBulkGet, false, "keys"},
		{OpBulkDelete, false, "keys"},
		{OpBulkSet, false, "items"}, // the fast path
		{OpBulkSet, true, "items"},  // the general path
	} {
		at := bulkLine(tc.op, entriesMax, tc.escaped)
		for _, decode := range []func([]byte) (*Request, *Response){
			codec.DecodeRequest,
			func(line []byte) (*Request, *Response) { return codec.DecodeRequestInto(line, new(RequestBuf)) },
		} {
			req, bad := decode(at)
			if bad != nil {
				t.Fatalf("%s of %d %s at the limit: %s", tc.op, entriesMax, tc.what, bad.Error.Message)
			}
			if n := len(req.Keys) + len(req.Items); n != entriesMax {
				t.Fatalf("%s at the limit decoded %d %s", tc.op, n, tc.what)
			}
			_, bad = decode(bulkLine(tc.op, entriesMax+1, tc.escaped))
			want := tc.op + " has more than 10 " + tc.what + "; the limit is 10"
			if bad == nil || bad.Error.Code != CodeTooLarge || bad.Error.Message != want || string(bad.ID) != "7" {
				t.Fatalf("%s of %d %s, limit %d: %+v, want too_large %q with id 7", tc.op, entriesMax+1, tc.what, entriesMax, bad, want)
			}
		}
		if req, bad := DecodeRequest(bulkLine(tc.op, 3*entriesMax, tc.escaped)); bad != nil || len(req.Keys)+len(req.Items) != 3*entriesMax {
			t.Fatalf("the zero Codec refused or cut %s of %d %s: %+v", tc.op, 3*entriesMax, tc.what, bad)
		}
	}
	// An array before the op is refused as well, naming no op.
	_, bad := codec.DecodeRequest([]byte(`{"keys":["a","a","a","a","a","a","a","a","a","a","a"],"op":"bulk_get"}`))
	if bad == nil || bad.Error.Code != CodeTooLarge || bad.Error.Message != "the request has more than 10 keys; the limit is 10" {
		t.Fatalf("keys before the op: %+v", bad)
	}
}

// A line of a million keys (or 256k items) is refused at the one past the limit, having
// allocated what the limit allows, not what the line holds: the host
// decodes on its event loop, which a line of 4 million keys stalled for
// seconds while it allocated hundreds of MB.
func TestCodecRefusesBulkEntriesBeforeAllocatingThem(t *testing.T) {
	const entriesMax = 10_000
	codec := Codec{BulkEntriesMax: entriesMax}
	for _, tc := range []struct {
		op      string
		n       int
		escaped bool
	}{{OpBulkGet, 1 << 20, false}, {OpBulkSet, 1 << 18, false}, {OpBulkSet, 1 << 18, true}} {
		line := bulkLine(tc.op, tc.n, tc.escaped)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, bad := codec.DecodeRequestInto(line, new(RequestBuf))
		runtime.ReadMemStats(&after)
		// 10,000 entries of a byte or two take under 2 MB however they
		// are held; the line's entries all decoded were 16 MB and more.
		const allocatedMax = 4 << 20
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s of %d entries (escaped %v): a line of %d bytes refused after allocating %d bytes", tc.op, tc.n, tc.escaped, len(line), allocated)
		if allocated > allocatedMax {
			t.Errorf("%s of %d entries (escaped %v): refusing a line of %d bytes allocated %d bytes, more than %d",
				tc.op, tc.n, tc.escaped, len(line), allocated, allocatedMax)
		}
		if bad == nil || bad.Error.Code != CodeTooLarge {
			t.Errorf("%s of %d entries: %+v, want too_large", tc.op, tc.n, bad)
		}
	}
}
