package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"dkv/internal/tlsfiles"
)

// tlsFlags are the TLS flags: the client port's certificate (and the
// authorities of the client certificates it may require), and the peer
// connections' certificate and authority, checked both ways.
type tlsFlags struct {
	certFile, keyFile, clientCAFile       string
	peerCertFile, peerKeyFile, peerCAFile string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.certFile, "tls-cert", "", "a PEM certificate (chain) for the client port, with --tls-key: the port then speaks TLS only, to\nJSON and RESP clients alike (default: plain TCP); SIGHUP rereads it")
	fs.StringVar(&f.keyFile, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&f.clientCAFile, "tls-client-ca", "", "PEM certificates of the authorities whose client certificates the TLS client port requires\n(default: none asked)")
	fs.StringVar(&f.peerCertFile, "peer-tls-cert", "", "a PEM certificate (chain) this node presents to its peers, with --peer-tls-key and --peer-tls-ca:\nevery peer connection is then TLS, each side's certificate checked against --peer-tls-ca, the acceptor's\nagainst the host it was dialled at (cluster and mesh; default: plain TCP); SIGHUP rereads it")
	fs.StringVar(&f.peerKeyFile, "peer-tls-key", "", "the PEM private key of --peer-tls-cert")
	fs.StringVar(&f.peerCAFile, "peer-tls-ca", "", "PEM certificates of the authorities that sign the nodes' --peer-tls-cert")
}

// serverTLS is what the TLS flags resolve to: the configs, and the key
// pairs that SIGHUP rereads.
type serverTLS struct {
	flags    tlsFlags
	client   *tlsfiles.Keypair // nil: the client port is plain TCP
	peer     *tlsfiles.Keypair // nil: the peer connections are plain TCP
	clientCf *tls.Config
	peerCf   *tls.Config
	warnings []string // said once the log is up
	// clientCA and peerCA are digests of the authorities' files as read
	// at start (zero: no such flag), for SIGHUP to tell that one changed.
	clientCA, peerCA [sha256.Size]byte
}

// resolve checks the flags together and reads the files. replHost is this
// node's replication host as its peers dial it ("" for a single node).
func (f tlsFlags) resolve(mode string, replHost string) (*serverTLS, error) {
	st := &serverTLS{flags: f}
	switch {
	case (f.certFile == "") != (f.keyFile == ""):
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	case f.clientCAFile != "" && f.certFile == "":
		return nil, errors.New("--tls-client-ca asks for client certificates over TLS: add --tls-cert and --tls-key")
	}
	if f.certFile != "" {
		kp, err := tlsfiles.LoadKeypair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert: %w", err)
		}
		// A certificate for client use only (cmd/certs --client) served
		// here made every client's handshake fail, while the server
		// said it served TLS (found by review). Refused now, and at
		// every SIGHUP.
		if err := kp.Require(serverUse); err != nil {
			return nil, fmt.Errorf("--tls-cert %w", err)
		}
		var clientCAs *x509.CertPool
		if f.clientCAFile != "" {
			if clientCAs, err = tlsfiles.LoadCA(f.clientCAFile); err != nil {
				return nil, fmt.Errorf("--tls-client-ca: %w", err)
			}
			st.clientCA, _ = fileDigest(f.clientCAFile)
		}
		st.client, st.clientCf = kp, tlsfiles.Server(kp, clientCAs)
		if w := kp.Expiring(); w != "" {
			st.warnings = append(st.warnings, "--tls-cert "+w)
		}
	}
	peerSet := 0
	for _, s := range []string{f.peerCertFile, f.peerKeyFile, f.peerCAFile} {
		if s != "" {
			peerSet++
		}
	}
	switch {
	case peerSet == 0:
		return st, nil
	case peerSet < 3:
		return nil, errors.New("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together: give all three or none")
	case mode == "single":
		return nil, errors.New("--peer-tls-cert is for the connections between the nodes of a cluster or mesh; a single node has none")
	}
	kp, err := tlsfiles.LoadKeypair(f.peerCertFile, f.peerKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--peer-tls-cert: %w", err)
	}
	ca, err := tlsfiles.LoadCA(f.peerCAFile)
	if err != nil {
		return nil, fmt.Errorf("--peer-tls-ca: %w", err)
	}
	st.peerCA, _ = fileDigest(f.peerCAFile)
	// What the peers would refuse is refused now, and at every SIGHUP.
	if err := kp.Require(func(c *tls.Certificate) error {
		// Each node both dials its peers and accepts them: its
		// certificate must do for both, from the authority they trust.
		if err := tlsfiles.VerifyChain(c, ca, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
			return fmt.Errorf("not one the other nodes would accept (signed by --peer-tls-ca, for both server and client use): %w", err)
		}
		// The peers check it against this node's replication host,
		// both when they dial it and when it dials them (realnet's
		// certNamesPeer).
		if replHost != "" {
			if err := c.Leaf.VerifyHostname(replHost); err != nil {
				return fmt.Errorf("it does not name %s, this node's replication host, which its peers check it against: %w (make one with go run ./cmd/certs --hosts %s)", replHost, err, replHost)
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("--peer-tls-cert %w", err)
	}
	if w := kp.Expiring(); w != "" {
		st.warnings = append(st.warnings, "--peer-tls-cert "+w)
	}
	st.peer, st.peerCf = kp, tlsfiles.Peer(kp, ca)
	return st, nil
}

// serverUse refuses a certificate whose extended key usages, if it names
// any, leave out server authentication: every client that checks it (Go's
// crypto/tls, redis-cli, Python's ssl) would refuse the handshake.
func serverUse(c *tls.Certificate) error {
	uses := c.Leaf.ExtKeyUsage
	if len(uses) == 0 || slices.Contains(uses, x509.ExtKeyUsageServerAuth) || slices.Contains(uses, x509.ExtKeyUsageAny) {
		return nil
	}
	return errors.New("is not for server use (its extended key usage leaves out server authentication: a client certificate?): every client would refuse it; make one with go run ./cmd/certs --hosts HOST")
}

// replHost is the host part of a replication address, the name that the
// peers check this node's certificate against; "" where that is not known
// here. A node on --host 0.0.0.0 (or ::, with --cluster-id or --mesh-id)
// is dialled at an address that only its peers' lists give: a start that
// required its certificate to name 0.0.0.0 refused a good one, and its
// hint (cmd/certs --hosts 0.0.0.0) made one that no peer accepts (found by
// review).
func replHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return host
}

// exposeExpiry adds a gauge per certificate of its end, in seconds since
// the epoch, so that an alert can fire weeks before it: the value moves
// when SIGHUP loads a new one.
func (st *serverTLS) exposeExpiry(set *metrics.Set) {
	for _, c := range []struct {
		name string
		kp   *tlsfiles.Keypair
	}{{"client", st.client}, {"peer", st.peer}} {
		if c.kp == nil {
			continue
		}
		kp := c.kp
		set.NewGauge(fmt.Sprintf(`dkv_tls_certificate_expiry_timestamp_seconds{port=%q}`, c.name), func() float64 {
			return float64(kp.Certificate().Leaf.NotAfter.Unix())
		})
	}
}

// reloadable reports whether SIGHUP has a certificate to reread.
func (st *serverTLS) reloadable() bool { return st.client != nil || st.peer != nil }

// caFileBytesMax bounds what fileDigest reads: an authorities' file is a
// few KiB (tlsfiles reads at most 1 MiB of one).
const caFileBytesMax = 1 << 20

// fileDigest is the SHA-256 of the first caFileBytesMax bytes of path.
func fileDigest(path string) ([sha256.Size]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, caFileBytesMax)); err != nil {
		return [sha256.Size]byte{}, err
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}

// reload rereads the certificates (on SIGHUP): new connections get the new
// ones; those open keep going. A pair that is no longer valid leaves the
// old one, and says why. The authorities' files are read at start only:
// one that changed since is warned about, so that an operator who changed
// it (to shut out the clients of an authority, say) and sent SIGHUP is not
// left believing that it took (found by review).
func (st *serverTLS) reload(logs *serverLog) {
	for _, ca := range []struct {
		flag, path string
		digest     [sha256.Size]byte
	}{{"--tls-client-ca", st.flags.clientCAFile, st.clientCA}, {"--peer-tls-ca", st.flags.peerCAFile, st.peerCA}} {
		if ca.path == "" {
			continue
		}
		if now, err := fileDigest(ca.path); err != nil || now != ca.digest {
			logs.Warn(fmt.Sprintf("SIGHUP: %s %s has changed since the server started, but the authorities are read at start only: the server still trusts those it read then; restart it to trust the new ones (docs/OPERATIONS.md, TLS)", ca.flag, ca.path), "event", "tls_reload")
		}
	}
	for _, r := range []struct {
		flag string
		kp   *tlsfiles.Keypair
	}{{"--tls-cert", st.client}, {"--peer-tls-cert", st.peer}} {
		if r.kp == nil {
			continue
		}
		if err := r.kp.Reload(); err != nil {
			logs.Error(fmt.Sprintf("SIGHUP: %s was not reloaded, the old certificate stays: %v", r.flag, err), "event", "tls_reload")
			continue
		}
		if w := r.kp.Expiring(); w != "" {
			logs.Warn(r.flag+" "+w, "event", "tls_reload")
		}
		leaf := r.kp.Certificate().Leaf
		logs.Info(fmt.Sprintf("SIGHUP: reloaded %s (serial %x, valid until %s) for new connections", r.flag, leaf.SerialNumber, leaf.NotAfter.UTC().Format("2006-01-02")), "event", "tls_reload")
	}
}

// certExpiryCheckEvery is how often a running node looks again at its
// certificates' ends: the check at start and at SIGHUP said nothing to a
// node that started with months left and ran on into its last 30 days
// (tlsfiles.ExpiryWarning), and then into expiry, when every new client
// or peer connection fails its handshake.
const certExpiryCheckEvery = 24 * time.Hour

// watchExpiry warns, every interval until stop is closed, of each
// certificate that ends within tlsfiles.ExpiryWarning (or has ended), by
// the host's clock.
func (st *serverTLS) watchExpiry(logs *serverLog, every time.Duration, stop <-chan struct{}) {
	if !st.reloadable() {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			st.warnExpiring(logs)
		}
	}
}

// warnExpiring writes a warning for each certificate that ends within
// tlsfiles.ExpiryWarning.
func (st *serverTLS) warnExpiring(logs *serverLog) {
	for _, c := range []struct {
		flag string
		kp   *tlsfiles.Keypair
	}{{"--tls-cert", st.client}, {"--peer-tls-cert", st.peer}} {
		if c.kp == nil {
			continue
		}
		if w := c.kp.Expiring(); w != "" {
			logs.Warn(c.flag+" "+w, "event", "tls_expiry")
		}
	}
}
