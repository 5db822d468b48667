package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Keys that expire, through the real redis-cli against a real server
// process: SET's expiry options, SETEX, PSETEX, TTL and PTTL, EXPIRE,
// PEXPIRE and PERSIST, and a key that goes.
func TestRedisCLIExpiry(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	run := redisCLIOn(t, cli, p)
	between := func(lo, hi int, args ...string) {
		t.Helper()
		out := run(args...)
		if n, err := strconv.Atoi(out); err != nil || n < lo || n > hi {
			t.Errorf("redis-cli %s = %q, want %d..%d", strings.Join(args, " "), out, lo, hi)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "k", "v", "ex", "100"}, "OK"},
		{[]string{"setex", "s", "100", "v"}, "OK"},
		{[]string{"psetex", "ps", "100000", "v"}, "OK"},
		{[]string{"set", "lease", "w1", "nx", "px", "100000"}, "OK"},
		{[]string{"set", "lease", "w2", "px", "100000", "nx"}, ""},
		{[]string{"get", "lease"}, "w1"},
		{[]string{"set", "plain", "v"}, "OK"},
		{[]string{"ttl", "plain"}, "-1"},
		{[]string{"pttl", "plain"}, "-1"},
		{[]string{"ttl", "missing"}, "-2"},
		{[]string{"pttl", "missing"}, "-2"},
		{[]string{"set", "x", "v", "ex", "0"}, "ERR invalid expire time in 'set' command"},
		{[]string{"set", "x", "v", "ex", "10", "px", "10"}, "ERR syntax error"},
		{[]string{"set", "x", "v", "ex", "ten"}, "ERR value is not an integer or out of range"},
		{[]string{"setex", "x", "-1", "v"}, "ERR invalid expire time in 'setex' command"},
		{[]string{"set", "x", "v", "keepttl"}, "ERR dkv does not support SET option 'KEEPTTL': every SET replaces the key's expiry (with EX, PX, EXAT or PXAT, or none); SET takes a key, a value, NX or XX, and one of EX seconds, PX milliseconds, EXAT unix-time-seconds, PXAT unix-time-milliseconds"},
		{[]string{"set", "exp", "v"}, "OK"},
		{[]string{"expire", "exp", "100"}, "1"},
		{[]string{"expire", "missing", "100"}, "0"},
		{[]string{"expire", "exp", "100", "gt"}, "ERR dkv does not serve EXPIRE's NX, XX, GT and LT options: read the time left with PTTL key, then send EXPIRE key seconds"},
		{[]string{"persist", "exp"}, "1"},
		{[]string{"ttl", "exp"}, "-1"},
		{[]string{"persist", "exp"}, "0"},
		{[]string{"pexpire", "exp", "100000"}, "1"},
		{[]string{"get", "exp"}, "v"},
	} {
		if got := run(tc.args...); got != tc.want {
			t.Errorf("redis-cli %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	between(90, 100, "ttl", "k")
	between(90, 100, "ttl", "s")
	between(90_000, 100_000, "pttl", "ps")
	between(90_000, 100_000, "pttl", "lease")
	between(90_000, 100_000, "pttl", "exp")
	if info := run("info", "keyspace"); !strings.Contains(info, "db0:keys=6,expires=5,avg_ttl=0") {
		t.Errorf("redis-cli info keyspace = %q", info)
	}

	// A key set with PX 50 goes.
	if got := run("set", "short", "v", "px", "50"); got != "OK" {
		t.Fatalf("redis-cli set short v px 50 = %q", got)
	}
	for deadline := time.Now().Add(5 * time.Second); run("get", "short") != ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a key set with PX 50 still there after 5 s")
		}
	}
	if got := run("ttl", "short"); got != "-2" {
		t.Errorf("redis-cli ttl of an expired key = %q, want -2", got)
	}
	// The same deadline over JSON.
	resps := roundTrip(t, s.addr, `{"op":"ttl","key":"s"}`)
	if resps[0].TTLMs == nil || *resps[0].TTLMs > 100_000 || *resps[0].TTLMs < 90_000 {
		t.Errorf("JSON ttl of a key redis-cli set with SETEX: %+v", resps[0])
	}
}
