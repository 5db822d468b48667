package main

import (
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"dkv/core"
	"dkv/realnet"
)

// authSecretBytesMin is the shortest password --auth-file may hold: the
// port answers a guess in microseconds, so a short one falls to guessing
// (a connection closes after three wrong ones, and a new one is cheap).
const authSecretBytesMin = 16

// readAuthFile reads the client port's password from path: the file's
// content, one trailing line break dropped. It is a file, not a flag, so
// that it shows in no process listing. warning is non-empty when the file
// is readable by other users.
func readAuthFile(path string) (secret, warning string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("--auth-file: %w", err)
	}
	defer f.Close()
	// Read one byte past the most a secret and its line break may take,
	// to tell a file that is too long.
	b, err := io.ReadAll(io.LimitReader(f, core.AuthSecretBytesMax+3))
	if err != nil {
		return "", "", fmt.Errorf("--auth-file %s: %w", path, err)
	}
	s := core.PasswordFromFile(b)
	switch {
	case len(s) > core.AuthSecretBytesMax:
		return "", "", fmt.Errorf("--auth-file %s: the password is over %d bytes", path, core.AuthSecretBytesMax)
	case len(s) < authSecretBytesMin:
		return "", "", fmt.Errorf("--auth-file %s: the password is %d bytes; it must be at least %d (e.g. head -c 32 /dev/urandom | base64 > %s)", path, len(s), authSecretBytesMin, path)
	case !utf8.ValidString(s):
		return "", "", fmt.Errorf("--auth-file %s: the password is not UTF-8 text", path)
	}
	for i, r := range s {
		if r < ' ' || r == 0x7f {
			return "", "", fmt.Errorf("--auth-file %s: the password holds a control character (%q at byte %d); one line of text is what clients can send", path, r, i)
		}
	}
	if info, err := f.Stat(); err == nil && info.Mode().Perm()&0o077 != 0 {
		warning = fmt.Sprintf("--auth-file %s can be read by other users (mode %04o): chmod 600 it", path, info.Mode().Perm())
	}
	return s, warning, nil
}

// reloadAuth rereads --auth-file (on SIGHUP) and makes its password the
// one that new client connections and new peer connections must prove.
// Connections that have proved the old one keep going. A file that cannot
// be read or is not a valid password leaves the old one, and says why.
func reloadAuth(o *options, host *realnet.Host, peers *realnet.Peers, logs *serverLog) {
	secret, warning, err := readAuthFile(o.authFile)
	if err == nil {
		err = host.SetAuthSecret(secret)
	}
	if err != nil {
		logs.Error(fmt.Sprintf("SIGHUP: the password was not reloaded, the old one stays: %v", err), "event", "auth_file")
		return
	}
	if peers != nil {
		peers.SetSecret(secret)
	}
	if warning != "" {
		logs.Warn(warning, "event", "auth_file")
	}
	logs.Info(fmt.Sprintf("SIGHUP: reloaded the password of --auth-file %s: new connections must prove it; those that proved the old one keep going", o.authFile), "event", "auth_file")
}
