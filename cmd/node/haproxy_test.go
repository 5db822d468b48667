package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// haproxyConfig routes a front port to whichever backend answers INFO
// replication with role:master: the health check Redis deployments put
// in front of a primary and its replicas (OPERATIONS, Behind a proxy).
const haproxyConfig = `defaults
    mode tcp
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend dkv
    bind %s
    default_backend dkv_leader
backend dkv_leader
    option tcp-check
    tcp-check connect
    tcp-check send PING\r\n
    tcp-check expect string +PONG
    tcp-check send info\ replication\r\n
    tcp-check expect string role:master
    tcp-check send QUIT\r\n
    tcp-check expect string +OK
%s`

// A real HAProxy in front of a real 3-node cluster, with Redis's usual
// check for role:master, sends writes to the leader; when the leader is
// SIGKILLed it finds the new one, and the counter goes on from every
// increment that was answered.
func TestHAProxyRoutesWritesToTheLeader(t *testing.T) {
	bin := needTool(t, "haproxy")
	nodes, clients, kv, leader := launchRESPCluster(t)
	var servers strings.Builder
	for i, p := range kv {
		fmt.Fprintf(&servers, "    server n%d 127.0.0.1:%s check inter 100ms fall 1 rise 1 on-marked-down shutdown-sessions\n", i, p)
	}
	front := freeLoopbackAddr(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(haproxyConfig, front, servers.String())), 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := exec.Command(bin, "-f", cfg, "-db")
	var proxyLog strings.Builder
	proxy.Stdout, proxy.Stderr = &proxyLog, &proxyLog
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Process.Kill(); proxy.Wait() })
	rc := redis.NewClient(&redis.Options{Addr: front, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	// incr retries until the proxy routes an INCR to a leader, and
	// returns its answer: the failed attempts' outcomes are unknown.
	incr := func(what string) int64 {
		t.Helper()
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var n int64
			if n, err = rc.Incr(ctx, "hits").Result(); err == nil {
				return n
			}
		}
		t.Fatalf("%s: no INCR through the proxy in 20 s: %v\nproxy log:\n%s", what, err, proxyLog.String())
		return 0
	}
	// landsOn asks, on a fresh connection through the proxy, which node's
	// client port took it (INFO's tcp_port).
	landsOn := func() string {
		fresh := redis.NewClient(&redis.Options{Addr: front, DialTimeout: 2 * time.Second, MaxRetries: -1, PoolSize: 1})
		defer fresh.Close()
		info, err := fresh.Info(ctx, "server").Result()
		if err != nil {
			return ""
		}
		_, rest, _ := strings.Cut(info, "\r\ntcp_port:")
		port, _, _ := strings.Cut(rest, "\r\n")
		return port
	}
	// routesTo waits until the proxy's checks have settled on the node
	// with client port want: five fresh connections in a row reach it.
	// A proxy that took a follower for the leader too never gets there:
	// its round robin sends the next connection to the next node.
	routesTo := func(want, when string) {
		t.Helper()
		streak := 0
		for deadline := time.Now().Add(20 * time.Second); streak < 5; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no five connections in a row through the proxy reached the leader (port %s) in 20 s\nproxy log:\n%s", when, want, proxyLog.String())
			}
			if landsOn() == want {
				streak++
				continue
			}
			streak = 0
			time.Sleep(50 * time.Millisecond)
		}
	}
	routesTo(kv[leader], "before the kill")
	last := int64(0)
	for range 3 {
		n := incr("before the kill")
		if n <= last {
			t.Fatalf("INCR answered %d after %d", n, last)
		}
		last = n
	}
	nodes[leader].signal(syscall.SIGKILL)
	n := incr("after the leader was killed")
	if n <= last {
		t.Fatalf("after the failover INCR answered %d; %d had been answered before it: an acknowledged increment was lost", n, last)
	}
	survivors := slices.Delete(slices.Clone(clients), leader, leader+1)
	ports := slices.Delete(slices.Clone(kv), leader, leader+1)
	next := -1
	for deadline := time.Now().Add(20 * time.Second); next < 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the two survivors named no leader in 20 s")
		}
		next = infoLeader(ctx, survivors, ports)
	}
	routesTo(ports[next], "after the failover")
	if got, err := rc.Get(ctx, "hits").Int64(); err != nil || got < n {
		t.Fatalf("hits through the proxy = %d, %v; want at least %d", got, err, n)
	}
}
