package main

import (
	"strings"
	"testing"

	"dkv/core"
	"dkv/internal/servetest"
	"dkv/realnet"
)

// Every command that takes a KEY takes "--" before it, as set, delete
// and incr did: get, ttl, expire, persist, bulk-get and bulk-delete said
// "takes 1 argument(s)" of kv get -- -k.
func TestDashesBeforeKeyForEveryCommand(t *testing.T) {
	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	run := kvAt(t, addr)
	says := saysAt(t, run)
	says("OK", "set", "--", "-k", "v")
	says("v", "get", "--", "-k")
	says("no expiry", "ttl", "--", "-k")
	says("OK", "expire", "--", "-k", "1h")
	says("OK (deadline removed)", "persist", "--", "-k")
	says(`{"key":"-k","value":"v"}`, "bulk-get", "--", "-k")
	says("OK", "set", "--", "--", "dashes")
	says("dashes", "get", "--", "--") // a key named "--"
	says("deleted 1", "bulk-delete", "--", "-k")
	says("OK", "delete", "--", "--")
	says("7", "incr", "--", "-n", "7")
}

// A flag after KEY was meant as a flag: kv set k --ttl stored the value
// "--ttl". It is refused, saying where flags go; after "--" it is taken
// as written.
func TestFlagAfterKeyIsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "k", "--ttl"}, `set: "--ttl" after KEY is the flag --ttl, which goes before KEY: kv set [--ttl D]`},
		{[]string{"set", "k", "-if-absent"}, `"-if-absent" after KEY is the flag --if-absent`},
		{[]string{"set", "k", "--ttl=30s"}, `"--ttl=30s" after KEY is the flag --ttl`},
		{[]string{"set", "k", "v", "--ttl", "30s"}, `"--ttl" after KEY is the flag --ttl`},
		{[]string{"delete", "k", "--if-value", "old"}, `delete: "--if-value" after KEY is the flag --if-value, which goes before KEY: kv delete [--if-value OLD] KEY`},
		// "--" here is --if-value's OLD, not the end of the flags.
		{[]string{"set", "--if-value", "--", "k", "--ttl", "v"}, `"--ttl" after KEY is the flag --ttl`},
	} {
		code, stdout, stderr := kv(t, append([]string{"--addr", "127.0.0.1:1"}, tc.args...)...)
		// Where the flag stands in VALUE's place, how to store it as one.
		asValue := tc.args[0] == "set" && len(tc.args) == 3
		hint := strings.Contains(stderr, "put -- before KEY: kv set -- KEY "+tc.args[2]) == asValue
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) || !hint {
			t.Errorf("kv %q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, stdout, stderr, exitUsage, tc.want)
		}
	}

	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	says := saysAt(t, kvAt(t, addr))
	says("OK", "set", "--", "k", "--ttl")
	says("--ttl", "get", "k")
	says("OK", "set", "--if-absent", "--", "k2", "--if-absent")
	says("--if-absent", "get", "k2")
	says("OK", "set", "--ttl", "1h", "--", "k3", "-ttl")
	says("-ttl", "get", "k3")
	says("OK", "set", "k4", "--unknown-is-a-value")
	says("--unknown-is-a-value", "get", "k4")
}

// One of kv's own flags after the command (kv get hello --port 9001) is a
// usage error that names it and says where it goes; it said only that
// get takes 1 argument. A command whose arguments are right takes it as
// an argument: after "--", or as VALUE.
func TestKVFlagAfterTheCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "k", "--port", "9001"}, "get takes 1 argument(s): kv get KEY (--port is a flag of kv's, which goes before the command: kv --port … get …)"},
		{[]string{"set", "k", "v", "--addrs=a:1,b:2"}, "(--addrs is a flag of kv's, which goes before the command: kv --addrs … set …)"},
		{[]string{"scan", "--timeout", "30s"}, "(--timeout is a flag of kv's"},
		{[]string{"bulk-set", "k", "v", "-tls"}, "(--tls is a flag of kv's"},
	} {
		code, stdout, stderr := kv(t, append([]string{"--addr", "127.0.0.1:1"}, tc.args...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("kv %q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, stdout, stderr, exitUsage, tc.want)
		}
	}

	addr := servetest.Serve(t, core.NewSingleNode(core.DefaultSingleConfig()), realnet.DefaultHostConfig())
	says := saysAt(t, kvAt(t, addr))
	says("OK", "set", "k", "--port")
	says("--port", "get", "k")
	says("OK", "set", "--", "--addr", "v")
	says("v", "get", "--", "--addr")
}
