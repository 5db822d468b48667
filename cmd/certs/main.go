// Command certs makes the certificates that dkv's TLS flags take: an
// authority (ca.pem, ca-key.pem) on its first run in --dir, and a
// certificate for each run's --hosts, signed by it. A node's certificate
// serves both as a server's and as a client's, so one file pair does for a
// node's client port and its peer connections (--peer-tls-*). --client
// makes a client's instead, for a port started with --tls-client-ca: it
// names no host and serves no server, so that it cannot pose as a node.
//
//	go run ./cmd/certs                                   # certs/ca.pem, certs/node.pem, certs/node-key.pem for 127.0.0.1 and localhost
//	go run ./cmd/certs --name node1 --hosts 10.0.0.1,db1.example.com
//	go run ./cmd/certs --name app1 --client              # a client certificate from the same authority
//
// It is for trying TLS and for small deployments; an organisation with an
// authority of its own issues dkv's certificates from it instead
// (docs/OPERATIONS.md, "TLS"). ca-key.pem signs certificates that every
// node trusts: keep it off the nodes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"dkv/internal/certgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Limits on what a run makes.
const (
	hostsMax = 64
	daysMax  = 3650 * 3
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("certs", flag.ContinueOnError)
	fl.SetOutput(stderr)
	dir := fl.String("dir", "certs", "directory of the authority and the certificates; created if missing")
	name := fl.String("name", "node", "file name of the new certificate: NAME.pem and NAME-key.pem")
	hosts := fl.String("hosts", "127.0.0.1,localhost", "comma-separated DNS names and IP addresses the certificate is for: every\naddress clients and peers dial this node at")
	days := fl.Int("days", 365, "days the new certificate is valid")
	caDays := fl.Int("ca-days", 3650, "days a new authority is valid")
	clientOnly := fl.Bool("client", false, "a client's certificate (for --tls-client-ca): no host, no server use")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "certs: "+format+"\n", a...)
		return 2
	}
	if fl.NArg() > 0 {
		return usage("unexpected argument %q", fl.Arg(0))
	}
	// Not the authority's files' names: "ca-key" made ca-key.pem, the
	// authority's key, a certificate, and the key was lost (found by
	// review).
	if !namePattern.MatchString(*name) || *name == "ca" || *name == "ca-key" {
		return usage("--name %q: letters, digits, '.', '_' and '-', at most 64, and not \"ca\" or \"ca-key\" (the authority's files)", *name)
	}
	var hostList []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hostList = append(hostList, h)
		}
	}
	switch {
	case *clientOnly && hostsGiven(fl):
		return usage("--client makes a certificate that names no host: drop --hosts")
	case len(hostList) == 0:
		return usage("--hosts names no host")
	case len(hostList) > hostsMax:
		return usage("--hosts names %d hosts; at most %d", len(hostList), hostsMax)
	case badHost(hostList) != "":
		return usage("%s", badHost(hostList))
	case *days < 1 || *days > daysMax:
		return usage("--days must be in 1..%d, not %d", daysMax, *days)
	case *caDays < 1 || *caDays > daysMax:
		return usage("--ca-days must be in 1..%d, not %d", daysMax, *caDays)
	}
	certPath := filepath.Join(*dir, *name+".pem")
	keyPath := filepath.Join(*dir, *name+"-key.pem")
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err == nil {
			return usage("%s exists; remove it to make a new one, or choose another --name", p)
		}
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fmt.Fprintf(stderr, "certs: %v\n", err)
		return 1
	}
	caCert, caKey := filepath.Join(*dir, "ca.pem"), filepath.Join(*dir, "ca-key.pem")
	// A new authority only where there is none: with one of its two
	// files gone (the key moved off the machine, as the package doc
	// advises), a new one overwrote the other, the certificate every node
	// and client trusts, and signed a certificate none of them would
	// accept (found by review).
	switch caThere, keyThere := exists(caCert), exists(caKey); {
	case caThere && !keyThere:
		fmt.Fprintf(stderr, "certs: %s is there but not %s, the authority's key, which signs the certificates: put the key back (or give --dir a copy of both); a new authority would not be trusted by what trusts this one\n", caCert, caKey)
		return 1
	case keyThere && !caThere:
		fmt.Fprintf(stderr, "certs: %s is there but not %s, the authority's certificate: put it back (or remove the key to make a new authority)\n", caKey, caCert)
		return 1
	}
	ca, err := certgen.ReadCA(caCert, caKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if ca, err = certgen.NewCA("dkv CA", time.Duration(*caDays)*24*time.Hour); err == nil {
			err = ca.WriteFiles(caCert, caKey)
		}
		if err != nil {
			fmt.Fprintf(stderr, "certs: making the authority: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "made an authority valid until %s: %s (give it to clients and nodes), %s (keep it off the nodes)\n",
			ca.Cert.NotAfter.UTC().Format("2006-01-02"), caCert, caKey)
	case err != nil:
		fmt.Fprintf(stderr, "certs: the authority in %s: %v\n", *dir, err)
		return 1
	}
	now := time.Now()
	notAfter := now.Add(time.Duration(*days) * 24 * time.Hour)
	if notAfter.After(ca.Cert.NotAfter) {
		return usage("the authority ends at %s, before the %d days asked", ca.Cert.NotAfter.UTC().Format("2006-01-02"), *days)
	}
	var certPEM, keyPEM []byte
	if *clientOnly {
		certPEM, keyPEM, err = ca.IssueClient(*name, now.Add(-time.Hour), notAfter)
	} else {
		certPEM, keyPEM, err = ca.Issue(*name, hostList, now.Add(-time.Hour), notAfter)
	}
	if err == nil {
		err = certgen.WriteKeypair(certPath, keyPath, certPEM, keyPEM)
	}
	if err != nil {
		fmt.Fprintf(stderr, "certs: %v\n", err)
		return 1
	}
	what := "for " + strings.Join(hostList, ", ")
	if *clientOnly {
		what = "for a client"
	}
	fmt.Fprintf(stdout, "made %s and %s %s, valid until %s\n", certPath, keyPath, what, notAfter.UTC().Format("2006-01-02"))
	return 0
}

// dnsLabel is one label of a DNS name (RFC 1123: letters, digits and
// hyphens, not at either end, at most 63).
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// badHost says what is wrong with the first host of hosts that is neither
// an IP address nor a DNS name ("" if none is): a certificate that names
// "10.0.0.1:7001" or "https://db1" matches no host a client dials, and
// every handshake would fail with a puzzling error.
func badHost(hosts []string) string {
	for _, h := range hosts {
		if validHost(h) {
			continue
		}
		if host, port, err := net.SplitHostPort(h); err == nil && validHost(host) && port != "" && strings.Trim(port, "0123456789") == "" {
			return fmt.Sprintf("--hosts %q: give the host without its port (%s, not :%s): a certificate names hosts, not ports", h, host, port)
		}
		return fmt.Sprintf("--hosts %q is neither an IP address nor a DNS name (letters, digits, '-' and '.'; \"*.\" first for a wildcard)", h)
	}
	return ""
}

// validHost reports whether h is an IP address or a DNS name, which may
// start with a wildcard label ("*.") and end with the root's dot.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(h, "*."), "."), ".") {
		if !dnsLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// exists reports whether anything is at path (a broken link too: it is
// not to be written over either).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// hostsGiven reports whether --hosts was on the command line.
func hostsGiven(fl *flag.FlagSet) bool {
	given := false
	fl.Visit(func(f *flag.Flag) { given = given || f.Name == "hosts" })
	return given
}
