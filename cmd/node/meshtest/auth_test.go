package meshtest

import (
	"errors"
	"path/filepath"
	"testing"

	"dkv/client"
	"dkv/internal/nodeproc"
)

// A mesh whose nodes share an --auth-file: a write to one node with the
// password is replicated to the others, which prove the password to each
// other, and read there; a client without it is refused.
func TestMeshWithAPassword(t *testing.T) {
	const secret = "the mesh's own password"
	dir := t.TempDir()
	pass, err := nodeproc.WritePasswordFile(dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nodeproc.NewMesh(bin, filepath.Join(dir, "data"), 3, append([]string{"--auth-file", pass}, fastAE...)...)
	if err != nil {
		t.Fatal(err)
	}
	c.Password = secret
	startNodes(t, c)
	ctx := ctxT(t)
	kvs := make([]*client.KVClient, c.Size())
	for i := range kvs {
		kv, err := client.Dial(c.Addr(i), client.WithPassword(secret))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		kvs[i] = kv
	}
	if err := kvs[0].Set(ctx, "k", "v"); err != nil {
		t.Fatalf("set with the password: %v", err)
	}
	waitReplicated(t, kvs[1:], "k", "v")
	if err := dial(t, c.Addr(1)).Set(ctx, "k", "stranger"); !errors.Is(err, client.ErrAuth) {
		t.Errorf("set without the password: %v, want ErrAuth", err)
	}
}
