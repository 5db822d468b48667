package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// Flag misuse that used to be taken silently, or failed late without
// naming the flag, is refused at parsing (run exits 2 on any parseFlags
// error: TestUsageErrorsExit2). The cases call parseFlags, not run:
// before the fixes most of them parsed, and run would then have served
// for good.
func TestFlagMisuseIsRefused(t *testing.T) {
	cluster := func(more ...string) []string { return append(seedLine(0), more...) }
	mesh := func(more ...string) []string { return append(meshLine(0), more...) }
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		// Timeouts: a slip of the unit closed every connection at once.
		{"line timeout", []string{"--line-timeout", "999us"},
			"--line-timeout 999µs is too short: it must be at least 1ms (the default is 10s)"},
		{"idle timeout", []string{"--idle-timeout", "1ns"},
			"--idle-timeout 1ns is too short: it must be at least 100ms (the default is 5m0s)"},
		{"idle timeout just short", []string{"--idle-timeout", "99ms"},
			"--idle-timeout 99ms is too short"},

		// A list flag twice kept the last list; an empty entry was dropped.
		{"cluster list given twice", cluster("--secondary-repl-ports", "9103", "9104"),
			"--secondary-repl-ports is given twice: give it once"},
		{"cluster list given twice, other spelling", cluster("-other-kv-ports=9003,9004"),
			"--other-kv-ports is given twice"},
		{"cluster empty entry", []string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100",
			"--secondary-repl-ports=9101,,9102", "--other-kv-ports", "9001", "9002"},
			`--secondary-repl-ports "9101,,9102" has an empty entry (two commas in a row, or one at an end)`},
		{"cluster trailing comma", []string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100",
			"--secondary-repl-ports", "9101", "9102", "--other-kv-ports", "9001,", "9002"},
			`--other-kv-ports "9001," has an empty entry`},
		{"mesh empty entry", []string{"--mode", "mesh", "--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9101,,9102"},
			`--peer-repl-ports "9101,,9102" has an empty entry`},
		{"mesh list given twice", mesh("--peer-repl-ports", "9103", "9104"),
			"--peer-repl-ports is given twice"},

		// --rejoin is a cluster flag; a mesh node has no use for it.
		{"mesh with rejoin", mesh("--rejoin"),
			"--mode mesh does not take the cluster flags (--rejoin)"},
		{"rejoin with mesh flags", []string{"--node-id", "0", "--kv-port", "9000", "--repl-port", "9100", "--peer-repl-ports", "9101", "9102", "--rejoin"},
			"--peer-repl-ports are mesh flags and --rejoin cluster flags: give one mode's flags"},

		// --metrics-addr on a node's own port failed only after recovery,
		// without naming the flag; on a peer's, the node dialled its own
		// HTTP server as that peer.
		{"metrics on a peer's repl port", cluster("--metrics-addr", "127.0.0.1:9102"),
			"--metrics-addr 127.0.0.1:9102 clashes with node 2's replication port (in --secondary-repl-ports), 127.0.0.1:9102: give --metrics-addr a port of its own"},
		{"metrics on a peer's kv port, every interface", cluster("--metrics-addr", "0.0.0.0:9001"),
			"--metrics-addr 0.0.0.0:9001 clashes with node 1's client port (in --other-kv-ports), 127.0.0.1:9001"},
		{"metrics on this node's repl port", cluster("--metrics-addr", "127.0.0.1:9100"),
			"--metrics-addr 127.0.0.1:9100 clashes with this node's --repl-port"},
		{"metrics on this node's port", []string{"--node-id", "0", "--port", "9000", "--repl-port", "9100",
			"--secondary-repl-ports", "9101", "9102", "--other-kv-ports", "9001", "9002", "--metrics-addr", "127.0.0.1:9000"},
			"--metrics-addr 127.0.0.1:9000 clashes with this node's --port"},
		{"mesh metrics on a peer's repl port", mesh("--metrics-addr", "127.0.0.1:9101"),
			"--metrics-addr 127.0.0.1:9101 clashes with node 1's replication port (in --peer-repl-ports)"},
		{"mesh metrics on this node's kv port", mesh("--metrics-addr", "localhost:9000", "--host", "localhost"),
			"--metrics-addr localhost:9000 clashes with this node's --kv-port, localhost:9000"},
		{"single metrics on the port", []string{"--port", "19980", "--metrics-addr", "127.0.0.1:19980"},
			"--metrics-addr 127.0.0.1:19980 clashes with --port, 127.0.0.1:19980"},

		// The indexes return at most 1,000 hits: a larger --max-hits let
		// a search ask for more, to be refused as a bad_request.
		{"max hits over the indexes' limit", []string{"--enable-indexes", "--max-hits", "1001"},
			"--max-hits 1001 is over 1000, the most hits the indexes return"},
		// And queries of at most 1 MiB: a longer --max-query-bytes failed
		// at start naming textidx's option, not the flag (found by review).
		{"max query bytes over the index's limit", []string{"--enable-indexes", "--max-query-bytes", "1048577"},
			"--max-query-bytes 1048577 is over 1048576, the longest query the full-text index takes"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v: got %v; want %q", tc.name, tc.args, err, tc.want)
		}
	}
}

// A --metrics-addr is refused only when a node's own port, or a port on
// this node's host, is the same address: another machine's port of the
// same number is no clash, nor is another port.
func TestMetricsAddrBesideTheNodesPorts(t *testing.T) {
	remote := []string{"--host", "10.0.0.1", "--node-id", "0", "--kv-port", "9000", "--repl-port", "9100",
		"--secondary-repl-ports", "10.0.0.2:9100", "10.0.0.3:9100", "--other-kv-ports", "10.0.0.2:9000", "10.0.0.3:9000"}
	for _, args := range [][]string{
		append(seedLine(0), "--metrics-addr", "127.0.0.1:9200"),
		append(seedLine(0), "--metrics-addr", "127.0.0.2:9101"),
		append(seedLine(0), "--metrics-addr", "127.0.0.1:0"),
		{"--port", "9999", "--metrics-addr", "127.0.0.1:9100"},
		{"--port", "0", "--metrics-addr", "127.0.0.1:9999"},
		append(slices.Clone(remote), "--metrics-addr", "10.0.0.1:9200"),
		// Each machine's nodes on the same port numbers; the metrics
		// on every interface of this one take none of them.
		append(slices.Clone(remote), "--metrics-addr", ":9200"),
	} {
		if _, err := parseFlags(args, io.Discard); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, err := parseFlags(append(slices.Clone(remote), "--metrics-addr", ":9100"), io.Discard); err == nil || !strings.Contains(err.Error(), "this node's --repl-port") {
		t.Errorf("metrics on every interface, on this node's --repl-port: %v", err)
	}
}
