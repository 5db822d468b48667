package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"dkv/internal/certgen"
	"dkv/internal/syncbuf"
)

// A running node warns again and again of a certificate that ends within
// 30 days, not only at start and at SIGHUP: one that started with months
// left ran into its last days, and into expiry, without a word. (The
// check's interval is a day; here, 10 ms.)
func TestCertificateExpiryIsCheckedWhileRunning(t *testing.T) {
	f := writeCerts(t) // valid for an hour
	st, err := tlsFlags{certFile: f.Cert, keyFile: f.Key}.resolve("single", "")
	if err != nil {
		t.Fatal(err)
	}
	var out syncbuf.Buffer
	logs := newServerLog(&out, logText, slog.LevelInfo)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.watchExpiry(logs, 10*time.Millisecond, stop)
	}()
	const warning = "WARN --tls-cert " // + path + ": the certificate expires in 1h0m0s
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), warning) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no repeated expiry warning within 10 s; log:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done
	if s := out.String(); !strings.Contains(s, f.Cert+": the certificate expires in 1h0m0s") || !strings.Contains(s, "event=tls_expiry") {
		t.Errorf("log:\n%s\nwant the certificate's file, the time left and the event", s)
	}

	// A certificate far from its end is not warned about.
	far, err := certgen.Write(t.TempDir(), []string{"127.0.0.1"}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = (tlsFlags{certFile: far.Cert, keyFile: far.Key}.resolve("single", "")); err != nil {
		t.Fatal(err)
	}
	var quiet syncbuf.Buffer
	st.warnExpiring(newServerLog(&quiet, logText, slog.LevelInfo))
	if s := quiet.String(); s != "" {
		t.Errorf("a certificate valid for a year: %s", s)
	}
}
