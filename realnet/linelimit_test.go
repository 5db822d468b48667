package realnet

import (
	"strings"
	"testing"

	"dkv/core"
)

// A line's limit counts its bytes before the "\n": a "\r" before it is
// tolerated, and counted (PROTOCOL.md, Limits). A JSON line of exactly
// RequestBytesMax bytes is served with "\n" and too_large with "\r\n",
// and the connection goes on. (The inline RESP line's 64 KiB count the
// "\r" too: TestRESPInlineLineLimitOnTheWire.)
func TestCarriageReturnCountsTowardTheLineLimit(t *testing.T) {
	forEachHost(t, testConfig(), func(t *testing.T, cfg HostConfig) {
		r := startHost(t, newTestNode(t), cfg)
		c := dial(t, r.addr)
		exact := `{"op":"get","key":"`
		exact += strings.Repeat("z", cfg.RequestBytesMax-len(exact)-2) + `"}`
		c.send(exact + "\n")
		c.recvCode("")
		c.send(exact + "\r\n")
		c.recvCode(core.CodeTooLarge)
		short := exact[:len(exact)-3] + `"}`
		c.send(short + "\r\n")
		c.recvCode("")
	})
}
