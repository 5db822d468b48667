package realnet

import (
	"strings"
	"testing"

	"dkv/core"
)

// RESP is binary-safe and JSON is UTF-8: a key or value that a Redis
// client wrote and that is not valid UTF-8 cannot go into a JSON answer.
// Such an answer is refused, naming why, and the server goes on; RESP still
// reads the bytes exactly. Before, the JSON encoder's assertion stopped
// the whole server (a panic) at the first JSON get, bulk_get, scan or
// refused conditional set that met such a value, and again after every
// restart (found by review).
func TestJSONAnswerRefusesBytesThatAreNotUTF8(t *testing.T) {
	forEachHost(t, respConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		rc := dialRESP(t, r.addr)
		rc.send("SET bin \"\\x80\\x00\\xffok\"\r\n")
		rc.expect("+OK\r\n")
		rc.send("SET \"key\\xff\" v\r\n")
		rc.expect("+OK\r\n")
		jc := dial(t, r.addr)
		for _, req := range []string{
			`{"id":1,"op":"get","key":"bin"}`,
			`{"id":2,"op":"bulk_get","keys":["a","bin"]}`,
			`{"id":3,"op":"scan","prefix":"bin"}`,
			`{"id":4,"op":"scan","prefix":"key","keys_only":true}`,
			`{"id":5,"op":"set","key":"bin","value":"x","if_value":"y"}`,
		} {
			jc.send(req + "\n")
			resp := jc.recvCode(core.CodeNotImplemented)
			if len(resp.ID) == 0 || !strings.Contains(resp.Error.Message, "not valid UTF-8") {
				t.Errorf("%s: %+v %+v", req, resp, resp.Error)
			}
		}
		// The server still serves, and RESP reads the bytes as written.
		jc.send(`{"op":"ping"}` + "\n")
		jc.recvCode("")
		rc.send("GET bin\r\n")
		rc.expect("$5\r\n\x80\x00\xffok\r\n")
		rc.send("SCAN 0 MATCH key*\r\n")
		rc.expect("*2\r\n$1\r\n0\r\n*1\r\n$4\r\nkey\xff\r\n")
		// A value that is valid UTF-8 is answered as ever.
		rc.send("SET text \"caf\\xc3\\xa9\"\r\n")
		rc.expect("+OK\r\n")
		jc.send(`{"op":"get","key":"text"}` + "\n")
		if resp := jc.recvCode(""); resp.Value == nil || *resp.Value != "café" {
			t.Errorf("get of a UTF-8 value: %+v", resp)
		}
	})
}
