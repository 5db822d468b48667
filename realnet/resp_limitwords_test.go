package realnet

import (
	"fmt"
	"testing"
)

// A command over a limit names the limit: a SET of a value that takes the
// command past --max-request-bytes (4 MiB on a cluster node, so a 5 MB
// value) was answered "Protocol error: invalid bulk length" alone, which
// reads as a broken client, and an MSET of too many pairs "invalid
// multibulk length". Redis's words still come first, and the connection
// still closes after them.
func TestRESPLimitErrorsNameTheLimit(t *testing.T) {
	cfg := respConfig() // 1 MiB commands
	cfg.BulkEntriesMax = 3
	r := startSingle(t, cfg)
	for _, tc := range []struct{ send, want string }{
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n",
			"-ERR Protocol error: invalid bulk length: a bulk string of 2097152 bytes would take the command past 1048576 bytes (--max-request-bytes)\r\n"},
		// The value alone fits, the command with it does not.
		{fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", 1<<20-20),
			fmt.Sprintf("-ERR Protocol error: invalid bulk length: a bulk string of %d bytes would take the command past 1048576 bytes (--max-request-bytes)\r\n", 1<<20-20)},
		{"*15\r\n", "-ERR Protocol error: invalid multibulk length: 15 elements, over 14 (dkv's limit: 2 × --max-bulk-entries + 8)\r\n"},
		{"MSET a 1 b 2 c 3 d 4 e 5 f 6 g 7\r\n", "-ERR Protocol error: invalid multibulk length: more than 14 words (dkv's limit: 2 × --max-bulk-entries + 8)\r\n"},
		// A count that is no number is still Redis's error alone.
		{"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*1\r\n$-2\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
	} {
		c := dialRESP(t, r.addr)
		c.send(tc.send)
		c.expect(tc.want)
		c.expectClosed()
	}
}
