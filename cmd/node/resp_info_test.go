package main

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The real redis-cli --stat against a real server: every column a number
// (before INFO had its clients, memory and stats sections, it printed the
// least int64 in all but keys), the keys counted, and the requests
// growing as it polls.
func TestRedisCLIStat(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	if out := tool(t, 30*time.Second, cli, "-p", p, "mset", "a", "1", "b", "2", "c", "3"); strings.TrimSpace(out) != "OK" {
		t.Fatalf("redis-cli mset: %q", out)
	}
	// It polls until killed; its output is a pipe, so it comes in blocks
	// (a line every 10 ms fills one in well under a second).
	cmd := exec.Command(cli, "-p", p, "--stat", "-i", "0.01")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var rows [][]string
	timeout := time.After(30 * time.Second)
	for len(rows) < 5 {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("redis-cli --stat ended after %d rows", len(rows))
			}
			f := strings.Fields(line)
			if len(f) == 0 || f[0] == "keys" || strings.HasPrefix(f[0], "---") {
				continue // its headers
			}
			if len(f) != 6 && len(f) != 7 { // the child column is empty or one word
				t.Fatalf("redis-cli --stat row %q: not keys, mem, clients, blocked, requests (+delta), connections", line)
			}
			rows = append(rows, f)
		case <-timeout:
			t.Fatalf("redis-cli --stat gave %d rows in 30 s", len(rows))
		}
	}
	for _, f := range rows {
		// keys, mem, clients, blocked, requests (+delta), connections
		if f[0] != "3" || strings.Contains(strings.Join(f, " "), "-9223372036854775808") || f[2] != "1" || f[3] != "0" {
			t.Fatalf("redis-cli --stat row %q: want 3 keys, a client, none blocked, and no missing field", f)
		}
		if !strings.HasSuffix(f[1], "M") && !strings.HasSuffix(f[1], "K") {
			t.Fatalf("redis-cli --stat row %q: memory %q", f, f[1])
		}
	}
	first, err1 := strconv.Atoi(rows[0][4])
	last, err2 := strconv.Atoi(rows[len(rows)-1][4])
	if err1 != nil || err2 != nil || last <= first {
		t.Fatalf("requests did not grow while it polled: %s, then %s", rows[0][4], rows[len(rows)-1][4])
	}
}

// The real redis-cli --memkeys: SCAN, then each key's TYPE and MEMORY
// USAGE, which it sums by type.
func TestRedisCLIMemKeys(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	if out := tool(t, 30*time.Second, cli, "-p", p, "mset", "a", "1", "big", strings.Repeat("x", 1000), "user:1", "hello"); strings.TrimSpace(out) != "OK" {
		t.Fatalf("redis-cli mset: %q", out)
	}
	out := tool(t, 30*time.Second, cli, "-p", p, "--memkeys")
	for _, want := range []string{`Biggest string found '"big"' has 1048 bytes`, "3 strings with 1120 bytes (100.00% of keys"} {
		if !strings.Contains(out, want) {
			t.Errorf("redis-cli --memkeys: no %q in:\n%s", want, out)
		}
	}
}
