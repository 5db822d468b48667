package realnet

import (
	"strings"
	"testing"

	"dkv/core"
)

// Before a connection authenticates, a request is bounded by
// unauthedRequestBytesMax, not by the host's RequestBytesMax (1 MiB here):
// a stranger who knows no password cannot make the server buffer a whole
// request a connection. Once an auth succeeds, the next request, in the
// same write, has the full bound.
func TestUnauthenticatedRequestsAreBoundedSmall(t *testing.T) {
	forEachHost(t, authConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		big := strings.Repeat("v", 2*unauthedRequestBytesMax)

		// JSON: refused as too large, naming the bound; the line is
		// skipped and the connection goes on.
		c := dial(t, r.addr)
		c.send(`{"op":"set","key":"k","value":"` + big + `"}` + "\n")
		if resp := c.recvCode(core.CodeTooLarge); !strings.Contains(resp.Error.Message, "before a connection authenticates") {
			t.Errorf("a %d-byte line before auth: %q", len(big), resp.Error.Message)
		}
		c.send(`{"op":"auth","password":"` + testSecret + `"}` + "\n" +
			`{"op":"set","key":"k","value":"` + big + `"}` + "\n" + `{"op":"get","key":"k"}` + "\n")
		c.recvCode("")
		c.recvCode("")
		if resp := c.recvCode(""); resp.Value == nil || *resp.Value != big {
			t.Errorf("get after auth: not the %d-byte value set", len(big))
		}

		// RESP: refused at the bulk string's header, before its bytes
		// are waited for, naming the bound; a protocol error closes.
		rc := dialRESP(t, r.addr)
		rc.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16000000\r\n")
		if line := rc.respLine(); !strings.HasPrefix(line, "-ERR Protocol error: invalid bulk length") || !strings.Contains(line, "before a connection authenticates") {
			t.Errorf("a 16 MB bulk string before AUTH: %q", line)
		}
		rc.expectClosed()
		rc = dialRESP(t, r.addr)
		rc.send(respArray("AUTH", "default", testSecret) + respArray("SET", "k2", big))
		for _, want := range []string{"+OK", "+OK"} {
			if line := rc.respLine(); line != want {
				t.Fatalf("AUTH and a large SET in one write: %q, want %q", line, want)
			}
		}
	})
}
