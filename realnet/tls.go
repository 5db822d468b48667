package realnet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"dkv/core"
)

// TLS on the client port (HostConfig.TLS) and between peers
// (PeerConfig.TLS). The configs are the caller's (cmd/node builds them
// from its flags and swaps certificates on SIGHUP); this file runs the
// handshakes under deadlines and tells a client that spoke plain text to a
// TLS port why it is being closed.
//
// A client's TLS connection is served by an event loop where there are
// loops: its handshake runs on a goroutine of its own (handshakeForLoop),
// then the loop reads and writes the socket and a tlsPipe carries the bytes
// to and from the tls.Conn (tlspipe.go). Where EventLoops is 0 a reader and
// a writer goroutine serve it. A peer's TLS connection is always served by
// goroutines: sockfd finds no descriptor in a *tls.Conn, so adoptFrames
// declines it without being told.

// tlsHandshakeTimeout bounds a client's TLS handshake on the client port,
// from when its reader starts, just after accept: a handshake takes a few
// round trips, and a stranger must not hold a connection slot for an idle
// timeout.
const tlsHandshakeTimeout = 10 * time.Second

// errTLSHandshake marks a peer connection whose TLS handshake failed.
var errTLSHandshake = errors.New("TLS handshake failed")

// tlsDial runs the dialer's side of a peer connection's TLS handshake on
// tcp, under the deadline the caller set, and checks the acceptor's
// certificate against addr's host (unless the config names a server).
func (p *Peers) tlsDial(tcp net.Conn, addr string) (net.Conn, error) {
	cfg := p.cfg.TLS
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	// On a pipe, which goes on to the TCP connection but lets Send
	// encrypt a message and write it to the socket without blocking
	// (peer.sendTLSInline).
	pipe := newTLSPipe(tcp)
	tc := tls.Client(pipe, cfg)
	pipe.tc = tc
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("%w: %w", errTLSHandshake, err)
	}
	return tc, nil
}

// closeNow closes nc at once: for TLS, its TCP connection, without the
// closing alert, which would wait up to 5 s of its own for a peer that
// does not read (a write that failed or timed out had such a peer).
func closeNow(nc net.Conn) error {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return nc.Close()
}

// certNamesPeer reports whether the TLS certificate a dialer presented on
// nc names the host of addr, the address of the node its hello claims to
// be: what the dialer checks of the acceptor, checked the other way, so
// that a holder of one node's certificate cannot pose as another node
// (on another host). A plain connection has nothing to check.
func certNamesPeer(nc net.Conn, addr string) bool {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return true
	}
	certs := tc.ConnectionState().PeerCertificates
	host, _, err := net.SplitHostPort(addr)
	return err == nil && len(certs) > 0 && certs[0].VerifyHostname(host) == nil
}

// handshake runs the server's side of c's TLS handshake. A client that
// sent plain text gets one line (JSON's error, or RESP's if that is what
// it spoke) saying that the port wants TLS, and the connection closes.
func (c *conn) handshake(tc *tls.Conn) error {
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	err := tc.Handshake()
	if err == nil {
		tc.SetDeadline(time.Time{})
		return nil
	}
	var rh tls.RecordHeaderError
	m := c.h.metrics
	if errors.As(err, &rh) && rh.Conn != nil {
		refusePlaintext(rh.Conn, rh.RecordHeader[:])
		c.h.tlsLog.logf("plaintext", "refused a connection from %v: it spoke plain text to the TLS port", tc.RemoteAddr())
		if m != nil {
			m.Refused(core.CodeTLSRequired)
		}
	} else {
		c.h.tlsLog.logf("handshake", "TLS handshake with %v failed: %v", tc.RemoteAddr(), err)
		if m != nil {
			m.TLSHandshakeFailed()
		}
	}
	return errGoingAway
}

// refusePlaintext answers a client that spoke plain text to the TLS port,
// whose first bytes were first, on its raw connection, and closes it as
// lingerClose does, so that the rest of what the client sent does not turn
// the close into a reset that loses the answer.
func refusePlaintext(nc net.Conn, first []byte) {
	var line []byte
	if looksRESP(first) {
		line = []byte("-ERR this port speaks TLS; connect with TLS (redis-cli --tls)\r\n")
	} else {
		resp := core.ErrorResponse(core.CodeTLSRequired, "this port speaks TLS; connect with TLS (cmd/kv --tls-ca FILE, client.WithTLS)")
		line = core.AppendResponse(nil, &resp)
	}
	nc.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
	if _, err := nc.Write(line); err != nil {
		nc.Close()
		return
	}
	lingerClose(nc)
}
