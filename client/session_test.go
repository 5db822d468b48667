package client

import (
	"sync"
	"testing"

	"dkv/core"
	"dkv/election"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// A cluster forgets the session of a client that wrote nothing while
// SessionsMax other clients were active (16,384 by default: a busy cluster
// whose clients come and go, one CLI run or one short-lived process each),
// and from then on refuses each of its writes with session_expired. A
// long-lived ClusterKVClient must not be left unable to write for good:
// its next write, which no earlier attempt sent, was certainly not
// applied, so the client starts a new session and sends it there.
func TestClusterClientOutlivesItsForgottenSession(t *testing.T) {
	cfg := election.DefaultNodeConfig(0, []core.NodeID{0})
	cfg.SessionsMax = 2
	node, err := election.NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := servetest.Serve(t, node, realnet.DefaultHostConfig())
	ctx := ctxT(t)

	old := dialClusterT(t, []string{addr})
	if err := old.Set(ctx, "k", "1"); err != nil {
		t.Fatal(err)
	}
	// Enough other clients write for the cluster to forget old's session.
	for range cfg.SessionsMax {
		other := dialClusterT(t, []string{addr})
		if err := other.Set(ctx, "other", "v"); err != nil {
			t.Fatal(err)
		}
		other.Close()
	}
	firstID := old.ClientID()
	for i, v := range []string{"2", "3"} {
		if err := old.Set(ctx, "k", v); err != nil {
			t.Fatalf("write %d after the cluster forgot the session: %v", i+1, err)
		}
	}
	if got, err := old.Get(ctx, "k"); err != nil || got != "3" {
		t.Fatalf("k = %q, %v; want 3", got, err)
	}
	if old.ClientID() == firstID {
		t.Fatalf("the client still uses the session %d the cluster forgot", firstID)
	}
	// The incr of the new session is retried under it, and applied once.
	if n, err := old.Incr(ctx, "n", 1); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v; want 1", n, err)
	}

	// Forgotten again, with many writes in flight: each is refused, one
	// of them starts the next session, and all go again in it, once.
	for range cfg.SessionsMax {
		other := dialClusterT(t, []string{addr})
		if err := other.Set(ctx, "other", "v"); err != nil {
			t.Fatal(err)
		}
		other.Close()
	}
	secondID := old.ClientID()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := old.Incr(ctx, "n", 1); err != nil {
				t.Errorf("Incr in flight as the session was forgotten: %v", err)
			}
		}()
	}
	wg.Wait()
	if got, err := old.Get(ctx, "n"); err != nil || got != "17" {
		t.Fatalf("n = %q, %v; want 17", got, err)
	}
	if id := old.ClientID(); id == secondID || id == firstID {
		t.Fatalf("the client still uses a session the cluster forgot")
	}
}
