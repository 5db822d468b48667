package clustertest

import (
	"crypto/tls"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/certgen"
	"dkv/internal/nodeproc"
	"dkv/internal/tlsfiles"
)

// A cluster over TLS, on both ports: the nodes check each other's
// certificates and elect a leader, the cluster client that trusts the
// authority writes through the leader's SIGKILL, and a client without TLS
// is told the port wants it. A node restarted with a certificate of
// another authority is kept out, and the two others go on without it.
func TestClusterOverTLS(t *testing.T) {
	dir := t.TempDir()
	f, err := certgen.Write(dir, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certgen.Write(t.TempDir(), []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := nodeproc.NewCluster(bin, filepath.Join(dir, "data"), 3, f.NodeFlags()...)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsfiles.Client(f.CA, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	c.TLS = tc
	startNodes(t, c)
	lead, _ := waitLeader(t, c)
	ctx := ctxT(t)
	kv := dialCluster(t, c.Addrs(), client.WithTLS(tc))
	if err := kv.Set(ctx, "k", "before"); err != nil {
		t.Fatalf("set over TLS: %v", err)
	}
	plain, err := client.Dial(c.Addr(lead))
	if err == nil {
		err = plain.Set(ctx, "k", "plain")
		plain.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "tls_required") {
		t.Errorf("a plain client: %v", err)
	}

	// Failover; then the killed node comes back with a peer certificate
	// of another authority, and each side refuses the other's.
	failoverThenKnock(t, c, kv, lead, []string{"--peer-tls-cert", other.Cert, "--peer-tls-key", other.Key, "--peer-tls-ca", other.CA},
		func(logs string) bool { return strings.Count(logs, "TLS handshake failed") >= 2 })
	if _, err := client.DialCluster(ctx, c.Addrs(), client.WithTLS(mustClient(t, other.CA))); !errors.Is(err, client.ErrTLS) {
		t.Errorf("a cluster client that trusts another authority: %v, want ErrTLS", err)
	}
}

func mustClient(t *testing.T, ca string) *tls.Config {
	t.Helper()
	cfg, err := tlsfiles.Client(ca, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
