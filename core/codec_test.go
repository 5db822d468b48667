package core

import (
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"pgregory.net/rapid"
)

func TestDecodeRequestErrors(t *testing.T) {
	cases := []struct {
		line, want string
	}{
		{`not json`, "malformed JSON"},
		{`{"op":"set","key":"k"`, "malformed JSON"},
		{`{"op":"set","key":1,"value":"v"}`, `field "key" must be a string, not a number`},
		{`{"op":"set","key":"k","value":true}`, `field "value" must be a string, not a boolean`},
		{`{"op":"bulk_set","items":"x"}`, `field "items" must be an array, not a string`},
		{`{"op":"bulk_set","items":[{"key":3,"value":"v"}]}`, `field "items/0/key" must be a string`},
		{`{"op":"set","key":"k","vaule":"v"}`, `unknown field "vaule"`},
		{`[1,2]`, "malformed request"},
		{`{"op":"bulk_get","keys":"a"}`, `field "keys" must be an array, not a string`},
		{`{"op":"bulk_delete","keys":["a",2]}`, `field "keys/1" must be a string, not a number`},
		{`{"op":"bulk_get","keys":["a"],"client_id":1,"seq":1}`, `field "client_id" is not used by op "bulk_get"`},
	}
	for _, c := range cases {
		req, bad := DecodeRequest([]byte(c.line))
		if req != nil || bad == nil || bad.Error.Code != CodeBadRequest || !strings.Contains(bad.Error.Message, c.want) {
			t.Errorf("%s: got %+v %+v, want bad_request containing %q", c.line, req, bad, c.want)
		}
	}
	// The id of a bad request is echoed when it can be read, and only then:
	// 01 is no number, though it starts as 0, and echoing 0 would answer
	// another request that a pipelining client sent with the id 0.
	for _, c := range []struct{ line, id string }{
		{`{"id":"x1","op":"set","key":7}`, `"x1"`},
		{`{"id":7,"op":"ping",}`, `7`},
		{`{"op":"ping","id":[1,2],"key":}`, `[1,2]`},
		{`{"id":01,"op":"ping"}`, ``},
		{`{"op":"ping","id":01}`, ``},
		{`{"id":"a" "op":"ping"}`, ``},
		{`{"id":1.5e}`, ``},
	} {
		_, bad := DecodeRequest([]byte(c.line))
		if bad == nil || string(bad.ID) != c.id {
			t.Errorf("%s: answered %+v, want the id %q echoed", c.line, bad, c.id)
		}
	}
}

// An empty value is a value: it must survive encoding in both directions.
func TestEmptyValueRoundTrip(t *testing.T) {
	empty := ""
	line, err := AppendRequest(nil, &Request{Op: OpSet, Key: "k", Value: &empty})
	if err != nil {
		t.Fatal(err)
	}
	req, bad := DecodeRequest(line[:len(line)-1])
	if bad != nil || req.Value == nil || *req.Value != "" {
		t.Fatalf("request %s decoded to %+v, %+v", line, req, bad)
	}
	out := AppendResponse(nil, &Response{OK: true, Value: &empty})
	resp, err := DecodeResponse(out[:len(out)-1])
	if err != nil || resp.Value == nil || *resp.Value != "" {
		t.Fatalf("response %s decoded to %+v, %v", out, resp, err)
	}
}

// The codec runs on every request and response, on the connection
// goroutines: compare these before and after a change to it.
func BenchmarkDecodeRequest(b *testing.B) {
	items := make([]byte, 0, 4096)
	items = append(items, `{"id":7,"op":"bulk_set","items":[`...)
	for i := range 100 {
		if i > 0 {
			items = append(items, ',')
		}
		items = append(items, `{"key":"key-`...)
		items = append(items, itoa(i)...)
		items = append(items, `","value":"a value of some thirty bytes"}`...)
	}
	items = append(items, "]}"...)
	for _, c := range []struct{ name, line string }{
		{"set", `{"id":12345,"op":"set","key":"user:12345","value":"a value of some thirty bytes"}`},
		{"get", `{"id":12346,"op":"get","key":"user:12345"}`},
		{"session", `{"id":12347,"op":"set","key":"user:12345","value":"v","client_id":4242424242,"seq":17,"acked":16}`},
		{"bulk_set100", string(items)},
		{"set1KB", `{"id":12348,"op":"set","key":"doc:12345","value":"` + strings.Repeat("some english words ", 53) + `"}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			line := []byte(c.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				if _, bad := DecodeRequest(line); bad != nil {
					b.Fatal(bad.Error)
				}
			}
		})
	}
	// The JSON library caches the strings it decodes, which a line decoded
	// again and again always hits: distinct keys and values, as a server
	// sees them, cost what they cost.
	b.Run("set_distinct", func(b *testing.B) {
		lines := make([][]byte, 1024)
		for i := range lines {
			lines[i] = []byte(`{"id":` + itoa(i) + `,"op":"set","key":"user:` + itoa(i*7919) + `","value":"a value of some ` + itoa(i) + ` bytes"}`)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, bad := DecodeRequest(lines[i%len(lines)]); bad != nil {
				b.Fatal(bad.Error)
			}
			i++
		}
	})
}

func BenchmarkAppendResponse(b *testing.B) {
	v := "a value of some thirty bytes"
	for _, c := range []struct {
		name string
		resp Response
	}{
		{"ok", Response{ID: []byte("12345"), OK: true}},
		{"value", Response{ID: []byte("12345"), OK: true, Value: &v}},
		{"error", func() Response {
			r := ErrorResponse(CodeNotFound, "key %q not found", "user:12345")
			r.ID = []byte(`"req-12345"`)
			return r
		}()},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 512)
			for b.Loop() {
				buf = AppendResponse(buf[:0], &c.resp)
			}
		})
	}
}

// check runs a line through what a server does before the node: decode,
// then validate. It returns the error response, or nil for a good request.
func check(line string) *Response {
	req, bad := DecodeRequest([]byte(line))
	if bad != nil {
		return bad
	}
	return DefaultLimits().Validate(req)
}

// Every field of every op: a missing, null or mistyped field, a session or
// test-hook field on an op that does not use it, and a client session that
// breaks its rules are bad_request, with a message that names the field
// (and the item).
func TestRequestFieldsChecked(t *testing.T) {
	bad := []struct{ line, want string }{
		// A bulk_set item needs both fields; "" is a value, absence is not.
		{`{"op":"bulk_set","items":[{"key":"b"}]}`, `items[0] needs a string field "value"`},
		{`{"op":"bulk_set","items":[{"key":"b","value":null}]}`, `field "items/0/value" must be a string, not null`},
		{`{"op":"bulk_set","items":[{"value":"v"}]}`, `items[0] needs a string field "key"`},
		{`{"op":"bulk_set","items":[{"key":null,"value":"v"}]}`, `field "items/0/key" must be a string, not null`},
		{`{"op":"bulk_set","items":[{"key":"a","value":"1"},{"key":"b"}]}`, `items[1] needs a string field "value"`},
		{`{"op":"bulk_set","items":[{"key":"a","value":"1","ttl":3}]}`, `unknown field "items/0/ttl"`},
		{`{"op":"bulk_set","items":[null]}`, `field "items/0" must be an object, not null`},
		{`{"op":"bulk_set","items":[{}]}`, `items[0] needs a string field "key"`},
		{`{"op":"bulk_set","items":null}`, `field "items" must be an array, not null`},
		{`{"op":"bulk_set","items":[]}`, `non-empty array "items"`},
		{`{"op":"bulk_set"}`, `non-empty array "items"`},
		// Top-level fields: null is no field's value (but id's).
		{`{"op":null}`, `field "op" must be a string, not null`},
		{`{"op":"set","key":null,"value":"v"}`, `field "key" must be a string, not null`},
		{`{"op":"set","key":"k","value":null}`, `field "value" must be a string, not null`},
		{`{"op":"set","key":"k"}`, `set needs a string field "value"`},
		{`{"op":"set","value":"v"}`, `key must be a non-empty string`},
		{`{"op":"get"}`, `key must be a non-empty string`},
		{`{"op":"delete","key":7}`, `field "key" must be a string, not a number`},
		{`{"op":"set","key":"k","value":"v","debug_simulate_fail":"yes"}`, `field "debug_simulate_fail" must be a boolean, not a string`},
		{`{"op":"set","key":"k","value":"v","debug_simulate_fail":null}`, `field "debug_simulate_fail" must be a boolean, not null`},
		{`{"op":"set","key":nope,"value":"v"}`, `malformed JSON`},
		// Fields that ask for something the op does not do. (A data field
		// the op does not use is ignored, but it is still checked.)
		{`{"op":"get","key":"k","debug_simulate_fail":false}`, `field "debug_simulate_fail" is not used by op "get"`},
		{`{"op":"delete","key":"k","debug_simulate_fail":true}`, `field "debug_simulate_fail" is not used by op "delete"`},
		{`{"op":"get","key":"k","value":null}`, `field "value" must be a string, not null`},
		{`{"op":"ping","items":[{"key":"b"}]}`, `items[0] needs a string field "value"`},
		// Client sessions.
		{`{"op":"set","key":"k","value":"v","client_id":0,"seq":1}`, `client_id must be in 1..9007199254740991, not 0`},
		{`{"op":"set","key":"k","value":"v","client_id":9007199254740992,"seq":1}`, `client_id must be in 1..9007199254740991`},
		{`{"op":"set","key":"k","value":"v","client_id":-1,"seq":1}`, `field "client_id" must be a non-negative integer, not -1`},
		{`{"op":"set","key":"k","value":"v","client_id":1.5,"seq":1}`, `field "client_id" must be a non-negative integer, not 1.5`},
		{`{"op":"set","key":"k","value":"v","client_id":1e3,"seq":1}`, `field "client_id" must be a non-negative integer`},
		{`{"op":"set","key":"k","value":"v","client_id":"7","seq":1}`, `field "client_id" must be a non-negative integer, not a string`},
		{`{"op":"set","key":"k","value":"v","client_id":null,"seq":1}`, `field "client_id" must be a non-negative integer, not null`},
		{`{"op":"set","key":"k","value":"v","client_id":7,"seq":18446744073709551616}`, `field "seq" is out of range`},
		{`{"op":"set","key":"k","value":"v","client_id":7}`, `needs seq >= 1`},
		{`{"op":"set","key":"k","value":"v","client_id":7,"seq":0}`, `needs seq >= 1`},
		{`{"op":"set","key":"k","value":"v","client_id":7,"seq":3,"acked":4}`, `acked (4) must not be above seq (3)`},
		{`{"op":"set","key":"k","value":"v","seq":1}`, `need client_id`},
		{`{"op":"delete","key":"k","seq":0}`, `need client_id`},
		{`{"op":"bulk_set","items":[{"key":"a","value":"b"}],"acked":0}`, `need client_id`},
		{`{"op":"get","key":"k","client_id":7,"seq":1}`, `field "client_id" is not used by op "get"`},
		{`{"op":"ping","seq":1}`, `field "seq" is not used by op "ping"`},
		// Search ops.
		{`{"op":"search"}`, `search needs a non-empty string field "query"`},
		{`{"op":"search","query":""}`, `search needs a non-empty string field "query"`},
		{`{"op":"search","query":7}`, `field "query" must be a string, not a number`},
		{`{"op":"search","query":"a","mode":"some"}`, `mode must be "all" or "any", not "some"`},
		{`{"op":"search","query":"a","limit":0}`, `field "limit" must be at least 1`},
		{`{"op":"search","query":"a","limit":-2}`, `field "limit" must be a non-negative integer, not -2`},
		{`{"op":"search_similar","query":"a","top_k":0}`, `field "top_k" must be at least 1`},
		{`{"op":"search_similar","query":"a","top_k":"5"}`, `field "top_k" must be a non-negative integer, not a string`},
		{`{"op":"search_similar"}`, `search_similar needs a non-empty string field "query"`},
		{`{"op":"search","query":"a","client_id":1,"seq":1}`, `field "client_id" is not used by op "search"`},
		{`{"op":"search","query":"a","quorum":2}`, `field "quorum" is not used by op "search"`},
		// Each search op's count of hits has its own name: the other's
		// was ignored, and the default count answered.
		{`{"op":"search","query":"a","top_k":1}`, `search counts its hits in "limit", not "top_k"`},
		{`{"op":"search_similar","query":"a","limit":1}`, `search_similar counts its hits in "top_k", not "limit"`},
		{`{"op":"search_similar","query":"a","mode":"any"}`, `field "mode" is not used by op "search_similar"`},
		// auth: a password, and only there.
		{`{"op":"auth"}`, `auth needs a non-empty string field "password"`},
		{`{"op":"auth","password":""}`, `auth needs a non-empty string field "password"`},
		{`{"op":"auth","password":7}`, `field "password" must be a string, not a number`},
		{`{"op":"auth","password":"s","key":"k","client_id":1,"seq":1}`, `field "client_id" is not used by op "auth"`},
		{`{"op":"get","key":"k","password":"s"}`, `field "password" is not used by op "get"`},
		{`{"op":"ping","password":"s"}`, `field "password" is not used by op "ping"`},
		// Conditional writes: set (one condition), delete (if_value).
		{`{"op":"set","key":"k","value":"v","if_absent":true,"if_exists":true}`, `at most one of if_absent, if_exists and if_value`},
		{`{"op":"set","key":"k","value":"v","if_exists":true,"if_value":"a"}`, `at most one of if_absent, if_exists and if_value`},
		{`{"op":"set","key":"k","value":"v","if_absent":"yes"}`, `field "if_absent" must be a boolean, not a string`},
		{`{"op":"set","key":"k","value":"v","if_value":null}`, `field "if_value" must be a string, not null`},
		{`{"op":"delete","key":"k","if_absent":true}`, `field "if_absent" is not used by op "delete"`},
		{`{"op":"delete","key":"k","if_exists":true}`, `field "if_exists" is not used by op "delete"`},
		{`{"op":"bulk_set","items":[{"key":"a","value":"b"}],"if_value":"a"}`, `field "if_value" is not used by op "bulk_set"`},
		{`{"op":"get","key":"k","if_exists":true}`, `field "if_exists" is not used by op "get"`},
	}
	for _, c := range bad {
		r := check(c.line)
		if r == nil || r.OK || r.Error == nil || r.Error.Code != CodeBadRequest || !strings.Contains(r.Error.Message, c.want) {
			t.Errorf("%s: got %+v, want bad_request containing %q", c.line, r, c.want)
		}
	}
	good := []string{
		`{"op":"set","key":"k","value":""}`,
		`{"op":"set","key":"k","value":"v","debug_simulate_fail":true}`,
		`{"op":"set","key":"k","value":"v","client_id":9007199254740991,"seq":1}`,
		`{"op":"set","key":"k","value":"v","client_id":1,"seq":5,"acked":5}`,
		`{"op":"set","key":"k","value":"v","client_id":1,"seq":5,"acked":0}`,
		`{"op":"delete","key":"k","client_id":3,"seq":2,"acked":1}`,
		`{"op":"set","key":"k","value":"v","if_absent":true}`,
		`{"op":"set","key":"k","value":"v","if_exists":true,"client_id":3,"seq":2}`,
		`{"op":"set","key":"k","value":"v","if_value":""}`,
		`{"op":"set","key":"k","value":"v","if_absent":false,"if_value":"a"}`,
		`{"op":"delete","key":"k","if_value":"v"}`,
		`{"acked":1,"seq":2,"client_id":3,"debug_simulate_fail":false,"items":[{"value":"","key":"k"}],"op":"bulk_set"}`,
		`{"op":"get","key":"k"}`,
		`{"op":"get","k\u0065y":"k"}`,
		`{"id":null,"op":"ping"}`,
		`{"op":"status","id":{"any":["json",1,null]}}`,
		` { "op" : "get" , "key" : "k" } `,
		// Data fields the op does not use are ignored.
		`{"op":"get","key":"k","value":"v"}`,
		`{"op":"set","key":"k","value":"v","items":[]}`,
		`{"op":"bulk_set","key":"k","items":[{"key":"a","value":"b"}]}`,
		`{"op":"ping","key":""}`,
		`{"op":"search","query":"hello \"big world\"","mode":"any","limit":1000}`,
		`{"op":"search_similar","query":"foo","top_k":1}`,
		`{"op":"auth","password":"a secret with \"quotes\" and \u00e9"}`,
	}
	for _, line := range good {
		if r := check(line); r != nil {
			t.Errorf("%s: got %+v, want it accepted", line, r)
		}
	}
	// An op this server does not know is unknown_op whatever it carries.
	if r := check(`{"op":"frobnicate","key":"k","flavour":1}`); r == nil || r.Error.Code != CodeBadRequest {
		t.Errorf("unknown op with an unknown field: got %+v", r)
	}
	if r := check(`{"op":"frobnicate","key":"k"}`); r == nil || r.Error.Code != CodeUnknownOp {
		t.Errorf("unknown op: got %+v, want unknown_op", r)
	}
	for _, line := range []string{`{"op":"search","query":"a","limit":1001}`, `{"op":"search_similar","query":"a","top_k":1001}`,
		`{"op":"search","query":"` + strings.Repeat("w", 4097) + `"}`,
		`{"op":"auth","password":"` + strings.Repeat("p", AuthSecretBytesMax+1) + `"}`} {
		if r := check(line); r == nil || r.Error.Code != CodeTooLarge {
			t.Errorf("%.60s: got %+v, want too_large", line, r)
		}
	}
}

// The decoded request holds what was sent, items in order.
func TestDecodeRequestValues(t *testing.T) {
	req, bad := DecodeRequest([]byte(`{"id":1,"op":"bulk_set","items":[{"key":"a","value":""},{"key":"b\u00e9","value":"2"}],"client_id":9,"seq":8,"acked":7,"debug_simulate_fail":true}`))
	if bad != nil {
		t.Fatal(bad.Error)
	}
	want := []KV{{Key: "a", Value: ""}, {Key: "bé", Value: "2"}}
	if req.Op != OpBulkSet || len(req.Items) != 2 || req.Items[0] != want[0] || req.Items[1] != want[1] ||
		req.ClientID != 9 || req.Seq != 8 || req.Acked != 7 || !req.DebugSimulateFail || string(req.ID) != "1" {
		t.Fatalf("decoded %+v", req)
	}
}

func TestDecodeBulkKeys(t *testing.T) {
	for _, op := range []string{OpBulkGet, OpBulkDelete} {
		req, bad := DecodeRequest([]byte(`{"op":"` + op + `","keys":["a","b\u00e9","a"]}`))
		if bad != nil {
			t.Fatal(bad.Error)
		}
		if req.Op != op || !reflect.DeepEqual(req.Keys, []string{"a", "bé", "a"}) {
			t.Fatalf("decoded %+v", req)
		}
	}
	req, bad := DecodeRequest([]byte(`{"op":"bulk_delete","keys":["a"],"client_id":3,"seq":2,"acked":1}`))
	if bad != nil || req.ClientID != 3 {
		t.Fatalf("a session on bulk_delete: %+v %+v", req, bad)
	}
}

// Requests built in code (the simulator's, the client's) never pass the
// decoder, so Validate checks the session rules on values too.
func TestValidateSession(t *testing.T) {
	v := "v"
	cases := []struct {
		req  Request
		want string // "" for accepted
	}{
		{Request{Op: OpSet, Key: "k", Value: &v}, ""},
		{Request{Op: OpSet, Key: "k", Value: &v, ClientID: 1, Seq: 1}, ""},
		{Request{Op: OpDelete, Key: "k", ClientID: ClientIDMax, Seq: 9, Acked: 9}, ""},
		{Request{Op: OpBulkSet, Items: []KV{{Key: "a", Value: "b"}}, ClientID: 2, Seq: 3, Acked: 1}, ""},
		{Request{Op: OpSet, Key: "k", Value: &v, ClientID: ClientIDMax + 1, Seq: 1}, "client_id must be in 1.."},
		{Request{Op: OpSet, Key: "k", Value: &v, ClientID: 1}, "needs seq >= 1"},
		{Request{Op: OpSet, Key: "k", Value: &v, ClientID: 1, Seq: 2, Acked: 3}, "must not be above seq"},
		{Request{Op: OpSet, Key: "k", Value: &v, Seq: 2}, "need client_id"},
		{Request{Op: OpSet, Key: "k", Value: &v, Acked: 2}, "need client_id"},
		{Request{Op: OpGet, Key: "k", ClientID: 1, Seq: 1}, "are for writes"},
		{Request{Op: OpPing, ClientID: 1, Seq: 1}, "are for writes"},
	}
	for _, c := range cases {
		r := DefaultLimits().Validate(&c.req)
		switch {
		case c.want == "" && r != nil:
			t.Errorf("%+v: got %+v, want accepted", c.req, r.Error)
		case c.want != "" && (r == nil || r.Error.Code != CodeBadRequest || !strings.Contains(r.Error.Message, c.want)):
			t.Errorf("%+v: got %+v, want bad_request containing %q", c.req, r, c.want)
		}
	}
}

// The id comes back as the bytes it was sent as, whatever JSON value it is,
// on success and on error.
func TestIDEchoedVerbatim(t *testing.T) {
	ids := []string{
		`null`, `""`, `{}`, `[]`, `[1, 2]`, `"\u00e9"`, `"é"`, `1.0`, `1e3`, `-0`, `0`,
		`true`, `false`, `"x"`, `12345678901234567890123456789`,
		`{"a" : [true , false, {"b":null}]}`, `"\/\"\\"`, `[ ]`, `{ }`,
	}
	for _, id := range ids {
		lines := []string{
			`{"id":` + id + `,"op":"ping"}`,
			`{"op":"ping","id":` + id + `}`,
			`{"id" :  ` + id + `  , "op":"ping"}`,
		}
		for _, line := range lines {
			req, bad := DecodeRequest([]byte(line))
			if bad != nil {
				t.Errorf("%s: %v", line, bad.Error)
				continue
			}
			resp := OKResponse()
			resp.ID = req.ID
			if got, want := string(AppendResponse(nil, &resp)), `{"id":`+id+`,"ok":true}`+"\n"; got != want {
				t.Errorf("%s: response %q, want %q", line, got, want)
			}
		}
		// Lines that are objects but not good requests: the id is read
		// before the fault or after it, where it can be.
		for _, line := range []string{
			`{"id":` + id + `,"op":"set","key":7}`,
			`{"op":"set","key":7,"id":` + id + `}`,
			`{"id":` + id + `,"op":"set","vaule":"v"}`,
			`{"op":"bulk_set","items":[{"key":"b"}],"id":` + id + `}`,
			`{"op":"get","key":"k","client_id":1,"id":` + id + `}`,
			`{"id":` + id + `,"op":"set","key":"k"`,
			`{"id":` + id + `,"op":"set","key":"k"} trailing`,
		} {
			_, bad := DecodeRequest([]byte(line))
			if bad == nil {
				t.Errorf("%s: accepted", line)
				continue
			}
			if got, want := string(AppendResponse(nil, bad)), `{"id":`+id+`,"ok":false,`; !strings.HasPrefix(got, want) {
				t.Errorf("%s: error response %q, want it to start %q", line, got, want)
			}
		}
	}
	// What cannot be read as an object with an id gets no id.
	for _, line := range []string{`[1]`, `{"op":"set","key":"k",}`, `{"op":"ping","id":[1,}`, `{"id"`, "{\"id\":[1,\n2],\"op\":\"ping\"}"} {
		if _, bad := DecodeRequest([]byte(line)); bad == nil || bad.ID != nil {
			t.Errorf("%s: got %+v, want an error without id", line, bad)
		}
	}
}

// A response line decodes to the id bytes it carries, and encodes back to
// the same line.
func TestResponseIDRoundTrip(t *testing.T) {
	for _, line := range []string{
		`{"id":null,"ok":true}`,
		`{"id":[1, 2],"ok":true,"value":"v"}`,
		`{"id":"\u00e9","ok":false,"error":{"code":"not_found","message":"m"}}`,
		`{"ok":true}`,
	} {
		resp, err := DecodeResponse([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got := string(AppendResponse(nil, resp)); got != line+"\n" {
			t.Errorf("%s: re-encodes as %s", line, got)
		}
	}
}

// AppendResponse writes by hand what json.Marshal writes (the id apart,
// which it keeps verbatim).
func TestAppendResponseMatchesMarshal(t *testing.T) {
	// A new field of Response or Error must be written by AppendResponse.
	if n := reflect.TypeFor[Response]().NumField(); n != 14 {
		t.Fatalf("Response has %d fields; AppendResponse writes 14: teach it the new one", n)
	}
	if n := reflect.TypeFor[Error]().NumField(); n != 3 {
		t.Fatalf("Error has %d fields; AppendResponse writes 3: teach it the new one", n)
	}
	empty, odd := "", "quote \" back\\slash <html> & \u2028 \u2029 \x00\x1f\t\n é 😀 \x7f"
	notLeader := ErrorResponse(CodeNotLeader, "not the leader; try %s", "10.0.0.2:9999")
	notLeader.Error.Leader = "10.0.0.2:9999"
	for _, resp := range []Response{
		{OK: true},
		{OK: true, Value: &empty},
		{OK: true, Value: &odd},
		{},
		{Error: &Error{}},
		ErrorResponse(CodeBadRequest, "%s", odd),
		notLeader,
		{OK: true, Status: &Status{Mode: "single", Keys: 3, LastIndex: 42}},
		{OK: true, Status: &Status{Mode: "cluster", Cluster: &ClusterStatus{Role: "leader", LeaderID: -1, Peers: []PeerStatus{{NodeID: 1, Snapshot: true}}}}},
		{OK: true, Value: &odd, Status: &Status{}, Error: &Error{Code: "c", Message: "m", Leader: "l"}},
		{OK: true, Stamp: "1733160000000000000.3.2"},
		{OK: true, Hits: []Hit{}},
		{OK: true, Hits: []Hit{{Key: odd, Score: 1.5}, {Key: "b", Score: 1e-9}, {Key: "c", Score: 0.1 + 0.2}, {Key: "d", Score: -3}}},
		{OK: true, Status: &Status{Mode: "single", Indexes: &IndexStatus{Docs: 2, Model: "default"}}},
		{OK: true, Values: []*string{}},
		{OK: true, Values: []*string{&odd, nil, &empty}},
		{OK: true, Deleted: new(uint64)},
		{OK: true, Stamp: "1.2.3", Deleted: &[]uint64{1 << 63}[0]},
		{OK: true, Items: []KV{}, More: new(bool)},
		{OK: true, Items: []KV{{Key: odd, Value: empty}, {Key: "b", Value: odd}}, More: &[]bool{true}[0]},
		{OK: true, Keys: []string{}, More: new(bool)},
		{OK: true, Keys: []string{odd, "b"}, More: &[]bool{true}[0]},
		{OK: true, Keys: []string{"a"}, More: &[]bool{true}[0], View: "9f3a"},
		{Value: &odd, Error: &Error{Code: CodeConditionFailed, Message: odd}},
		{OK: true, TTLMs: new(uint64)},
		{OK: true, TTLMs: &[]uint64{TTLMsMax}[0]},
	} {
		want, err := json.Marshal(&resp)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendResponse(nil, &resp); string(got) != string(want)+"\n" {
			t.Errorf("AppendResponse wrote\n%s want\n%s", got, want)
		}
	}
}

// appendString writes what jsontext.AppendQuote writes for any valid
// UTF-8, with the bytes its plain-copy shortcut must not take (quotes,
// backslashes, control bytes, DEL, non-ASCII) anywhere, at every length
// around the eight bytes it tests at once.
func TestAppendStringMatchesAppendQuote(t *testing.T) {
	edges := []string{"a", "Z", " ", "~", "\"", "\\", "\x00", "\x1f", "\x7f", "\t", "\n", "é", "\u2028", "😀", "<", "&"}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(t, "length")
		var sb strings.Builder
		for range n {
			if rapid.IntRange(0, 9).Draw(t, "odd") == 0 {
				sb.WriteString(rapid.SampledFrom(edges).Draw(t, "edge"))
			} else {
				sb.WriteByte(byte(rapid.IntRange(0x20, 0x7e).Draw(t, "printable")))
			}
		}
		s := sb.String()
		want, err := jsontext.AppendQuote(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// BenchmarkAppendString is a 100-byte value written by appendString and, as
// the baseline in the same run, by jsontext.AppendQuote.
func BenchmarkAppendString(b *testing.B) {
	v := strings.Repeat("value-0123456789-", 6)[:100]
	for _, c := range []struct {
		name   string
		append func([]byte, string) []byte
	}{
		{"appendString", appendString},
		{"AppendQuote", func(dst []byte, s string) []byte { dst, _ = jsontext.AppendQuote(dst, s); return dst }},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 512)
			for b.Loop() {
				buf = c.append(buf[:0], v)
			}
		})
	}
}

// NotFoundResponse says what ErrorResponse with %q said, for any key, valid
// UTF-8 or not: clients that show or match the message see no change.
func TestNotFoundResponseMessage(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.OneOf(rapid.String(), rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) })).Draw(t, "key")
		got := NotFoundResponse(key)
		want := ErrorResponse(CodeNotFound, "key %q not found", key)
		if got.OK || got.Error == nil || *got.Error != *want.Error {
			t.Fatalf("NotFoundResponse(%q) = %+v, want error %+v", key, got, *want.Error)
		}
	})
}

// A password file's one trailing line break, LF or CRLF, is not part of
// the password; anything else is.
func TestPasswordFromFile(t *testing.T) {
	for in, want := range map[string]string{
		"secret\n": "secret", "secret\r\n": "secret", "secret": "secret",
		"secret\n\n": "secret\n", " secret \n": " secret ",
	} {
		if got := PasswordFromFile([]byte(in)); got != want {
			t.Errorf("PasswordFromFile(%q) = %q, want %q", in, got, want)
		}
	}
}

// JSON's edge cases are each a bad_request that says what is wrong: a
// field named twice (which a last-wins decoder would take silently, and a
// set could then write a value its client did not mean), bytes or escapes
// that are not UTF-8 ("Strings must be valid UTF-8"), a byte-order mark,
// JavaScript's non-numbers, nesting past the decoder's depth bound, and a
// second value after the object. An id of any JSON number, however large,
// is echoed as sent.
func TestDecodeRequestJSONEdgeCases(t *testing.T) {
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	cases := []struct {
		line, want string
	}{
		{`{"op":"set","key":"a","key":"b","value":"v"}`, "duplicate"},
		{`{"op":"set","key":"a","value":"v","value":"w"}`, "duplicate"},
		{`{"op":"set","op":"get","key":"a","value":"v"}`, "duplicate"},
		{`{"op":"bulk_set","items":[{"key":"a","value":"b","value":"c"}]}`, "duplicate"},
		{`{"op":"set","key":"` + "\xff" + `","value":"v"}`, "invalid UTF-8"},
		{`{"op":"set","key":"k","value":"` + "\xc3" + `"}`, "invalid UTF-8"},
		{`{"op":"set","key":"k","value":"\ud800"}`, "surrogate"},
		{"\ufeff" + `{"op":"ping"}`, "malformed JSON"},
		{`{"id":NaN,"op":"ping"}`, "malformed JSON"},
		{`{"op":"incr","key":"k","delta":Infinity}`, "malformed JSON"},
		{`{"id":` + deep + `,"op":"ping"}`, "depth"},
		{`{"op":"ping"} {"op":"ping"}`, "after top-level value"},
	}
	for _, c := range cases {
		req, bad := DecodeRequest([]byte(c.line))
		if req != nil || bad == nil || bad.Error.Code != CodeBadRequest || !strings.Contains(bad.Error.Message, c.want) {
			t.Errorf("%.60s: got %+v %+v, want bad_request containing %q", c.line, req, bad, c.want)
		}
	}
	for _, id := range []string{`1e999`, `-0`, `123456789012345678901234567890`, `0.1e-400`} {
		req, bad := DecodeRequest([]byte(`{"id":` + id + `,"op":"ping"}`))
		if bad != nil || req == nil || string(req.ID) != id {
			t.Errorf("id %s: got %+v %+v, want it taken and kept verbatim", id, req, bad)
		}
	}
}
