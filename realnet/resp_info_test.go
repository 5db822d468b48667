package realnet

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"dkv/core"
)

// infoFields sends INFO with args on c and returns its fields.
func infoFields(t *testing.T, c *respClient, args string) map[string]string {
	t.Helper()
	c.send("INFO " + args + "\r\n")
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	head, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		t.Fatalf("INFO %s: %q, %v", args, head, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(c.br, body); err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			fields[k] = v
		}
	}
	return fields
}

// INFO's clients, memory and stats sections hold what redis-cli --stat and
// monitoring exporters read (before them, --stat printed the least int64
// for every field dkv left out): the open connections and the limit, the
// heap in use and the resident set, and the connections taken and refused
// and the requests answered since the start, which count as they happen.
func TestRESPInfoClientsMemoryStats(t *testing.T) {
	cfg := respConfig()
	cfg.ConnsMax = 2
	r := startSingle(t, cfg)
	c := dialRESP(t, r.addr)
	before := infoFields(t, c, "stats")
	for _, name := range []string{"total_connections_received", "total_commands_processed", "rejected_connections"} {
		if _, err := strconv.ParseInt(before[name], 10, 64); err != nil {
			t.Fatalf("INFO stats: %s = %q, want a count", name, before[name])
		}
	}
	c.send("SET a 1\r\nGET a\r\nINCR n\r\n")
	c.expect("+OK\r\n$1\r\n1\r\n:1\r\n")
	other := dialRESP(t, r.addr)
	other.send("PING\r\n")
	other.expect("+PONG\r\n")
	refused := dialRESP(t, r.addr) // the third, over ConnsMax
	refused.send("PING\r\n")
	refused.expect("-ERR max number of clients reached\r\n")

	all := infoFields(t, c, "")
	count := func(name string) int64 {
		t.Helper()
		n, err := strconv.ParseInt(all[name], 10, 64)
		if err != nil {
			t.Fatalf("INFO: %s = %q, want a number", name, all[name])
		}
		return n
	}
	was := func(name string) int64 { n, _ := strconv.ParseInt(before[name], 10, 64); return n }
	// SET, GET and INCR (the node's answers), the other connection's
	// PING (the host's own), and this INFO: every answer its client has,
	// none lagging (a count made once a turn did: found by review).
	if got := count("total_commands_processed") - was("total_commands_processed"); got != 5 {
		t.Errorf("total_commands_processed grew by %d over SET, GET, INCR, a PING and this INFO; want 5", got)
	}
	if got := count("total_connections_received") - was("total_connections_received"); got != 1 {
		t.Errorf("total_connections_received grew by %d for one more connection; want 1", got)
	}
	if got := count("rejected_connections") - was("rejected_connections"); got != 1 {
		t.Errorf("rejected_connections grew by %d for one refused; want 1", got)
	}
	if got := count("connected_clients"); got != 2 {
		t.Errorf("connected_clients = %d with two open; want 2", got)
	}
	if got := count("maxclients"); got != 2 {
		t.Errorf("maxclients = %d; want ConnsMax, 2", got)
	}
	if got := count("blocked_clients"); got != 0 {
		t.Errorf("blocked_clients = %d", got)
	}
	if used := count("used_memory"); used <= 0 || !strings.HasSuffix(all["used_memory_human"], "M") && !strings.HasSuffix(all["used_memory_human"], "K") {
		t.Errorf("used_memory %d, human %q", used, all["used_memory_human"])
	}
	if rss := count("used_memory_rss"); rss < count("used_memory")/2 {
		t.Errorf("used_memory_rss = %d, under half the heap in use (%d)", rss, count("used_memory"))
	}
	if count("maxmemory") != 0 || all["maxmemory_policy"] != "noeviction" || count("aof_rewrite_in_progress") != 0 {
		t.Errorf("maxmemory %q, policy %q, aof_rewrite_in_progress %q", all["maxmemory"], all["maxmemory_policy"], all["aof_rewrite_in_progress"])
	}
	for _, section := range []string{"clients", "memory", "stats"} {
		if f := infoFields(t, c, section); len(f) == 0 || f["redis_version"] != "" {
			t.Errorf("INFO %s: %v; want its own fields alone", section, f)
		}
	}
}

func TestBytesToHuman(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0B", 1023: "1023B", 1024: "1.00K", 916_714: "895.23K",
		1 << 20: "1.00M", 3<<30 + 1<<29: "3.50G", 1 << 40: "1.00T", 1 << 50: "1.00P", 1 << 60: "1024.00P",
	} {
		if got := bytesToHuman(n); got != want {
			t.Errorf("bytesToHuman(%d) = %q, want %q", n, got, want)
		}
	}
}

// MEMORY USAGE, as redis-cli --memkeys and key browsers ask it: an
// estimate for a key that exists (more than its bytes, never less), nil
// for one that does not, SAMPLES taken; Redis's errors otherwise.
func TestRESPMemoryUsage(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	c.send("SET a 1\r\nSET big " + strings.Repeat("x", 1000) + "\r\n")
	c.expect("+OK\r\n+OK\r\n")
	for _, tc := range []struct{ send, want string }{
		{"MEMORY USAGE a", ":32\r\n"},                         // 2 bytes: Go's class of 8, and 24
		{"memory usage big SAMPLES 5", ":1048\r\n"},           // 3 + 1,000 bytes: the class of 1,024
		{"MEMORY USAGE big samples 5 SAMPLES 0", ":1048\r\n"}, // pairs, as Redis reads them
		{"MEMORY USAGE nope", "$-1\r\n"},
		{"MEMORY USAGE", "-ERR wrong number of arguments for 'memory|usage' command\r\n"},
		{"MEMORY USAGE a SAMPLES", "-ERR syntax error\r\n"},
		{"MEMORY USAGE a COUNT 5", "-ERR syntax error\r\n"},
		{"MEMORY USAGE a SAMPLES -1", "-ERR syntax error\r\n"},
		{"MEMORY USAGE a SAMPLES x", "-ERR value is not an integer or out of range\r\n"},
		{"MEMORY", "-ERR wrong number of arguments for 'memory' command\r\n"},
		{"MEMORY HELP x", "-ERR wrong number of arguments for 'memory|help' command\r\n"},
		{"MEMORY DOCTOR", "-ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP.\r\n"},
	} {
		c.send(tc.send + "\r\n")
		c.expect(tc.want)
	}
	c.send("MEMORY HELP\r\n")
	c.expect("*6\r\n+MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+USAGE <key> [SAMPLES <count>]\r\n")
}

func TestMemoryUsageEstimate(t *testing.T) {
	for _, tc := range []struct {
		klen, vlen int
		want       int64
	}{
		{1, 1, 8 + 24}, {10, 100, 112 + 24}, {10, 103, 128 + 24}, {24, 1000, 1024 + 24},
		{1, 768, 896 + 24}, {1, 4096, 4864 + 24}, {1, 8192, 9472 + 24}, {1, 32 << 10, 40<<10 + 24},
	} {
		if got := memoryUsage(tc.klen, tc.vlen); got != tc.want || got < int64(tc.klen+tc.vlen) {
			t.Errorf("memoryUsage(%d, %d) = %d, want %d", tc.klen, tc.vlen, got, tc.want)
		}
	}
}

// goSizeClasses round as the running runtime's allocator does: a slice
// grown from nothing to n bytes gets the capacity of n's size class.
func TestGoSizeClasses(t *testing.T) {
	for n := int64(1); n <= 40<<10; n += 1 + n/64 {
		want := int64(cap(append([]byte(nil), make([]byte, n)...)))
		if got := memoryUsage(int(n), 0) - 24; got != want {
			t.Fatalf("%d bytes: the estimate rounds to %d, the allocator to %d", n, got, want)
		}
	}
}

// A single node takes writes: INFO's replication section and ROLE say
// master, with no replica, as a lone Redis does, and the offset grows with
// the writes.
func TestRESPRoleOfASingleNode(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	f := infoFields(t, c, "replication")
	if f["role"] != "master" || f["connected_slaves"] != "0" {
		t.Fatalf("INFO replication: %v", f)
	}
	before, _ := strconv.Atoi(f["master_repl_offset"])
	c.send("SET a 1\r\nSET b 2\r\n")
	c.expect("+OK\r\n+OK\r\n")
	if after, _ := strconv.Atoi(infoFields(t, c, "replication")["master_repl_offset"]); after != before+2 {
		t.Errorf("master_repl_offset %d after two writes, was %d", after, before)
	}
	c.send("ROLE\r\n")
	c.expect("*3\r\n$6\r\nmaster\r\n:" + strconv.Itoa(before+2) + "\r\n*0\r\n")
	c.send("ROLE x\r\n")
	c.expect("-ERR wrong number of arguments for 'role' command\r\n")
	if all := infoFields(t, c, ""); all["role"] != "master" {
		t.Errorf("INFO with no section: role %q; the replication section is in the default", all["role"])
	}
}

// replicationOf reads a cluster node's status: the leader is the master
// and counts its followers; a follower is a slave naming its leader's
// client address, its link down while it knows none.
func TestReplicationOfACluster(t *testing.T) {
	// Two followers heard from lately, and one not: as Redis counts the
	// replicas connected.
	leader := replicationOf(&core.Status{Cluster: &core.ClusterStatus{Role: "leader", Applied: 9,
		Peers: []core.PeerStatus{{NodeID: 1, Active: true}, {NodeID: 2}, {NodeID: 3, Active: true}}}})
	if !leader.master || leader.followers != 2 || leader.offset != 9 {
		t.Errorf("leader: %+v", leader)
	}
	follower := replicationOf(&core.Status{Cluster: &core.ClusterStatus{Role: "follower", Applied: 7, Leader: "10.0.0.2:9999"}})
	if follower.master || follower.leaderHost != "10.0.0.2" || follower.leaderPort != "9999" || follower.link() != "up" {
		t.Errorf("follower: %+v", follower)
	}
	if got := string(appendRESPRole(nil, follower)); got != "*5\r\n$5\r\nslave\r\n$8\r\n10.0.0.2\r\n:9999\r\n$9\r\nconnected\r\n:7\r\n" {
		t.Errorf("ROLE of the follower: %q", got)
	}
	if unknown := replicationOf(nil); unknown.master {
		t.Errorf("a node whose status is unknown: %+v, not master", unknown)
	}
	lost := replicationOf(&core.Status{Cluster: &core.ClusterStatus{Role: "candidate"}})
	if lost.master || lost.link() != "down" {
		t.Errorf("a candidate: %+v", lost)
	}
	if got := string(appendRESPRole(nil, lost)); got != "*5\r\n$5\r\nslave\r\n$0\r\n\r\n:-1\r\n$7\r\nconnect\r\n:0\r\n" {
		t.Errorf("ROLE of a candidate: %q", got)
	}
}
