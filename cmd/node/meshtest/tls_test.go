package meshtest

import (
	"path/filepath"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/certgen"
	"dkv/internal/nodeproc"
	"dkv/internal/tlsfiles"
)

// A mesh over TLS, on both ports: a write to one node, over TLS, reaches
// the others over the peers' TLS connections and is read there.
func TestMeshOverTLS(t *testing.T) {
	dir := t.TempDir()
	f, err := certgen.Write(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nodeproc.NewMesh(bin, filepath.Join(dir, "data"), 3, append(f.NodeFlags(), fastAE...)...)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsfiles.Client(f.CA, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.TLS = tc
	startNodes(t, c)
	ctx := ctxT(t)
	kvs := make([]*client.KVClient, c.Size())
	for i := range kvs {
		kv, err := client.Dial(c.Addr(i), client.WithTLS(tc))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		kvs[i] = kv
	}
	if err := kvs[0].Set(ctx, "k", "v"); err != nil {
		t.Fatalf("set over TLS: %v", err)
	}
	waitReplicated(t, kvs[1:], "k", "v")
}

// waitReplicated waits until every client's node reads value at key.
func waitReplicated(t *testing.T, kvs []*client.KVClient, key, value string) {
	t.Helper()
	ctx := ctxT(t)
	for i, kv := range kvs {
		deadline := time.Now().Add(waitMax)
		for {
			v, err := kv.Get(ctx, key)
			if err == nil && v == value {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client %d (%s): get = %q, %v after %v; the write did not replicate", i, kv.Addr(), v, err, waitMax)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
