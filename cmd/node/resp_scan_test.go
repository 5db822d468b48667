package main

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// scanTestKeys are 150 keys under "user:" and 100 under "order:", in key
// order.
func scanTestKeys() (orders, users []string) {
	for i := range 100 {
		orders = append(orders, fmt.Sprintf("order:%03d", i))
	}
	for i := range 150 {
		users = append(users, fmt.Sprintf("user:%03d", i))
	}
	return orders, users
}

// SCAN and KEYS through the real redis-cli against a real server process:
// --scan walks every key (25 pages of Redis's default COUNT 10), --scan
// --pattern the keys that match, keys answers them at once; and with
// --max-bulk-entries below the keys, keys refuses while --scan still walks
// them and a COUNT past it is taken as it.
func TestRedisCLIScan(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	run := redisCLIOn(t, cli, p)
	orders, users := scanTestKeys()
	all := append(slices.Clone(orders), users...)
	cmd := exec.Command(cli, "-p", p)
	var script strings.Builder
	for _, k := range all {
		script.WriteString("set " + k + " v\n")
	}
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil || strings.Count(string(out), "OK\n") != len(all) {
		t.Fatalf("redis-cli setting %d keys: %v; output:\n%.300s", len(all), err, out)
	}
	lines := func(out string) []string {
		if out == "" {
			return nil
		}
		return strings.Split(out, "\n")
	}
	var under1 []string // the keys that match *:1?5
	for _, k := range all {
		if len(k) >= 3 && k[len(k)-3] == '1' && k[len(k)-1] == '5' {
			under1 = append(under1, k)
		}
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--scan"}, all},
		{[]string{"--scan", "--pattern", "user:*"}, users},
		{[]string{"--scan", "--pattern", "order:0[0-4]?"}, orders[:50]},
		{[]string{"--scan", "--pattern", "*:1?5"}, under1},
		{[]string{"--scan", "--pattern", "nothing*"}, nil},
		{[]string{"keys", "*"}, all},
		{[]string{"keys", "order:*"}, orders},
		{[]string{"keys", "*:1?5"}, under1},
	} {
		if got := lines(run(tc.args...)); !slices.Equal(got, tc.want) {
			t.Errorf("redis-cli %s: %d keys, want %d:\n%q", strings.Join(tc.args, " "), len(got), len(tc.want), got)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scan", "0", "count", "0"}, "ERR syntax error"},
		{[]string{"scan", "12345"}, "ERR dkv's SCAN cursor 12345 is unknown or expired (a cursor lasts 10 minutes idle, and goes once its walk has ended or the table is full): start the walk again from 0"},
		{[]string{"scan", "0", "type", "hash"}, "0"},
		{[]string{"scan", "0", "match", "user:14*", "count", "1000"}, "0\nuser:140\nuser:141\nuser:142\nuser:143\nuser:144\nuser:145\nuser:146\nuser:147\nuser:148\nuser:149"},
	} {
		if got := run(tc.args...); got != tc.want {
			t.Errorf("redis-cli %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}

	// KEYS reads one page at most; SCAN walks past it.
	small := start(t, t.TempDir(), "--max-bulk-entries", "100")
	sp := port(t, small.addr)
	cmd = exec.Command(cli, "-p", sp)
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli setting keys: %v; output:\n%.300s", err, out)
	}
	runSmall := redisCLIOn(t, cli, sp)
	if got := runSmall("keys", "*"); got != "ERR KEYS would read more than 100 keys (--max-bulk-entries): walk them with SCAN" {
		t.Errorf("redis-cli keys * past --max-bulk-entries = %q", got)
	}
	if got := lines(runSmall("keys", "order:*")); !slices.Equal(got, orders) {
		t.Errorf("redis-cli keys order:* (100 keys, --max-bulk-entries 100): %d keys", len(got))
	}
	if got := lines(runSmall("--scan")); !slices.Equal(got, all) {
		t.Errorf("redis-cli --scan with --max-bulk-entries 100: %d keys", len(got))
	}
	if got := runSmall("scan", "0", "count", "1000"); len(lines(got)) != 101 {
		t.Errorf("redis-cli scan 0 count 1000 with --max-bulk-entries 100: %d lines, want a cursor and 100 keys", len(lines(got)))
	}
}

// go-redis's Scan, ScanIterator and Keys against a real server process:
// the iterator collects each key exactly once, whichever pooled connection
// each page goes on.
func TestGoRedisScan(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: s.addr, DialTimeout: 5 * time.Second, PoolSize: 4})
	t.Cleanup(func() { rc.Close() })
	orders, users := scanTestKeys()
	var more []string
	for i := range 50 {
		more = append(more, fmt.Sprintf("zz:%02d", i))
	}
	all := append(append(slices.Clone(orders), users...), more...)
	pairs := make([]any, 0, 2*len(all))
	for _, k := range all {
		pairs = append(pairs, k, "v")
	}
	if err := rc.MSet(ctx, pairs...).Err(); err != nil {
		t.Fatal(err)
	}

	collect := func(match string, count int64) []string {
		t.Helper()
		var keys []string
		it := rc.Scan(ctx, 0, match, count).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if err := it.Err(); err != nil {
			t.Fatalf("ScanIterator MATCH %q COUNT %d: %v", match, count, err)
		}
		return keys
	}
	for _, tc := range []struct {
		match string
		count int64
		want  []string
	}{
		{"", 0, all},
		{"", 7, all},
		{"*", 1000, all},
		{"user:*", 9, users},
		{"*:0?", 10, more[:10]},
	} {
		if got := collect(tc.match, tc.count); !slices.Equal(got, tc.want) {
			t.Errorf("ScanIterator MATCH %q COUNT %d: %d keys, want %d each once, in order", tc.match, tc.count, len(got), len(tc.want))
		}
	}
	// Pages on connections of their own, in parallel with other walks.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			got := collect("", 5)
			if !slices.Equal(got, all) {
				errs <- fmt.Errorf("a walk beside others: %d keys, want %d", len(got), len(all))
				return
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	keys, cursor, err := rc.Scan(ctx, 0, "order:*", 40).Result()
	if err != nil || cursor == 0 || !slices.Equal(keys, orders[:40]) {
		t.Errorf("SCAN 0 MATCH order:* COUNT 40: %d keys, cursor %d, %v", len(keys), cursor, err)
	}
	if keys, cursor, err = rc.Scan(ctx, cursor, "order:*", 100).Result(); err != nil || cursor != 0 || !slices.Equal(keys, orders[40:]) {
		t.Errorf("the next page, COUNT 100: %d keys, cursor %d, %v", len(keys), cursor, err)
	}
	if keys, cursor, err := rc.ScanType(ctx, 0, "", 1000, "string").Result(); err != nil || cursor != 0 || !slices.Equal(keys, all) {
		t.Errorf("SCAN TYPE string: %d keys, cursor %d, %v", len(keys), cursor, err)
	}
	if keys, cursor, err := rc.ScanType(ctx, 0, "", 1000, "hash").Result(); err != nil || cursor != 0 || len(keys) != 0 {
		t.Errorf("SCAN TYPE hash: %q, cursor %d, %v", keys, cursor, err)
	}

	if got, err := rc.Keys(ctx, "*").Result(); err != nil || !slices.Equal(got, all) {
		t.Errorf("KEYS *: %d keys, %v", len(got), err)
	}
	if got, err := rc.Keys(ctx, "user:1[0-1]?").Result(); err != nil || !slices.Equal(got, users[100:120]) {
		t.Errorf("KEYS user:1[0-1]?: %q, %v", got, err)
	}
	if _, _, err := rc.Scan(ctx, 42, "", 0).Result(); err == nil || !strings.Contains(err.Error(), "start the walk again from 0") {
		t.Errorf("SCAN of an unknown cursor: %v", err)
	}
}

// redis-cli --bigkeys walks the keys with SCAN, asks each one's TYPE and
// then its STRLEN: against a real server it finds the biggest string and
// counts every key as a string.
func TestRedisCLIBigKeys(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	out := tool(t, 30*time.Second, cli, "-p", p, "mset", "a", "1", "bb", "22", "big", strings.Repeat("x", 1000), "user:1", "hello")
	if strings.TrimSpace(out) != "OK" {
		t.Fatalf("redis-cli mset: %q", out)
	}
	out = tool(t, 30*time.Second, cli, "-p", p, "--bigkeys")
	for _, want := range []string{`Biggest string found '"big"' has 1000 bytes`, "4 strings with 1008 bytes (100.00% of keys"} {
		if !strings.Contains(out, want) {
			t.Errorf("redis-cli --bigkeys: no %q in:\n%s", want, out)
		}
	}
}
