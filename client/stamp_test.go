package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/servetest"
	"dkv/mesh"
	"dkv/realnet"
)

// startMeshNode runs a one-node mesh in this process: enough to see the
// stamps a mesh node answers and what the client does with them.
func startMeshNode(t *testing.T) string {
	t.Helper()
	node, err := mesh.NewNode(mesh.DefaultConfig(0, []core.NodeID{0}))
	if err != nil {
		t.Fatal(err)
	}
	return servetest.Serve(t, node, realnet.DefaultHostConfig())
}

// KVClient keeps the highest stamp a mesh node answered and sends it as
// after with its writes, so each write wins over everything it saw.
func TestKVClientCarriesStamps(t *testing.T) {
	addr := startMeshNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dialT(t, addr)
	if c.Stamp() != "" {
		t.Fatalf("a new client has stamp %q", c.Stamp())
	}
	if err := c.Set(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	first, err := mesh.ParseStamp(c.Stamp())
	if err != nil {
		t.Fatalf("after a mesh write the client's stamp is %q: %v", c.Stamp(), err)
	}
	if err := c.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	second, _ := mesh.ParseStamp(c.Stamp())
	if !first.Less(second) {
		t.Fatalf("the second write's stamp %s is not above the first's %s", second, first)
	}
	// Another client that observes the stamp writes above it.
	other := dialT(t, addr)
	if err := other.ObserveStamp(c.Stamp()); err != nil {
		t.Fatal(err)
	}
	if err := other.Set(ctx, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	third, _ := mesh.ParseStamp(other.Stamp())
	if !second.Less(third) {
		t.Fatalf("the observing client's write %s is not above %s", third, second)
	}
	// The stamp is really sent: one from far in the future is refused.
	future := mesh.Stamp{Wall: time.Now().Add(time.Hour).UnixNano()}
	if err := other.ObserveStamp(future.String()); err != nil {
		t.Fatal(err)
	}
	var se *ServerError
	if err := other.Set(ctx, "k", "v3"); !errors.As(err, &se) || se.Code != core.CodeUnavailable || !strings.Contains(se.Message, "max offset") {
		t.Fatalf("a write after a stamp an hour ahead: err = %v; want unavailable naming the max offset", err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || v != "v2" {
		t.Fatalf("Get = %q, %v; want v2", v, err)
	}
	if err := c.ObserveStamp("not a stamp"); err == nil {
		t.Fatal("ObserveStamp took junk")
	}
}
