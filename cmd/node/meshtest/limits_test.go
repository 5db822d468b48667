package meshtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"dkv/core"
)

// A write that a mesh node acknowledges reaches every node, however large
// its flags let it be: one whose replicate message would not fit a peer
// frame (64 MiB) is refused too_large, not logged and acknowledged and
// then dropped by the peer transport on every attempt (found by review:
// a set of 64 MiB less 86 bytes, under --max-request-bytes and
// --max-value-bytes of 100 MB, was answered ok on node 0 and never reached
// nodes 1 and 2, whose logs said "dropped a 67108874-byte message ... over
// FrameBytesMax" at every anti-entropy round).
func TestWriteThatCannotReplicateIsRefused(t *testing.T) {
	c := startMesh(t, append(fastAE, "--max-request-bytes", "100000000", "--max-value-bytes", "100000000")...)

	// The largest write the log's record took before: its encoding (22
	// bytes of framing for key "a" and its stamp) is 64 MiB less 64.
	resp := rawSet(t, c.Addr(0), "a", 64<<20-64-22)
	if resp.OK {
		t.Fatalf("a write of 64 MiB less 86 bytes was acknowledged: its replicate message cannot fit a peer frame")
	}
	if resp.Error == nil || resp.Error.Code != core.CodeTooLarge {
		t.Fatalf("a write of 64 MiB less 86 bytes: %+v, want too_large", resp.Error)
	}

	// A write well under the bound is taken and reaches every node.
	if resp := rawSet(t, c.Addr(0), "b", 63<<20); !resp.OK {
		t.Fatalf("a write of 63 MiB: %+v", resp.Error)
	}
	deadline := time.Now().Add(waitMax)
	for i := range c.Size() {
		for {
			st, err := c.MeshStatus(i, time.Second)
			if err == nil && st.Keys == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d does not hold the acknowledged 63 MiB write (%+v, %v)", i, st, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// rawSet sets key to a value of n bytes over a connection of its own (the
// Go client bounds what it sends below this test's sizes) and returns the
// answer.
func rawSet(t *testing.T, addr, key string, n int) core.Response {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(waitMax))
	line := fmt.Sprintf(`{"op":"set","key":%q,"value":"%s"}`+"\n", key, strings.Repeat("v", n))
	if _, err := nc.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	answer, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatalf("set of %d bytes: %v", n, err)
	}
	var resp core.Response
	if err := json.Unmarshal([]byte(answer), &resp); err != nil {
		t.Fatalf("set of %d bytes: %q: %v", n, answer, err)
	}
	return resp
}
