package realnet

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
)

// A peer handshake with a shared secret (PeerConfig.Secret), so that only
// nodes that know it can join: each side proves the secret to the other
// with an HMAC over both helloes and two fresh nonces, and the secret
// itself never crosses the wire.
//
//	dialer   -> acceptor: hello (version helloVersionAuth) | nonce_d
//	acceptor -> dialer:   hello (status OK)                | nonce_a | mac_a
//	dialer   -> acceptor: mac_d (then it checks mac_a)
//	acceptor -> dialer:   verdict (1 byte: peerProofOK, or peerProofBad and close)
//
// mac_x = HMAC-SHA256(key, role_x | hello_d | nonce_d | hello_a | nonce_a),
// the roles differing so that one side's proof cannot be played back as
// the other's, the nonces so that no proof serves on another connection,
// and key = HMAC-SHA256(secret, "dkv peer key"), so that the key is not
// the password a client sends. Nodes without a secret keep helloVersion,
// and so still talk to builds from before the secret existed. The frames
// after it carry no MAC: the handshake keeps out nodes that do not know
// the secret, not a man in the middle of an established connection (see
// docs/OPERATIONS.md, Security).

const (
	// helloVersionAuth is the hello of a node with a secret.
	helloVersionAuth = 2
	peerNonceBytes   = 32
	peerMACBytes     = sha256.Size

	peerProofOK  = 1
	peerProofBad = 2
)

// peerKey derives the handshake's key from the secret; nil for none.
func peerKey(secret string) []byte {
	if secret == "" {
		return nil
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("dkv peer key"))
	return m.Sum(nil)
}

// SetSecret replaces the password the nodes prove to each other
// (PeerConfig.Secret) for the connections made from now on; those made
// before keep going. An empty secret turns the proofs off.
func (p *Peers) SetSecret(secret string) {
	key := peerKey(secret)
	p.key.Store(&key)
}

// handshakeKey is the key the next handshake uses; nil without a secret.
func (p *Peers) handshakeKey() []byte {
	if k := p.key.Load(); k != nil {
		return *k
	}
	return nil
}

// helloVersionFor is the version a node with key (nil: none) sends.
func helloVersionFor(key []byte) uint16 {
	if key != nil {
		return helloVersionAuth
	}
	return helloVersion
}

// peerTranscript is what both proofs cover.
type peerTranscript struct {
	helloD, helloA [helloBytes]byte
	nonceD, nonceA [peerNonceBytes]byte
}

func (t *peerTranscript) mac(key []byte, role string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	m.Write(t.helloD[:])
	m.Write(t.nonceD[:])
	m.Write(t.helloA[:])
	m.Write(t.nonceA[:])
	return m.Sum(nil)
}

const (
	peerRoleAccept = "dkv peer accept"
	peerRoleDial   = "dkv peer dial"
)

func newNonce() (n [peerNonceBytes]byte) {
	if _, err := rand.Read(n[:]); err != nil {
		// crypto/rand does not fail on the systems Go supports.
		panic(fmt.Sprintf("realnet: no randomness for a peer nonce: %v", err))
	}
	return n
}

var (
	errPeerWrongSecret = errors.New("the peer proved another secret: every node's --auth-file must hold the same password")
	errPeerRefusedOurs = errors.New("the peer refused our proof: every node's --auth-file must hold the same password")
)

// dialProof runs the dialer's side after the helloes: t holds both helloes
// and nonce_d; it reads nonce_a and mac_a, checks mac_a, sends mac_d and
// reads the verdict.
func dialProof(nc net.Conn, key []byte, t *peerTranscript) error {
	var b [peerNonceBytes + peerMACBytes]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil {
		return fmt.Errorf("waiting for the peer's proof: %w", err)
	}
	copy(t.nonceA[:], b[:peerNonceBytes])
	// Our proof goes first even when theirs is wrong, so that the
	// acceptor logs a wrong password too, not a connection cut short. It
	// tells a node without the secret nothing it can use elsewhere: it
	// covers this connection's nonces.
	if _, err := nc.Write(t.mac(key, peerRoleDial)); err != nil {
		return fmt.Errorf("sending our proof: %w", err)
	}
	if !hmac.Equal(b[peerNonceBytes:], t.mac(key, peerRoleAccept)) {
		return errPeerWrongSecret
	}
	var verdict [1]byte
	if _, err := io.ReadFull(nc, verdict[:]); err != nil {
		return fmt.Errorf("waiting for the peer's verdict on our proof: %w", err)
	}
	if verdict[0] != peerProofOK {
		return errPeerRefusedOurs
	}
	return nil
}

// acceptProof runs the acceptor's side after it answered the hello with
// status OK (t.helloA): it sends nonce_a and mac_a, reads and checks mac_d,
// and sends the verdict. t holds both helloes and nonce_d.
func acceptProof(nc net.Conn, key []byte, t *peerTranscript) error {
	t.nonceA = newNonce()
	var out [peerNonceBytes + peerMACBytes]byte
	copy(out[:], t.nonceA[:])
	copy(out[peerNonceBytes:], t.mac(key, peerRoleAccept))
	if _, err := nc.Write(out[:]); err != nil {
		return fmt.Errorf("sending our proof: %w", err)
	}
	var mac [peerMACBytes]byte
	if _, err := io.ReadFull(nc, mac[:]); err != nil {
		return fmt.Errorf("waiting for the dialer's proof: %w", err)
	}
	if !hmac.Equal(mac[:], t.mac(key, peerRoleDial)) {
		nc.Write([]byte{peerProofBad})
		return refusal{status: helloBadProof}
	}
	if _, err := nc.Write([]byte{peerProofOK}); err != nil {
		return fmt.Errorf("sending the verdict: %w", err)
	}
	return nil
}
