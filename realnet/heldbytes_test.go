package realnet

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// A client that pipelines large requests whose replies are as large (RESP
// ECHO or PING msg, made by the host as the command is read; a JSON
// request's id, which its reply echoes) and reads none of them must not
// make the server hold them all: the in-flight limit counted requests
// only, so a connection could hold 1024 of them, 16 MiB each at the
// default --max-request-bytes (16 GiB): 100 unread ECHOs of 8 MB held 1 GB
// of the server's memory, as many JSON pings with an 8 MB id 850 MB
// (found by review). The bytes owed are bounded too: past them the
// connection is not read until replies go out, and every reply still
// arrives, in order.
func TestUnreadLargeRepliesAreNotAllHeld(t *testing.T) {
	const (
		argBytes = 512 << 10
		n        = 40 // 20 MiB of requests, and as much of replies
		// The bytes owed (a request line's limit, 1 MiB here), what is
		// being sent and read, and the heap's noise; the whole would be
		// 20 MiB.
		heldMax = 8 << 20
	)
	arg := strings.Repeat("x", argBytes)
	for _, tc := range []struct {
		name, request, reply string
	}{
		{"RESP ECHO", fmt.Sprintf("*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n", argBytes, arg), fmt.Sprintf("$%d\r\n%s\r\n", argBytes, arg)},
		{"JSON id", `{"op":"ping","id":"` + arg + `"}` + "\n", `{"id":"` + arg + `","ok":true}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := respConfig()
			cfg.IdleTimeout = time.Minute
			cfg.WriteTimeout = time.Minute
			// A line's wait counts the server's passes over 512 KiB
			// commands too, which under the race detector took more
			// than respConfig's 300 ms.
			cfg.LineTimeout = 10 * time.Second
			forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
				r := startSingleSmallSendBuffer(t, cfg)
				c := dial(t, r.addr)
				if tc, ok := underlyingTCP(c.nc); ok {
					tc.SetReadBuffer(64 << 10)
				}
				c.send(`{"op":"ping"}` + "\n")
				c.recvCode("")
				if tc.name == "RESP ECHO" {
					c = dial(t, r.addr) // told once, from the first bytes
					if tc, ok := underlyingTCP(c.nc); ok {
						tc.SetReadBuffer(64 << 10)
					}
				}
				sc := r.serverConn(t, c)
				base := r.host.requestsAnswered.Load()
				before := liveHeapBytes()
				sent := make(chan error, 1)
				go func() {
					// One buffer, written n times: the client holds
					// no more than one request.
					b := []byte(tc.request)
					for range n {
						if _, err := c.nc.Write(b); err != nil {
							sent <- err
							return
						}
					}
					sent <- nil
				}()
				// The server has read every request, or has stopped
				// reading to wait for room.
				waitReadOrWaitingForRoom(t, r, sc, base, int64(n), "requests")
				if held := liveHeapBytes() - before; held > heldMax {
					t.Errorf("the heap grew by %d bytes while a client read none of %d replies of %d bytes; want at most %d", held, n, argBytes, heldMax)
				}
				// Every reply arrives, in order, once the client reads.
				got := make([]byte, len(tc.reply))
				for i := range n {
					c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
					if _, err := io.ReadFull(c.br, got); err != nil || string(got) != tc.reply {
						t.Fatalf("reply %d of %d: %.60q, %v", i, n, got, err)
					}
				}
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// A scan page's reply holds an entry for each of its keys (their strings
// are the store's), up to --max-bulk-entries of them, however short the
// request: a client that pipelined 1000 scans of 10,000 keys, 28 KB of
// requests, and read none of the replies made the server hold 630 MB
// (found by review). A scan counts against the bytes owed as the page it
// may answer.
func TestUnreadScanPagesAreNotAllHeld(t *testing.T) {
	const (
		keys  = 10_000
		pages = 200 // about 120 MB of entries, held whole
		// The bytes owed (1 MiB here), what is being sent, and the
		// heap's noise.
		heldMax = 16 << 20
	)
	for _, tc := range []struct {
		name, request string
	}{
		{"JSON scan", fmt.Sprintf(`{"op":"scan","limit":%d}`+"\n", keys)},
		{"RESP SCAN", fmt.Sprintf("SCAN 0 COUNT %d\r\n", keys)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := respConfig()
			cfg.IdleTimeout = time.Minute
			cfg.WriteTimeout = time.Minute
			cfg.LineTimeout = 10 * time.Second
			forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
				r := startSingleSmallSendBuffer(t, cfg)
				setup := dial(t, r.addr)
				var items strings.Builder
				for i := range keys {
					if i > 0 {
						items.WriteByte(',')
					}
					fmt.Fprintf(&items, `{"key":"k%05d","value":"v"}`, i)
				}
				setup.send(`{"op":"bulk_set","items":[` + items.String() + "]}\n")
				setup.recvCode("")
				c := dial(t, r.addr)
				if tc, ok := underlyingTCP(c.nc); ok {
					tc.SetReadBuffer(64 << 10)
				}
				sc := r.serverConn(t, c)
				base := r.host.requestsAnswered.Load()
				before := liveHeapBytes()
				sent := make(chan error, 1)
				go func() {
					_, err := io.WriteString(c.nc, strings.Repeat(tc.request, pages))
					sent <- err
				}()
				waitReadOrWaitingForRoom(t, r, sc, base, int64(pages), "scans")
				if held := liveHeapBytes() - before; held > heldMax {
					t.Errorf("the heap grew by %d bytes while a client read none of %d scan pages of %d keys; want at most %d", held, pages, keys, heldMax)
				}
				// Every page arrives once the client reads.
				for i := range pages {
					c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
					if tc.name == "JSON scan" {
						if line, err := c.line(); err != nil || !strings.Contains(line, `"key":"k09999"`) {
							t.Fatalf("page %d of %d: %.80q, %v", i, pages, line, err)
						}
						continue
					}
					// *2, the cursor, *10000, and a key's two lines each.
					for j := range 2 + 2 + 2*keys {
						if line, err := c.br.ReadString('\n'); err != nil || (j == 3 && line != "*10000\r\n") {
							t.Fatalf("page %d of %d, line %d: %q, %v", i, pages, j, line, err)
						}
					}
				}
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// waitReadOrWaitingForRoom waits until the server has answered n requests
// since base, or has stopped reading sc to wait for room.
func waitReadOrWaitingForRoom(t *testing.T, r *running, sc *conn, base, n int64, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		sc.mu.Lock()
		waiting := sc.roomWait
		sc.mu.Unlock()
		if waiting || r.host.requestsAnswered.Load() >= base+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d %s answered, and the connection is not waiting for room", r.host.requestsAnswered.Load()-base, n, what)
		}
	}
}
