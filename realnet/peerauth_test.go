package realnet

import (
	"bytes"
	"io"
	"testing"
	"time"

	"dkv/core"
)

const peerTestSecret = "a password every node shares"

func withSecret(secret func(id core.NodeID) string) func(*PeerConfig) {
	return func(c *PeerConfig) { c.Secret = secret(c.ID) }
}

// Nodes that share a secret talk as before, in every direction.
func TestPeersWithASecretDeliver(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 3, withSecret(func(core.NodeID) string { return peerTestSecret }))
	for _, from := range tps {
		for _, to := range tps {
			if from != to {
				from.Send(to.cfg.ID, payload(from.cfg.ID, to.cfg.ID, 1))
			}
		}
	}
	for _, to := range tps {
		waitFor(t, "two messages", func() bool { return to.in.count() == 2 })
	}
}

// A node whose secret differs, or that has none where the others have one,
// is refused both ways, with a log line that says why; nothing it sent is
// delivered.
func TestPeersWithoutTheSecretAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		secret1    string
		log0, log1 string // what node 0 and node 1 log, among others
	}{
		{"another secret", "another password", "wrong password: the sender's --auth-file differs from the receiver's",
			"the peer proved another secret: every node's --auth-file must hold the same password"},
		{"no secret", "", "the receiver has a password (--auth-file) and the sender none",
			"the sender has a password (--auth-file) and the receiver none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noPeerGoroutinesAtEnd(t)
			tps := startCluster(t, 2, withSecret(func(id core.NodeID) string {
				if id == 1 {
					return tc.secret1
				}
				return peerTestSecret
			}))
			a, b := tps[0], tps[1]
			a.Send(1, []byte("to B"))
			b.Send(0, []byte("to A"))
			// Each side logs the other's refusal of its dial, or its own
			// of the other's.
			a.Log(t, tc.log0)
			b.Log(t, tc.log1)
			time.Sleep(50 * time.Millisecond)
			if a.in.count()+b.in.count() != 0 {
				t.Errorf("something was delivered: %v %v", a.in.all(), b.in.all())
			}
			for _, tp := range tps {
				if s := tp.Stats()[0]; s.Connected || s.Inbound {
					t.Errorf("node %d: %+v", tp.cfg.ID, s)
				}
			}
		})
	}
}

// An impostor that knows the cluster id and a node's id but not the
// secret: an old-style hello is refused; a hello with a made-up proof is
// refused after it, and frames sent anyway go nowhere.
func TestPeersImpostorWithoutTheSecret(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 2, withSecret(func(core.NodeID) string { return peerTestSecret }))
	b := tps[1]
	addr := b.Addr().String()
	h := hello{version: helloVersion, kind: helloDial, clusterID: testClusterID, from: 0, to: 1, frameBytesMax: 1 << 20}
	nc, reply := rawHello(t, addr, &h)
	if reply == nil || reply.status != helloAuthRequired {
		t.Fatalf("an old-style hello: answer %+v, want status %d", reply, helloAuthRequired)
	}
	waitClosed(t, nc)

	h.version = helloVersionAuth
	enc := h.encode()
	nonce := bytes.Repeat([]byte{7}, peerNonceBytes)
	nc, reply = rawHelloBytes(t, addr, append(enc[:], nonce...))
	if reply == nil || reply.status != helloOK || reply.version != helloVersionAuth {
		t.Fatalf("an authenticated hello: answer %+v", reply)
	}
	var proof [peerNonceBytes + peerMACBytes]byte
	if _, err := io.ReadFull(nc, proof[:]); err != nil {
		t.Fatal(err)
	}
	nc.Write(bytes.Repeat([]byte{1}, peerMACBytes)) // not the proof
	var verdict [1]byte
	if _, err := io.ReadFull(nc, verdict[:]); err != nil || verdict[0] != peerProofBad {
		t.Fatalf("verdict %v, %v; want %d", verdict, err, peerProofBad)
	}
	fh := frameHeader([]byte("sneaked in"))
	nc.Write(append(fh[:], "sneaked in"...))
	waitClosed(t, nc)
	b.Log(t, "wrong password")

	// The real peer still gets through.
	tps[0].Send(1, []byte("marker"))
	waitFor(t, "the marker", func() bool { return b.in.has("marker") })
	if got := b.in.all(); len(got) != 1 {
		t.Errorf("B got %v", got)
	}
}

// A proof is good for one connection only: the acceptor's fresh nonce
// makes a recorded one worthless.
func TestPeerProofsDifferPerConnection(t *testing.T) {
	key := peerKey(peerTestSecret)
	var t1, t2 peerTranscript
	t1.helloD = (&hello{version: helloVersionAuth, kind: helloDial, clusterID: 1, frameBytesMax: 1}).encode()
	t2 = t1
	t1.nonceA, t2.nonceA = newNonce(), newNonce()
	if bytes.Equal(t1.mac(key, peerRoleDial), t2.mac(key, peerRoleDial)) {
		t.Error("two connections' proofs are equal")
	}
	if bytes.Equal(t1.mac(key, peerRoleDial), t1.mac(key, peerRoleAccept)) {
		t.Error("the two roles' proofs are equal")
	}
	if bytes.Equal(key, []byte(peerTestSecret)) || peerKey("") != nil {
		t.Error("the key is the secret, or a key without a secret")
	}
}

// SetSecret takes effect for the handshakes after it: a node refused for
// another password is let in once its peer takes the same one (as
// cmd/node's SIGHUP reload does).
func TestPeersSetSecret(t *testing.T) {
	noPeerGoroutinesAtEnd(t)
	tps := startCluster(t, 2, withSecret(func(id core.NodeID) string {
		if id == 1 {
			return "the new password"
		}
		return peerTestSecret
	}))
	a, b := tps[0], tps[1]
	a.Send(1, []byte("to B"))
	b.Send(0, []byte("to A"))
	a.Log(t, "wrong password")
	a.SetSecret("the new password")
	waitFor(t, "both messages", func() bool { return a.in.has("to A") && b.in.has("to B") })
}
