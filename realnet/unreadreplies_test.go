package realnet

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// liveHeapBytes is the heap's live bytes, after a collection.
func liveHeapBytes() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// A client that pipelines many GETs of a large value and reads none of
// the replies must not make the server encode them all at once: the
// in-flight limit (ConnInflightMax) bounds how many replies are owed, and
// PROTOCOL.md promises the server will not buffer without bound. The
// replies a send takes were once encoded whole into one buffer, and what
// the socket did not take copied into another: 1024 GETs of a 1 MB value
// held 3 GB and kept every other client waiting for 30-45 s while the
// node's goroutine encoded them (found by review). The replies owed stay
// owed, in the connection's queue; what is encoded ahead of the socket
// is bounded.
func TestUnreadRepliesAreNotEncodedAllAtOnce(t *testing.T) {
	const (
		valueBytes = 100_000
		n          = 200 // 20 MB of replies
		// A few replies, and the heap's noise; the whole would be
		// 20 MB encoded, and as much again copied.
		heldMax = 8 << 20
	)
	cfg := respConfig()
	cfg.IdleTimeout = time.Minute
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingleSmallSendBuffer(t, cfg)
		c := dial(t, r.addr)
		if tc, ok := underlyingTCP(c.nc); ok {
			tc.SetReadBuffer(64 << 10)
		}
		c.send(fmt.Sprintf(`{"op":"set","key":"big","value":%q}`+"\n", strings.Repeat("x", valueBytes)))
		c.recvCode("")
		before := liveHeapBytes()
		c.send(strings.Repeat(`{"op":"get","key":"big"}`+"\n", n))
		// Every request answered (the node's side), none read (the
		// client's): whatever the server holds encoded is there now.
		other := dial(t, r.addr)
		for deadline := time.Now().Add(10 * time.Second); r.host.requestsInFlight.Load() > 0; {
			if time.Now().After(deadline) {
				t.Fatalf("%d requests still in flight", r.host.requestsInFlight.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
		other.send(`{"op":"ping"}` + "\n")
		other.recvCode("")
		// The writer goroutine of a connection (goroutines) holds its
		// lock while its write waits for the client, so what it holds
		// is measured as the heap's growth.
		if held := liveHeapBytes() - before; held > heldMax {
			t.Errorf("the heap grew by %d bytes while a client read none of its replies; want at most %d", held, heldMax)
		}
		// The replies are all still owed, and all arrive once read.
		for i := range n {
			if line, err := c.line(); err != nil || len(line) < valueBytes {
				t.Fatalf("reply %d of %d: %.100q, %v", i, n, line, err)
			}
		}
	})
}
