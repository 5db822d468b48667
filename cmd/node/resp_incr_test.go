package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counters through the real redis-cli against a real server process: INCR,
// DECR, INCRBY and DECRBY, each of Redis's errors, a deadline kept, and
// the counter a JSON get reads.
func TestRedisCLIIncr(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := start(t, t.TempDir())
	p := port(t, s.addr)
	run := redisCLIOn(t, cli, p)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"incr", "n"}, "1"},
		{[]string{"decr", "n"}, "0"},
		{[]string{"decr", "n"}, "-1"},
		{[]string{"incrby", "n", "100"}, "99"},
		{[]string{"decrby", "n", "58"}, "41"},
		{[]string{"incrby", "n", "-41"}, "0"},
		{[]string{"get", "n"}, "0"},
		{[]string{"incrby", "n", "x"}, "ERR value is not an integer or out of range"},
		{[]string{"decrby", "n", "1.5"}, "ERR value is not an integer or out of range"},
		{[]string{"set", "w", "hello"}, "OK"},
		{[]string{"incr", "w"}, "ERR value is not an integer or out of range"},
		{[]string{"get", "w"}, "hello"},
		{[]string{"set", "max", "9223372036854775807"}, "OK"},
		{[]string{"incr", "max"}, "ERR increment or decrement would overflow"},
		{[]string{"decrby", "n", "-9223372036854775808"}, "ERR decrement would overflow"},
		{[]string{"incrby", "n"}, "ERR wrong number of arguments for 'incrby' command"},
		{[]string{"decr"}, "ERR wrong number of arguments for 'decr' command"},
		{[]string{"incrbyfloat", "n", "1.5"}, "ERR dkv does not serve INCRBYFLOAT: its counters are integers (a decimal int64); add a whole number with INCRBY key n or DECRBY key n"},
		{[]string{"set", "k", "41", "ex", "100"}, "OK"},
		{[]string{"incr", "k"}, "42"},
		{[]string{"decrby", "k", "50"}, "-8"},
	} {
		if got := run(tc.args...); got != tc.want {
			t.Errorf("redis-cli %s = %q, want %q", strings.Join(tc.args, " "), got, tc.want)
		}
	}
	if ttl, err := strconv.Atoi(run("ttl", "k")); err != nil || ttl < 90 || ttl > 100 {
		t.Errorf("redis-cli ttl of a counter set with EX 100, then incremented: %d, %v", ttl, err)
	}
	// A script's increments, read from standard input on one connection.
	cmd := exec.Command(cli, "-p", p)
	cmd.Stdin = strings.NewReader(strings.Repeat("incr script\n", 100) + "get script\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.HasSuffix(string(out), "\n99\n100\n100\n") {
		t.Errorf("redis-cli running 100 incrs from stdin: %v; output ends %q", err, out[max(0, len(out)-20):])
	}
	// The same counter over JSON.
	resps := roundTrip(t, s.addr, `{"op":"get","key":"k"}`, `{"op":"incr","key":"k","delta":-2}`)
	if resps[0].Value == nil || *resps[0].Value != "-8" || resps[1].Value == nil || *resps[1].Value != "-10" {
		t.Errorf("JSON get and incr of a counter redis-cli wrote: %+v, %+v", resps[0], resps[1])
	}
	if got := run("get", "k"); got != "-10" {
		t.Errorf("redis-cli get of a counter a JSON incr wrote = %q", got)
	}
}

// Counters through go-redis against a real server process: Incr, Decr,
// IncrBy and DecrBy answer the new value; increments from several
// goroutines, over connections of their own and pipelined, all count, and
// each is answered a number of its own (no two read the same old value).
func TestGoRedisIncr(t *testing.T) {
	s := start(t, t.TempDir())
	ctx := context.Background()
	// No retries: a retried INCR could count twice, and every reply is
	// checked.
	rc := redis.NewClient(&redis.Options{Addr: s.addr, DialTimeout: 5 * time.Second, PoolSize: 8, MaxRetries: -1})
	t.Cleanup(func() { rc.Close() })
	for _, tc := range []struct {
		what string
		cmd  *redis.IntCmd
		want int64
	}{
		{"INCR", rc.Incr(ctx, "n"), 1},
		{"INCRBY 10", rc.IncrBy(ctx, "n", 10), 11},
		{"DECR", rc.Decr(ctx, "n"), 10},
		{"DECRBY 15", rc.DecrBy(ctx, "n", 15), -5},
		{"DECRBY -5", rc.DecrBy(ctx, "n", -5), 0},
		{"INCRBY of a missing key", rc.IncrBy(ctx, "fresh", -7), -7},
	} {
		if got, err := tc.cmd.Result(); err != nil || got != tc.want {
			t.Errorf("%s = %d, %v; want %d", tc.what, got, err, tc.want)
		}
	}
	if err := rc.Set(ctx, "w", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Incr(ctx, "w").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Errorf("INCR of a word: %v", err)
	}
	if err := rc.Set(ctx, "min", "-9223372036854775808", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Decr(ctx, "min").Err(); err == nil || err.Error() != "ERR increment or decrement would overflow" {
		t.Errorf("DECR of the least int64: %v", err)
	}

	// 8 goroutines, 250 increments each: 200 one at a time, then 50 in a
	// pipeline, which go-redis sends at once.
	const workers, each, piped = 8, 250, 50
	var (
		mu   sync.Mutex
		seen []int64
	)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			var mine []int64
			for range each - piped {
				n, err := rc.Incr(ctx, "shared").Result()
				if err != nil {
					errs <- err
					return
				}
				mine = append(mine, n)
			}
			cmds, err := rc.Pipelined(ctx, func(pl redis.Pipeliner) error {
				for range piped {
					pl.Incr(ctx, "shared")
				}
				return nil
			})
			if err != nil {
				errs <- err
				return
			}
			for _, c := range cmds {
				mine = append(mine, c.(*redis.IntCmd).Val())
			}
			mu.Lock()
			seen = append(seen, mine...)
			mu.Unlock()
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got, err := rc.Get(ctx, "shared").Int64(); err != nil || got != workers*each {
		t.Errorf("after %d concurrent INCRs the counter is %d, %v", workers*each, got, err)
	}
	slices.Sort(seen)
	for i, n := range seen {
		if n != int64(i+1) {
			t.Fatalf("the INCRs' answers, sorted, are not 1..%d: answer %d is %d", workers*each, i, n)
		}
	}
}

// A cluster of three real processes: INCR on the leader counts each
// increment once, from several connections at once; a follower refuses it
// with NOTLEADER and the leader's address, as it does a SET.
func TestGoRedisIncrOnACluster(t *testing.T) {
	ctx := context.Background()
	_, clients, kv, leader := launchRESPCluster(t)
	checkRoles(ctx, t, clients, kv, leader)
	if n, err := clients[leader].Incr(ctx, "c").Result(); err != nil || n != 1 {
		t.Fatalf("the first INCR on the leader: %d, %v; want 1", n, err)
	}
	for i, rc := range clients {
		if i == leader {
			continue
		}
		err := rc.IncrBy(ctx, "c", 5).Err()
		if want := "NOTLEADER 127.0.0.1:" + kv[leader]; err == nil || err.Error() != want {
			t.Errorf("INCRBY on follower %d: %v, want %s", i, err, want)
		}
	}
	const workers, each = 4, 50
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for range each {
				var err error
				if w%2 == 0 {
					err = clients[leader].Incr(ctx, "c").Err()
				} else {
					err = clients[leader].IncrBy(ctx, "c", 2).Err()
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := int64(1 + each*workers/2 + 2*each*workers/2)
	if got, err := clients[leader].DecrBy(ctx, "c", 0).Result(); err != nil || got != want {
		t.Errorf("the counter after the concurrent INCRs: %d, %v; want %d", got, err, want)
	}
	if err := clients[leader].Set(ctx, "w", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := clients[leader].Decr(ctx, "w").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Errorf("DECR of a word on the leader: %v", err)
	}
	if _, err := clients[(leader+1)%3].Get(ctx, "c").Result(); err == nil || errors.Is(err, redis.Nil) || !strings.HasPrefix(err.Error(), "NOTLEADER ") {
		t.Errorf("GET on a follower: %v", err)
	}
}

// launchRESPCluster starts a cluster of three real processes, with a
// go-redis client for each, and waits for the leader that every node
// names (INFO's, found without a write, so that no write sent during the
// election can count unseen). kv are the nodes' client ports.
func launchRESPCluster(t *testing.T) (nodes []*server, clients []*redis.Client, kv []string, leader int) {
	t.Helper()
	ports := make([]string, 6)
	for i := range ports {
		_, ports[i], _ = net.SplitHostPort(freeLoopbackAddr(t))
	}
	kv, repl := ports[:3], ports[3:]
	others := func(l []string, id int) []string {
		return slices.Delete(slices.Clone(l), id, id+1)
	}
	for id := range 3 {
		args := []string{"--node-id", strconv.Itoa(id), "--kv-port", kv[id], "--repl-port", repl[id],
			"--data-dir", t.TempDir(), "--secondary-repl-ports"}
		args = append(args, others(repl, id)...)
		args = append(args, "--other-kv-ports")
		args = append(args, others(kv, id)...)
		nodes = append(nodes, launch(t, args...))
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + kv[id], DialTimeout: 5 * time.Second, PoolSize: 4, MaxRetries: -1})
		t.Cleanup(func() { rc.Close() })
		clients = append(clients, rc)
	}
	leader = -1
	for deadline := time.Now().Add(30 * time.Second); leader < 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			for i, n := range nodes {
				t.Logf("node %d:\n%s", i, n.log())
			}
			t.Fatal("no leader that every node names in 30s")
		}
		leader = infoLeader(context.Background(), clients, kv)
	}
	return nodes, clients, kv, leader
}

// infoLeader is the node whose INFO says it leads and whose client address
// every other node's INFO names as the leader's, or -1.
func infoLeader(ctx context.Context, clients []*redis.Client, kv []string) int {
	leader := -1
	var named []string
	for i, rc := range clients {
		info, err := rc.Info(ctx, "server").Result()
		if err != nil {
			return -1
		}
		switch {
		case strings.Contains(info, "\r\ndkv_role:leader\r\n"):
			leader = i
		default:
			_, rest, _ := strings.Cut(info, "\r\ndkv_leader:")
			addr, _, _ := strings.Cut(rest, "\r\n")
			named = append(named, addr)
		}
	}
	if leader < 0 || len(named) != len(clients)-1 {
		return -1
	}
	for _, addr := range named {
		if addr != "127.0.0.1:"+kv[leader] {
			return -1
		}
	}
	return leader
}

// checkRoles holds a cluster's nodes to Redis's replication roles, what a
// proxy's health check ("role:master") and ROLE route writes by: the
// leader is the master, with its two followers; each follower a slave
// naming the leader's client port, its link up.
func checkRoles(ctx context.Context, t *testing.T, clients []*redis.Client, kv []string, leader int) {
	t.Helper()
	for i, rc := range clients {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			t.Fatalf("INFO replication on node %d: %v", i, err)
		}
		role, err := rc.Do(ctx, "ROLE").Slice()
		if err != nil || len(role) == 0 {
			t.Fatalf("ROLE on node %d: %v, %v", i, role, err)
		}
		if i == leader {
			if !strings.Contains(info, "\r\nrole:master\r\nconnected_slaves:2\r\n") || role[0] != "master" || len(role) != 3 {
				t.Errorf("the leader's INFO replication %q, ROLE %v; want master with 2 followers", info, role)
			}
			continue
		}
		want := "\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:" + kv[leader] + "\r\nmaster_link_status:up\r\n"
		if !strings.Contains(info, want) || len(role) != 5 || role[0] != "slave" || role[2] != mustInt(t, kv[leader]) || role[3] != "connected" {
			t.Errorf("follower %d's INFO replication %q, ROLE %v; want a slave of 127.0.0.1:%s", i, info, role, kv[leader])
		}
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
