package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A --data-dir that is a symbolic link to nothing is named as such; it
// used to fail as "mkdir DIR: file exists", true of the link but no help.
// The same for a link further up the path.
func TestDanglingDataDirLinkIsNamed(t *testing.T) {
	tmp := t.TempDir()
	link := filepath.Join(tmp, "data")
	target := filepath.Join(tmp, "gone")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{link, filepath.Join(link, "node0")} {
		var stderr bytes.Buffer
		c := run([]string{"--port", "0", "--data-dir", dir}, &stderr)
		want := link + " is a symbolic link to " + target + ", which does not exist"
		if c != exitFatal || !strings.Contains(stderr.String(), want) {
			t.Errorf("--data-dir %s: exit %d, stderr %q; want %d and %q", dir, c, stderr.String(), exitFatal, want)
		}
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("the link's target was created: %v", err)
	}
}

// A --host that does not resolve, or is no address of this machine, is
// refused before recovery even with --port 0, which the trial bind used
// to skip: the server replayed its whole log first.
func TestBadHostFailsBeforeRecovery(t *testing.T) {
	for _, host := range []string{"nosuchhost.invalid", "192.0.2.1"} { // RFC 6761, RFC 5737: never this machine's
		var stderr bytes.Buffer
		c := run([]string{"--host", host, "--port", "0", "--data-dir", t.TempDir()}, &stderr)
		log := stderr.String()
		if c != exitFatal || !strings.Contains(log, "dkv: cannot listen:") || !strings.Contains(log, host) || strings.Contains(log, "recovered") {
			t.Errorf("--host %s: exit %d, stderr %q; want %d, cannot listen naming the host, and no recovery", host, c, log, exitFatal)
		}
	}
}
