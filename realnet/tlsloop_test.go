package realnet

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"dkv/internal/tlsfiles"
)

// heldConn is a client's TCP connection whose writes, while held, gather
// in a buffer and go out as one write at release: what TLS wrote of
// several calls (records, then the closing alert) reaches the server in
// one segment, so one socket read takes it all.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  []byte
}

func (h *heldConn) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold {
		h.buf = append(h.buf, b...)
		return len(b), nil
	}
	return h.Conn.Write(b)
}

func (h *heldConn) setHold(hold bool) {
	h.mu.Lock()
	h.hold = hold
	h.mu.Unlock()
}

// release writes what was held, in one write, and stops holding.
func (h *heldConn) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = false
	// tls.Conn.CloseWrite leaves a deadline in the past behind it.
	h.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := h.Conn.Write(h.buf)
	h.buf = nil
	return err
}

// dialTLSHeld opens a TLS connection over a heldConn and completes its
// handshake.
func dialTLSHeld(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, *heldConn) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	held := &heldConn{Conn: raw}
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(held, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc, held
}

// A client that pipelines more requests than a connection may have in
// flight and then closes its sending side with TLS's closing alert, the
// alert in the same segment as its last record, is answered every request
// before the connection closes, as a plain client that half-closes is.
// (The loop once took the end of the stream that TLS reported with the
// records' bytes for the end of reading while the in-flight limit paused
// the connection: the JSON requests still in its buffer were read as one
// line and answered bad_request, the RESP ones were never answered.)
func TestTLSCloseNotifyAfterPipelinedRequestsPastTheInflightLimit(t *testing.T) {
	f := testCerts(t)
	cfg := testConfig()
	cfg.ConnInflightMax = 4
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	forEachHost(t, cfg, func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		for _, proto := range []struct{ name, request, reply string }{
			{"JSON", `{"op":"ping"}` + "\n", `{"ok":true}` + "\n"},
			{"RESP", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$-1\r\n"},
		} {
			tc, held := dialTLSHeld(t, r.addr, testClientTLS(t, f.CA, "", ""))
			const requests = 40
			held.setHold(true)
			if _, err := io.WriteString(tc, strings.Repeat(proto.request, requests)); err != nil {
				t.Fatal(err)
			}
			if err := tc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if err := held.release(); err != nil {
				t.Fatal(err)
			}
			tc.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(tc)
			if want := strings.Repeat(proto.reply, requests); string(got) != want {
				t.Errorf("%s: %d replies, then %v; want %d:\n%.300s", proto.name,
					strings.Count(string(got), proto.reply), err, requests, got)
			}
		}
	})
}
