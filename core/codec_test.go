package core

import (
	"strings"
	"testing"
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
	}
	for _, c := range cases {
		req, bad := DecodeRequest([]byte(c.line))
		if req != nil || bad == nil || bad.Error.Code != CodeBadRequest || !strings.Contains(bad.Error.Message, c.want) {
			t.Errorf("%s: got %+v %+v, want bad_request containing %q", c.line, req, bad, c.want)
		}
	}
	// The id of a bad request is echoed when it can be read.
	if _, bad := DecodeRequest([]byte(`{"id":"x1","op":"set","key":7}`)); string(bad.ID) != `"x1"` {
		t.Errorf("id not echoed: %q", bad.ID)
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
