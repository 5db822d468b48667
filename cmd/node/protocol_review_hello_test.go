package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// helloRole is the role HELLO 2 names, checked to be in Redis 7's shape:
// fourteen elements, proto 2 and the id as integers, names and strings as
// bulk strings.
func helloRole(ctx context.Context, t *testing.T, rc *redis.Client) string {
	t.Helper()
	hello, err := rc.Do(ctx, "HELLO", "2").Slice()
	if err != nil || len(hello) != 14 || hello[0] != "server" || hello[5] != int64(2) || hello[10] != "role" {
		t.Fatalf("HELLO 2 = %v, %v", hello, err)
	}
	if _, ok := hello[7].(int64); !ok {
		t.Fatalf("HELLO 2's id %v is not an integer", hello[7])
	}
	role, _ := hello[11].(string)
	return role
}

// HELLO's role says what ROLE and INFO do, in HELLO's words (Redis 7
// answers "replica" on a replica, whether or not its master is up): a
// cluster's leader is the master, its followers replicas, and so is a
// node that knows no leader; a single node is a master. It said master on
// every node.
func TestProtocolReviewHelloRole(t *testing.T) {
	ctx := context.Background()
	_, clients, kv, leader := launchRESPCluster(t)
	checkRoles(ctx, t, clients, kv, leader)
	for i, rc := range clients {
		want := "replica"
		if i == leader {
			want = "master"
		}
		if got := helloRole(ctx, t, rc); got != want {
			t.Errorf("HELLO on node %d (leader %d): role %q, want %q", i, leader, got, want)
		}
	}

	single := start(t, t.TempDir())
	rc := redis.NewClient(&redis.Options{Addr: single.addr, MaxRetries: -1})
	defer rc.Close()
	if got := helloRole(ctx, t, rc); got != "master" {
		t.Errorf("HELLO on a single node: role %q, want master", got)
	}

	// A cluster node whose peers never come: it has no leader, and takes
	// no writes.
	ports := make([]string, 6)
	for i := range ports {
		_, ports[i], _ = net.SplitHostPort(freeLoopbackAddr(t))
	}
	launch(t, "--node-id", "0", "--kv-port", ports[0], "--repl-port", ports[3], "--data-dir", t.TempDir(),
		"--secondary-repl-ports", ports[4], ports[5], "--other-kv-ports", ports[1], ports[2])
	alone := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + ports[0], DialTimeout: 5 * time.Second, MaxRetries: -1})
	defer alone.Close()
	var role []any
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if role, err = alone.Do(ctx, "ROLE").Slice(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lone cluster node did not answer ROLE in 30 s: %v", err)
		}
	}
	if len(role) != 5 || role[0] != "slave" || role[3] != "connect" || role[2] != int64(-1) {
		t.Fatalf("ROLE on a lone cluster node: %v", role)
	}
	if got := helloRole(ctx, t, alone); got != "replica" {
		t.Errorf("HELLO on a cluster node without a leader: role %q, want replica", got)
	}
}
