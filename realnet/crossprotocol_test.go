package realnet

import (
	"io"
	"strings"
	"testing"
	"time"
)

// A web page can make a browser send a POST with a text/plain body to any
// port, the server's on 127.0.0.1 too (fetch with mode no-cors, or a
// form): the request's header lines were each answered bad_request, the
// connection stayed open, and the body's JSON lines ran, so any page a
// user of the machine visited could write or delete keys (found by
// review; Redis refuses POST and Host: lines for the same reason). A
// connection whose first line is an HTTP request line is answered an HTTP
// error and closed, and nothing of it runs.
func TestHTTPRequestIsRefusedWhole(t *testing.T) {
	forEachHost(t, respConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		for _, req := range []string{
			"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 41\r\n\r\n" +
				`{"op":"set","key":"pwned","value":"1"}` + "\n",
			"POST /x HTTP/1.0\r\n\r\nSET pwned 1\r\n",
			"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nSET pwned 1\r\n",
			"HEAD /favicon.ico HTTP/1.1\n\n",
		} {
			c := dial(t, r.addr)
			c.send(req)
			c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c.br)
			if err != nil && !isReset(err) {
				t.Fatalf("%.20q: %v", req, err)
			}
			if !strings.HasPrefix(string(got), "HTTP/1.1 400 Bad Request\r\n") || strings.Count(string(got), "HTTP/1.1") != 1 {
				t.Errorf("%.20q: answered %q, want one HTTP 400 and the connection closed", req, got)
			}
		}
		c := dial(t, r.addr)
		c.send(`{"op":"get","key":"pwned"}` + "\n")
		c.recvCode("not_found")
		// A first line that only looks a little like one is served.
		rc := dialRESP(t, r.addr)
		rc.send("SET k HTTP/1.1\r\nGET k\r\n")
		rc.expect("+OK\r\n$8\r\nHTTP/1.1\r\n")
		jc := dial(t, r.addr)
		jc.send(`{"op":"get","key":"k","id":"GET / HTTP/1.1"}` + "\n")
		jc.recvCode("")
	})
}

func TestLooksHTTP(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"POST / HTTP/1.1\r", true},
		{"GET /x?y=1 HTTP/1.0", true},
		{"OPTIONS * HTTP/2", true},
		{"SET k HTTP/1.1", false},
		{"GET k HTTP/1.1 x", false},
		{"GET  HTTP/1.1", false},
		{"post / HTTP/1.1", false},
		{"POST / HTTP/x", false},
		{"POST /", false},
		{"GET " + strings.Repeat("a ", 1000), false},
		{`{"op":"ping"}`, false},
	} {
		if got := looksHTTP([]byte(tc.line)); got != tc.want {
			t.Errorf("looksHTTP(%.30q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}
