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
	"dkv/internal/nodeproc"
)

// Two nodes that each hold a write of 63 MiB the other lacks, and many
// keys the other lacks, converge. An anti-entropy push carries a large
// item alone past its byte budget, and used to add a pull of every key the
// peer listed on top of it: 63 MiB and 2 MB of keys is over the 64 MiB
// peer frame, which the transport drops on every send, so each node's
// round with the other timed out and came again, identical, for good, and
// neither node ever got what the other held (found by review).
func TestLargeItemAndManyPullsConverge(t *testing.T) {
	c, err := nodeproc.NewMesh(bin, t.TempDir(), 2, append(fastAE, "--max-request-bytes", "100000000", "--max-value-bytes", "100000000")...)
	if err != nil {
		t.Fatal(err)
	}
	startNodes(t, c)
	// Both nodes join (each has heard from the other) before either is
	// stopped, so that each takes writes alone later.
	for i := range 2 {
		waitSet(t, c.Addr(i), fmt.Sprintf("joined%d", i))
	}

	// Each node in turn takes, while the other is down, a large write in
	// one of the first buckets (pushed first, alone) and 2,000 keys of
	// 1 KB in later buckets (pulled by the other). Each is killed before
	// the other starts, so no replicate queued for a node that is down
	// reaches it: only anti-entropy can bring them.
	const smallN = 2000
	c.Kill(1)
	for side := range 2 {
		if side == 1 {
			if _, err := c.Start(1); err != nil {
				t.Fatal(err)
			}
		}
		big := keyInBucketBelow(fmt.Sprintf("big%d-", side), 2)
		if resp := rawSet(t, c.Addr(side), big, 63<<20); !resp.OK {
			t.Fatalf("node %d: a write of 63 MiB: %+v", side, resp.Error)
		}
		var b strings.Builder
		b.WriteString(`{"op":"bulk_set","items":[`)
		for i, k := 0, 0; k < smallN; i++ {
			key := fmt.Sprintf("small%d-%06d-%s", side, i, strings.Repeat("k", 1000))
			if bucketOf(key) < 2 {
				continue
			}
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"key":%q,"value":"v"}`, key)
			k++
		}
		b.WriteString("]}\n")
		if resp := rawLine(t, c.Addr(side), b.String()); !resp.OK {
			t.Fatalf("node %d: bulk_set: %+v", side, resp.Error)
		}
		c.Kill(side)
	}

	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	want := 2 + 2 + 2*smallN
	deadline := time.Now().Add(waitMax)
	for i := range 2 {
		for {
			st, err := c.MeshStatus(i, time.Second)
			if err == nil && st.Keys == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d holds %+v (%v), not the %d keys both nodes took: anti-entropy between them is stuck", i, st, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// waitSet sets key on addr until a node that has not joined its mesh yet
// takes it.
func waitSet(t *testing.T, addr, key string) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		resp := rawLine(t, addr, fmt.Sprintf(`{"op":"set","key":%q,"value":"v"}`+"\n", key))
		if resp.OK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("set %s on %s: %+v", key, addr, resp.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawLine sends one request line over a connection of its own and returns
// the answer.
func rawLine(t *testing.T, addr, line string) core.Response {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(waitMax))
	if _, err := nc.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	answer, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		t.Fatalf("request of %d bytes: %v", len(line), err)
	}
	var resp core.Response
	if err := json.Unmarshal([]byte(answer), &resp); err != nil {
		t.Fatalf("request of %d bytes: %q: %v", len(line), answer, err)
	}
	return resp
}

// bucketOf is mesh's anti-entropy bucket of key (FNV-1a, 64-bit, modulo
// 1,024 buckets), which anti-entropy walks in order.
func bucketOf(key string) int {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return int(h % 1024)
}

// keyInBucketBelow is the first key prefix+N whose bucket is below b.
func keyInBucketBelow(prefix string, b int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("%s%d", prefix, i); bucketOf(k) < b {
			return k
		}
	}
}
