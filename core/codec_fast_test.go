package core

import (
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// agree checks decodeFast against the general decoder on one line: when
// the fast path takes a line, the general decoder must accept it too and
// decode the same request; DecodeRequest must answer as the general
// decoder does, error for error. It reports whether the fast path took it.
func agree(t interface{ Fatalf(string, ...any) }, line []byte) bool {
	orig := string(line)
	d := new(decodedRequest)
	_, ok := decodeFast(line, d, 0)
	fast := &d.req
	if string(line) != orig {
		t.Fatalf("decodeFast wrote to the line %q", orig)
	}
	gen, genBad := Codec{}.decodeGeneral(line)
	got, gotBad := DecodeRequest(line)
	if !reflect.DeepEqual(got, gen) || !reflect.DeepEqual(gotBad, genBad) {
		t.Fatalf("%q: DecodeRequest gave %+v %+v, the general decoder %+v %+v", line, got, gotBad, gen, genBad)
	}
	var buf RequestBuf
	into, intoBad := DecodeRequestInto(line, &buf)
	if !reflect.DeepEqual(into, gen) || !reflect.DeepEqual(intoBad, genBad) {
		t.Fatalf("%q: DecodeRequestInto gave %+v %+v, the general decoder %+v %+v", line, into, intoBad, gen, genBad)
	}
	if ok != (into == &buf.d.req) {
		t.Fatalf("%q: the fast path took it: %v; DecodeRequestInto's request in its buffer: %v", line, ok, into == &buf.d.req)
	}
	if !ok {
		if !reflect.DeepEqual(*d, decodedRequest{}) {
			t.Fatalf("%q: decodeFast gave up but wrote %+v", line, *d)
		}
		return false
	}
	if genBad != nil {
		t.Fatalf("%q: decodeFast took a line the general decoder refuses: %s", line, genBad.Error.Message)
	}
	if !reflect.DeepEqual(fast, gen) {
		t.Fatalf("%q: decodeFast gave\n%#v\nthe general decoder\n%#v", line, *fast, *gen)
	}
	// Nothing of the line is kept: a reader reuses its buffer.
	for i := range line {
		line[i] = '#'
	}
	if again, _ := (Codec{}).decodeGeneral([]byte(orig)); !reflect.DeepEqual(fast, again) {
		t.Fatalf("%q: the fast request changed when the line was overwritten: %#v", orig, *fast)
	}
	return true
}

// Lines built from the pieces requests are made of, most of them well
// formed and in the shapes the fast path takes, many with one thing odd.
func requestLine() *rapid.Generator[string] {
	ws := rapid.SampledFrom([]string{"", "", "", "", " ", "\t", "\r\n", "  ", "\n"})
	oddStr := rapid.SampledFrom([]string{"", "é", "😀", "a\\\"b", "\\u00e9", "\\n", "\x01", "\x7f", "\xff", "\xed\xa0\x80", "a\"b", "\\", "<&>", "\u2028"})
	str := rapid.OneOf(
		rapid.StringMatching(`[a-z0-9:_-]{0,12}`),
		oddStr,
		rapid.String(),
		// An odd byte past plain text, at any place of the eight-byte
		// words that plainString passes over.
		rapid.Custom(func(t *rapid.T) string {
			return rapid.StringMatching(`[a-z0-9 ~]{0,20}`).Draw(t, "plain") + oddStr.Draw(t, "odd") + rapid.StringMatching(`[a-z]{0,9}`).Draw(t, "tail")
		}),
	)
	quoted := rapid.Custom(func(t *rapid.T) string { return `"` + str.Draw(t, "s") + `"` })
	num := rapid.OneOf(
		rapid.SampledFrom([]string{"0", "1", "-0", "-1", "01", "00", "1.5", "1.", ".5", "1e3", "1E+3", "1e-3", "1e", "-", "+1", "18446744073709551615", "18446744073709551616", "9007199254740991", "9007199254740992", "12345678901234567890123", "1x", "0x10", "NaN"}),
		rapid.StringMatching(`-?[0-9]{1,21}`),
	)
	id := rapid.OneOf(num, quoted, rapid.SampledFrom([]string{"true", "false", "null", "nul", "tru", "{}", "[]", `[1, 2]`, `{"a":1}`}))
	op := rapid.OneOf(
		rapid.SampledFrom([]string{`"set"`, `"get"`, `"delete"`, `"ping"`, `"status"`, `"bulk_set"`, `"bulk_get"`, `"search"`, `"frob"`, `"s\u0065t"`, `null`, `1`, `"SET"`}),
		quoted,
	)
	plain := rapid.StringMatching(`[a-zA-Z0-9:_ -é😀]{0,16}`)
	// bulk_set's items: mostly {"key","value"} pairs, some of them odd.
	kv := rapid.OneOf(
		rapid.Custom(func(t *rapid.T) string {
			k, v := `"key":"`+plain.Draw(t, "key")+`"`, `"value":"`+plain.Draw(t, "value")+`"`
			if rapid.Bool().Draw(t, "value first") {
				k, v = v, k
			}
			return "{" + k + rapid.SampledFrom([]string{",", " , "}).Draw(t, "sep") + v + "}"
		}),
		rapid.SampledFrom([]string{`{"key":"a"}`, `{"value":"b"}`, `{}`, `null`, `{"key":"a","value":"b","ttl":1}`, `{"key":"a","key":"b"}`,
			`{"key":"a","value":null}`, `{"key":1,"value":"b"}`, `{"key":"a" "value":"b"}`, `{"key":"a","value":"b",}`, `{"key":"\u0061","value":"b"}`, `"x"`}),
	)
	items := rapid.Custom(func(t *rapid.T) string {
		list := rapid.SliceOfN(kv, 0, 5).Draw(t, "items")
		s := "[" + strings.Join(list, rapid.SampledFrom([]string{",", ", ", ",", ",,"}).Draw(t, "sep")) + "]"
		if rapid.IntRange(0, 9).Draw(t, "not a list") == 0 {
			s = rapid.SampledFrom([]string{"[", "[,]", "null", `"x"`, "{}", "[1]", "[[]]"}).Draw(t, "odd")
		}
		return s
	})
	member := rapid.Custom(func(t *rapid.T) string {
		var name, value string
		switch rapid.IntRange(0, 12).Draw(t, "field") {
		case 0, 1:
			name, value = "id", id.Draw(t, "id")
		case 2, 3:
			name, value = "op", op.Draw(t, "op")
		case 4, 5:
			name, value = "key", quoted.Draw(t, "key")
		case 6, 7:
			name, value = "value", quoted.Draw(t, "value")
		case 8:
			name = rapid.SampledFrom([]string{"client_id", "seq", "acked"}).Draw(t, "session")
			value = num.Draw(t, "n")
		case 9:
			if rapid.Bool().Draw(t, "items") {
				name, value = "items", items.Draw(t, "items")
				break
			}
			name = rapid.SampledFrom([]string{"items", "keys", "debug_simulate_fail", "quorum", "after", "k\\u0065y", "vaule", "", "ID"}).Draw(t, "other")
			value = rapid.SampledFrom([]string{"[]", `[{"key":"a","value":"b"}]`, "true", "1", `"x"`, "null"}).Draw(t, "v")
		default:
			name = rapid.SampledFrom([]string{"id", "op", "key", "value"}).Draw(t, "name")
			value = rapid.SampledFrom([]string{`"v"`, "null", "7", "true", "[", `"`, "", "{"}).Draw(t, "odd value")
		}
		return `"` + name + `"` + ws.Draw(t, "ws") + ":" + ws.Draw(t, "ws") + value
	})
	clean := rapid.Custom(func(t *rapid.T) string {
		var members []string
		k := `"key":"` + plain.Draw(t, "key") + `"`
		switch rapid.IntRange(0, 4).Draw(t, "shape") {
		case 0:
			members = []string{`"op":"set"`, k, `"value":"` + plain.Draw(t, "value") + `"`}
		case 1:
			members = []string{`"op":"get"`, k}
		case 2:
			members = []string{`"op":"delete"`, k}
		case 3:
			members = []string{`"op":"set"`, k, `"value":"` + plain.Draw(t, "value") + `"`, `"client_id":7`, `"seq":` + rapid.OneOf(rapid.StringMatching(`[1-9][0-9]{0,5}`), num).Draw(t, "seq")}
		default:
			members = []string{`"op":"bulk_set"`, `"items":` + items.Draw(t, "items")}
		}
		if rapid.IntRange(0, 5).Draw(t, "fail") == 0 {
			members = append(members, `"debug_simulate_fail":`+rapid.SampledFrom([]string{"true", "false", "null", "1", `"true"`}).Draw(t, "fail"))
		}
		if rapid.Bool().Draw(t, "has id") {
			members = append([]string{`"id":` + rapid.OneOf(rapid.StringMatching(`[1-9][0-9]{0,8}`), quoted, id).Draw(t, "id")}, members...)
		}
		if rapid.IntRange(0, 3).Draw(t, "shuffle") == 0 {
			members = rapid.Permutation(members).Draw(t, "order")
		}
		sep := rapid.SampledFrom([]string{",", ",", ",", ", ", " , "}).Draw(t, "sep")
		return "{" + strings.Join(members, sep) + "}"
	})
	odd := rapid.Custom(func(t *rapid.T) string {
		var b strings.Builder
		b.WriteString(ws.Draw(t, "lead"))
		b.WriteString(rapid.SampledFrom([]string{"{", "{", "{", "{", "[", ""}).Draw(t, "open"))
		// The usual requests, then anything.
		var members []string
		switch rapid.IntRange(0, 3).Draw(t, "shape") {
		case 0:
			members = []string{`"id":` + id.Draw(t, "id"), `"op":"set"`, `"key":` + quoted.Draw(t, "key"), `"value":` + quoted.Draw(t, "value")}
		case 1:
			members = []string{`"op":"get"`, `"key":` + quoted.Draw(t, "key")}
		default:
			members = rapid.SliceOfN(member, 0, 8).Draw(t, "members")
		}
		if rapid.IntRange(0, 3).Draw(t, "shuffle") == 0 {
			members = rapid.Permutation(members).Draw(t, "order")
		}
		for i, m := range members {
			if i > 0 {
				b.WriteString(ws.Draw(t, "ws"))
				b.WriteString(rapid.SampledFrom([]string{",", ",", ",", ",", ",,", ";", ""}).Draw(t, "comma"))
				b.WriteString(ws.Draw(t, "ws"))
			}
			b.WriteString(m)
		}
		b.WriteString(ws.Draw(t, "ws"))
		b.WriteString(rapid.SampledFrom([]string{"}", "}", "}", "}", "", "}}", "},", "} x", "]"}).Draw(t, "close"))
		b.WriteString(ws.Draw(t, "trail"))
		s := b.String()
		if rapid.IntRange(0, 9).Draw(t, "cut") == 0 && len(s) > 0 {
			s = s[:rapid.IntRange(0, len(s)-1).Draw(t, "at")]
		}
		return s
	})
	return rapid.OneOf(clean, clean, odd)
}

// The fast path and the general decoder agree on every generated line, and
// the fast path takes a good share of them (the test proves nothing if it
// takes none).
func TestDecodeFastAgrees(t *testing.T) {
	var lines, taken int
	rapid.Check(t, func(t *rapid.T) {
		for range 50 {
			lines++
			if agree(t, []byte(requestLine().Draw(t, "line"))) {
				taken++
			}
		}
	})
	if taken < lines/4 {
		t.Fatalf("the fast path took %d of %d lines", taken, lines)
	}
	t.Logf("the fast path took %d of %d lines", taken, lines)
}

// What the clients send goes the fast way.
func TestDecodeFastTakesClientLines(t *testing.T) {
	v, empty := "a value", ""
	for _, req := range []Request{
		{ID: []byte("17"), Op: OpSet, Key: "user:1", Value: &v},
		{ID: []byte(`"req-9"`), Op: OpGet, Key: "k"},
		{Op: OpDelete, Key: "k"},
		{Op: OpSet, Key: "k", Value: &empty},
		{ID: []byte("3"), Op: OpSet, Key: "k", Value: &v, ClientID: 42, Seq: 7, Acked: 6},
		{ID: []byte("4"), Op: OpPing},
		{Op: OpStatus},
		{Op: OpSet, Key: "clé", Value: &v},
		{ID: []byte("5"), Op: OpBulkSet, Items: []KV{{Key: "a", Value: "1"}, {Key: "b", Value: ""}, {Key: "c", Value: "3"}}},
		{Op: OpBulkSet, Items: []KV{{Key: "a", Value: "1"}}, ClientID: 1, Seq: 2, Acked: 1, DebugSimulateFail: true},
	} {
		line, err := AppendRequest(nil, &req)
		if err != nil {
			t.Fatal(err)
		}
		line = line[:len(line)-1]
		if !agree(t, line) {
			t.Errorf("%s: not taken by the fast path", line)
		}
	}
	for _, line := range []string{
		`{"id":1,"op":"set","key":"k","value":"v"}`,
		` { "op" : "get" , "key" : "k" } `,
		`{"value":"v","key":"k","op":"set","id":"x"}`,
		`{"id":-1.5e+3,"op":"get","key":"k"}`,
		`{"id":null,"op":"ping"}`,
		`{"op":"get","key":"k","value":"v"}`,
		`{"op":"set","key":"k","value":"v","client_id":9007199254740991,"seq":1}`,
		`{"op":"delete","key":"k","client_id":3,"seq":2,"acked":1}`,
		`{"op":"set","key":"k","value":"v","debug_simulate_fail":true}`,
		`{"id":5,"op":"bulk_set","items":[{"key":"a","value":"1"},{"value":"","key":"b"}]}`,
		`{"op":"bulk_set","items":[ ]}`,
		`{"op":"bulk_set","items":[],"client_id":1,"seq":1,"debug_simulate_fail":false}`,
	} {
		if !agree(t, []byte(line)) {
			t.Errorf("%s: not taken by the fast path", line)
		}
	}
	// And what it must leave to the general decoder.
	for _, line := range []string{
		`{"op":"set","key":"k\u0065","value":"v"}`,
		`{"op":"set","k\u0065y":"k","value":"v"}`,
		`{"op":"bulk_get","keys":["a"]}`,
		`{"op":"frob","key":"k"}`,
		`{"op":"bulk_set","items":[{"key":"a","value":"b","ttl":1}]}`,
		`{"op":"bulk_set","items":[{"key":"a"}]}`,
		`{"op":"bulk_set","items":[{"key":"a","value":"b"},]}`,
		`{"op":"bulk_set","items":[{"key":"a" "value":"b"}]}`,
		`{"op":"get","key":"k","debug_simulate_fail":false}`,
		`{"op":"set","key":"k","value":"v","debug_simulate_fail":1}`,
		`{"op":"get","key":"k","client_id":1,"seq":1}`,
		`{"op":"set","key":"k","value":"v","seq":1}`,
		`{"op":"set","key":"k","value":"v","client_id":0,"seq":1}`,
		`{"op":"set","key":"k","value":"v","client_id":9007199254740992,"seq":1}`,
		`{"op":"set","key":"k","value":"v","client_id":01,"seq":1}`,
		`{"op":"set","key":"k","key":"k2","value":"v"}`,
		`{"id":{"a":1},"op":"ping"}`,
		`{"id":01,"op":"ping"}`,
		`{"op":"set","key":"k","value":"v"} x`,
		`{"op":"set","key":"k","value":"v"`,
		"{\"op\":\"set\",\"key\":\"k\",\"value\":\"\xff\"}",
		"{\"op\":\"set\",\"key\":\"k\",\"value\":\"a\tb\"}",
		`{"key":"k"}`,
		`{}`,
	} {
		if agree(t, []byte(line)) {
			t.Errorf("%s: taken by the fast path", line)
		}
	}
}

func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"op":"set","key":"k","value":"v"}`,
		`{"op":"get","key":"k"}`,
		` { "op" : "get" , "key" : "k" } `,
		`{"id":"x","op":"delete","key":"k","client_id":3,"seq":2,"acked":1}`,
		`{"id":-1.5e+3,"op":"ping"}`,
		`{"op":"set","key":"k","value":"v","seq":1}`,
		`{"op":"set","key":"é","value":"😀"}`,
		`{"op":"bulk_set","items":[{"key":"a","value":"b"}]}`,
		`{"op":"bulk_set","items":[{"key":"a" "value":"b"},{"value":"","key":"c"}],"debug_simulate_fail":true}`,
		`{"id":01,"op":"ping"}`,
		`{"id":2,"op":"auth","password":"p\u00e9 \"q\""}`,
		`{"op":"get","key":"k","password":"p"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		agree(t, line)
	})
}
