package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"dkv/core"
)

// scrape is one /metrics page: each sample's value by its name and labels
// as written ("dkv_requests_total{op=\"set\",code=\"ok\"}").
type scrape map[string]float64

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// wantGrowth checks how much each metric of want went up from before to
// after.
//
// It scrapes addr until the counters have grown so, for up to 5 s: a
// request is counted at the end of the node's turn that answered it, and
// its answer may leave before that (a reply is sent as soon as it is
// ready), so a scrape right after the answers came once found a counter
// one short (found by CI).
func wantGrowth(t *testing.T, addr string, before scrape, want map[string]float64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		after := getScrape(t, addr)
		short := false
		for key, n := range want {
			if after[key]-before[key] != n {
				short = true
			}
		}
		if !short || time.Now().After(deadline) {
			for key, n := range want {
				if got := after[key] - before[key]; got != n {
					t.Errorf("%s went up by %v, want %v", key, got, n)
				}
			}
			return
		}
	}
}

// getScrape fetches /metrics and checks the text format as Prometheus
// reads it: every line a comment or a sample, one TYPE line per family
// and before its samples, no sample twice.
func getScrape(t *testing.T, addr string) scrape {
	t.Helper()
	body, status := httpGet(t, "http://"+addr+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", status, body)
	}
	s := scrape{}
	typed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || typed[f[0]] {
				t.Fatalf("TYPE line %q: malformed or repeated", line)
			}
			typed[f[0]] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q is neither a comment nor a sample", line)
		}
		family := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(family, suffix); ok && typed[base] {
				family = base
			}
		}
		if !typed[family] {
			t.Fatalf("sample %q comes before its family's TYPE line", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		key := m[1] + m[2]
		if _, dup := s[key]; dup {
			t.Fatalf("sample %s written twice", key)
		}
		s[key] = v
	}
	return s
}

func httpGet(t *testing.T, url string) (string, int) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

// A real server with --metrics-addr: /healthz says ready, and the
// counters of /metrics move with the requests the server answers.
func TestMetricsOfARealServer(t *testing.T) {
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--metrics-addr", maddr)
	if body, status := httpGet(t, "http://"+maddr+"/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz of a serving node: %d %q", status, body)
	}
	before := getScrape(t, maddr)
	for _, want := range []string{"dkv_ready", "dkv_recovery_seconds", "dkv_node_scrape_ok", "dkv_keys", "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := before[want]; !ok {
			t.Errorf("no %s in the first scrape", want)
		}
	}
	if before["dkv_ready"] != 1 || before["dkv_node_scrape_ok"] != 1 || before["dkv_recovery_seconds"] <= 0 {
		t.Errorf("ready %v, node scrape %v, recovery %vs", before["dkv_ready"], before["dkv_node_scrape_ok"], before["dkv_recovery_seconds"])
	}

	resps := roundTrip(t, s.addr,
		`{"op":"set","key":"a","value":"1"}`, `{"op":"set","key":"b","value":"2"}`, `{"op":"set","key":"c","value":"3"}`,
		`{"op":"get","key":"nope"}`, `not json`, `{"op":"frobnicate"}`)
	if !resps[0].OK || code(resps[3]) != "not_found" || code(resps[4]) != "bad_request" {
		t.Fatalf("responses: %+v %+v %+v", resps[0].Error, resps[3].Error, resps[4].Error)
	}
	wantGrowth(t, maddr, before, map[string]float64{
		`dkv_requests_total{op="set",code="ok"}`:              3,
		`dkv_requests_total{op="get",code="not_found"}`:       1,
		`dkv_requests_total{op="invalid",code="bad_request"}`: 1,
		`dkv_request_duration_seconds_count{op="set"}`:        3,
		`dkv_connections_accepted_total`:                      1,
		`dkv_keys`:                                            3,
		`dkv_wal_batch_records_sum`:                           3,
	})
	after := getScrape(t, maddr)
	delta := func(key string) float64 { return after[key] - before[key] }
	// An unknown op is counted as "other" (or refused as invalid), never
	// under its own name: clients cannot grow the series without bound.
	for key := range after {
		if strings.Contains(key, "frobnicate") {
			t.Errorf("series %s names a client's op", key)
		}
	}
	if n := delta(`dkv_wal_batch_records_count`); n < 1 || n > 3 {
		t.Errorf("%v batches for 3 sets", n)
	}
	if n := delta(`dkv_fsync_duration_seconds_count{file="wal"}`); n < 1 {
		t.Errorf("%v log fsyncs for 3 sets", n)
	}
	// The six lines answered took at least one turn; the four the node
	// answered (the line that is not JSON is the host's) are at least
	// four of their events.
	if n, ev, busy := delta(`dkv_turn_duration_seconds_count`), delta(`dkv_turn_events_sum`), delta(`dkv_turn_duration_seconds_sum`); n < 1 || ev < 4 || busy <= 0 {
		t.Errorf("%v turns of %v events, busy %vs, for 6 lines", n, ev, busy)
	}
	if after[`dkv_request_duration_seconds_sum{op="set"}`] <= 0 || after["dkv_wal_written_bytes_total"] <= before["dkv_wal_written_bytes_total"] {
		t.Errorf("set latency sum %v, log bytes %v -> %v", after[`dkv_request_duration_seconds_sum{op="set"}`],
			before["dkv_wal_written_bytes_total"], after["dkv_wal_written_bytes_total"])
	}
	// A consistent scan that leaves keys keeps a view, which the gauge
	// and status count.
	if after["dkv_scan_views"] != 0 {
		t.Errorf("dkv_scan_views = %v before any consistent scan", after["dkv_scan_views"])
	}
	page := roundTrip(t, s.addr, `{"op":"scan","limit":1,"consistent":true}`, `{"op":"status"}`)
	if page[0].View == "" || page[1].Status == nil || page[1].Status.ScanViews != 1 {
		t.Errorf("consistent scan: view %q, status %+v", page[0].View, page[1].Status)
	}
	if got := getScrape(t, maddr)["dkv_scan_views"]; got != 1 {
		t.Errorf("dkv_scan_views = %v after a consistent scan, want 1", got)
	}
	s.signal(syscall.SIGTERM)
	if c := s.exitCode(); c != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", c, s.log())
	}
}

// --metrics-addr on an address in use: the server refuses to start before
// recovery, naming the address.
func TestMetricsAddrInUseIsRefused(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	s := launch(t, "--port", "0", "--data-dir", t.TempDir(), "--metrics-addr", taken.Addr().String())
	if c := s.exitCode(); c != 1 {
		t.Fatalf("exit code = %d, want 1; stderr:\n%s", c, s.log())
	}
	want := "dkv: cannot serve metrics on " + taken.Addr().String() + " (--metrics-addr): "
	if log := s.log(); !strings.Contains(log, want) || !strings.Contains(log, "address already in use") || strings.Contains(log, "recovered") {
		t.Errorf("stderr %q: want %q, address already in use, and no recovery", log, want)
	}
	for _, bad := range []string{"9100", "localhost"} {
		var stderr strings.Builder
		if c := run([]string{"--data-dir", t.TempDir(), "--metrics-addr", bad}, &stderr); c != 2 || !strings.Contains(stderr.String(), "--metrics-addr must be host:port") {
			t.Errorf("--metrics-addr %s: exit %d, stderr %q; want 2 and host:port", bad, c, stderr.String())
		}
	}
}

// /healthz answers 503 with its reason until the node serves, and once it
// is shutting down.
func TestHealthzFollowsTheNode(t *testing.T) {
	m := newServerMetrics("single", 0)
	for _, tc := range []struct {
		state  int32
		status int
		says   string
	}{
		{healthRecovering, http.StatusServiceUnavailable, "recovering"},
		{healthServing, http.StatusOK, "ok"},
		{healthStopping, http.StatusServiceUnavailable, "shutting down"},
	} {
		m.health.Store(tc.state)
		rec := httptest.NewRecorder()
		m.handleHealth(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.says) {
			t.Errorf("state %d: %d %q, want %d and %q", tc.state, rec.Code, rec.Body.String(), tc.status, tc.says)
		}
	}
	// Before the node has recovered, /metrics serves the host's series
	// and says that the node's are missing.
	m.health.Store(healthRecovering)
	rec := httptest.NewRecorder()
	m.handleMetrics(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, "\ndkv_ready 0\n") ||
		!strings.Contains(body, "\ndkv_node_scrape_ok 0\n") || strings.Contains(body, "dkv_keys") {
		t.Errorf("/metrics during recovery: %d\n%s", rec.Code, body)
	}
}

// A cluster node's metrics carry its Raft term and role: one leader among
// the three, each follower naming it, the leader each follower's match
// index; the leader logs its election in one line.
func TestClusterMetricsHaveTermAndRole(t *testing.T) {
	ports := make([]string, 6)
	for i := range ports {
		_, ports[i], _ = net.SplitHostPort(freeLoopbackAddr(t))
	}
	kv, repl := ports[:3], ports[3:]
	others := func(l []string, id int) []string {
		var out []string
		for j, p := range l {
			if j != id {
				out = append(out, p)
			}
		}
		return out
	}
	var maddrs []string
	var nodes []*server
	for id := range 3 {
		maddr := freeLoopbackAddr(t)
		maddrs = append(maddrs, maddr)
		args := []string{"--node-id", strconv.Itoa(id), "--kv-port", kv[id], "--repl-port", repl[id],
			"--data-dir", t.TempDir(), "--metrics-addr", maddr, "--secondary-repl-ports"}
		args = append(args, others(repl, id)...)
		args = append(args, "--other-kv-ports")
		args = append(args, others(kv, id)...)
		nodes = append(nodes, launch(t, args...))
	}
	var leader int
	var scrapes []scrape
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			for i, n := range nodes {
				t.Logf("node %d:\n%s", i, n.log())
			}
			t.Fatalf("no leader in every node's metrics after 30s: %v", scrapes)
		}
		scrapes, leader = clusterScrapes(t, nodes, maddrs)
		if leader >= 0 {
			break
		}
	}
	lead := scrapes[leader]
	term := lead["dkv_cluster_term"]
	for i, s := range scrapes {
		role := "follower"
		if i == leader {
			role = "leader"
		}
		if r, ok := s["dkv_cluster_rejoining"]; !ok || r != 0 {
			t.Errorf("node %d, started as a new cluster's: dkv_cluster_rejoining %v (present %v), want 0", i, r, ok)
		}
		if s[`dkv_cluster_role{role="`+role+`"}`] != 1 || s["dkv_cluster_term"] != term || s["dkv_cluster_leader_id"] != float64(leader) || s["dkv_cluster_leader_changes_total"] < 1 {
			t.Errorf("node %d: role %s %v, term %v (leader's %v), leader id %v, leader changes %v", i, role,
				s[`dkv_cluster_role{role="`+role+`"}`], s["dkv_cluster_term"], term, s["dkv_cluster_leader_id"], s["dkv_cluster_leader_changes_total"])
		}
	}
	for i := range nodes {
		if _, ok := lead[fmt.Sprintf(`dkv_cluster_peer_match_index{peer="%d"}`, i)]; ok != (i != leader) {
			t.Errorf("leader's match index of node %d: present %v", i, ok)
		}
	}
	want := fmt.Sprintf("election: became leader at term %d", int(term))
	if !strings.Contains(nodes[leader].log(), want) {
		t.Errorf("leader's log lacks %q:\n%s", want, nodes[leader].log())
	}
}

// clusterScrapes scrapes every node that serves, and returns the index of
// the leader that every node agrees on, or -1.
func clusterScrapes(t *testing.T, nodes []*server, maddrs []string) ([]scrape, int) {
	var scrapes []scrape
	leader := -1
	for i, n := range nodes {
		if !strings.Contains(n.log(), "serving cluster node") {
			return nil, -1
		}
		s := getScrape(t, maddrs[i])
		scrapes = append(scrapes, s)
		if s[`dkv_cluster_role{role="leader"}`] == 1 {
			leader = i
		}
	}
	for _, s := range scrapes {
		if leader < 0 || s["dkv_cluster_leader_id"] != float64(leader) {
			return scrapes, -1
		}
	}
	return scrapes, leader
}

// readLines returns the lines of a server's stderr.
func readLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// With --enable-indexes the scrape carries the indexes' status; without,
// no index series at all.
func TestIndexMetrics(t *testing.T) {
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--enable-indexes", "--metrics-addr", maddr)
	resps := roundTrip(t, s.addr,
		`{"op":"set","key":"a","value":"the ocean waves"}`,
		`{"op":"set","key":"b","value":"a quiet violin"}`,
		`{"op":"set","key":"c","value":"running shoes"}`)
	for _, r := range resps {
		if !r.OK {
			t.Fatalf("set: %+v", r.Error)
		}
	}
	got := getScrape(t, maddr)
	for key, want := range map[string]float64{
		"dkv_index_docs":         3,
		"dkv_index_vectors":      3,
		"dkv_index_segments":     1,
		"dkv_index_rebuild_left": 0,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	for _, key := range []string{"dkv_index_terms", "dkv_index_postings", "dkv_index_text_bytes", "dkv_index_vector_bytes"} {
		if got[key] <= 0 {
			t.Errorf("%s = %v, want more than 0", key, got[key])
		}
	}
	for _, key := range []string{"dkv_index_vectors_pending", "dkv_index_work_left", "dkv_index_queued", "dkv_index_rebuild_left"} {
		if _, ok := got[key]; !ok {
			t.Errorf("no %s", key)
		}
	}

	plainAddr := freeLoopbackAddr(t)
	start(t, t.TempDir(), "--metrics-addr", plainAddr)
	for key := range getScrape(t, plainAddr) {
		if strings.HasPrefix(key, "dkv_index_") {
			t.Errorf("a server without indexes reports %s", key)
		}
	}
}

// A mesh node's per-peer metrics: one family a figure, a sample a peer,
// and the times since something that has not happened yet left out.
func TestMeshMetricsPerPeer(t *testing.T) {
	var b bytes.Buffer
	p := promWriter{b: &b}
	writeMeshMetrics(&p, &core.MeshStatus{
		Tombstones: 2, Collected: 5, QuorumWaiting: 1,
		Peers: []core.MeshPeerStatus{
			{NodeID: 1, HeardAgoMs: 200, Passes: 3, PassAgoMs: 1500, PassBucket: 512, ItemsSent: 10, ItemsFetched: 4, Replicated: 7, Clock: "ahead"},
			{NodeID: 2, HeardAgoMs: -1, PassAgoMs: -1, Unreachable: true},
		},
	})
	out := b.String()
	for _, want := range []string{
		"dkv_mesh_tombstones 2\n", "dkv_mesh_tombstones_collected_total 5\n", "dkv_mesh_quorum_waiting 1\n",
		`dkv_mesh_antientropy_passes_total{peer="1"} 3` + "\n", `dkv_mesh_antientropy_passes_total{peer="2"} 0` + "\n",
		`dkv_mesh_antientropy_lag_seconds{peer="1"} 1.5` + "\n",
		`dkv_mesh_antientropy_bucket{peer="1"} 512` + "\n",
		`dkv_mesh_antientropy_items_sent_total{peer="1"} 10` + "\n",
		`dkv_mesh_antientropy_items_fetched_total{peer="1"} 4` + "\n",
		`dkv_mesh_replicated_total{peer="1"} 7` + "\n",
		`dkv_mesh_peer_heard_seconds{peer="1"} 0.2` + "\n",
		`dkv_mesh_peer_unreachable{peer="1"} 0` + "\n", `dkv_mesh_peer_unreachable{peer="2"} 1` + "\n",
		`dkv_mesh_peer_clock_out_of_step{peer="1"} 1` + "\n", `dkv_mesh_peer_clock_out_of_step{peer="2"} 0` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q", want)
		}
	}
	for _, absent := range []string{`dkv_mesh_antientropy_lag_seconds{peer="2"}`, `dkv_mesh_peer_heard_seconds{peer="2"}`} {
		if strings.Contains(out, absent) {
			t.Errorf("%s written for a peer with none yet", absent)
		}
	}
	for _, family := range []string{"dkv_mesh_antientropy_lag_seconds", "dkv_mesh_peer_unreachable", "dkv_mesh_replicated_total"} {
		if n := strings.Count(out, "# TYPE "+family+" "); n != 1 {
			t.Errorf("%s: %d TYPE lines, want 1", family, n)
		}
	}
}

// bulk_get, bulk_delete and scan are counted under their own names, not
// as "other".
func TestMultiKeyOpsAreCountedByName(t *testing.T) {
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--metrics-addr", maddr)
	before := getScrape(t, maddr)
	resps := roundTrip(t, s.addr, `{"op":"bulk_get","keys":["a"]}`, `{"op":"bulk_delete","keys":["a"]}`, `{"op":"scan"}`)
	for i, r := range resps {
		if !r.OK {
			t.Fatalf("request %d: %+v", i, r.Error)
		}
	}
	wantGrowth(t, maddr, before, map[string]float64{
		`dkv_requests_total{op="bulk_get",code="ok"}`:    1,
		`dkv_requests_total{op="bulk_delete",code="ok"}`: 1,
		`dkv_requests_total{op="scan",code="ok"}`:        1,
	})
}

// ttl, expire and persist are counted under their own names, and so are
// the codes condition_failed and not_found they and conditional writes
// answer, not as "other".
func TestExpiryOpsAndConditionCodesAreCountedByName(t *testing.T) {
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--metrics-addr", maddr)
	before := getScrape(t, maddr)
	roundTrip(t, s.addr, `{"op":"set","key":"a","value":"1"}`, `{"op":"ttl","key":"a"}`, `{"op":"expire","key":"a","ttl_ms":60000}`,
		`{"op":"persist","key":"a"}`, `{"op":"expire","key":"nope","ttl_ms":60000}`, `{"op":"set","key":"a","value":"2","if_absent":true}`)
	wantGrowth(t, maddr, before, map[string]float64{
		`dkv_requests_total{op="ttl",code="ok"}`:               1,
		`dkv_requests_total{op="expire",code="ok"}`:            1,
		`dkv_requests_total{op="persist",code="ok"}`:           1,
		`dkv_requests_total{op="expire",code="not_found"}`:     1,
		`dkv_requests_total{op="set",code="condition_failed"}`: 1,
	})
}

// incr is counted under its own name, over JSON and RESP alike, and so
// are its refusals not_integer and overflow, not as "other".
func TestIncrAndItsCodesAreCountedByName(t *testing.T) {
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--metrics-addr", maddr)
	before := getScrape(t, maddr)
	resps := roundTrip(t, s.addr, `{"op":"incr","key":"n"}`, `{"op":"incr","key":"n","delta":-5}`,
		`{"op":"set","key":"word","value":"x"}`, `{"op":"incr","key":"word"}`,
		`{"op":"set","key":"max","value":"9223372036854775807"}`, `{"op":"incr","key":"max"}`)
	for i, want := range []string{"", "", "", core.CodeNotInteger, "", core.CodeOverflow} {
		if got := code(resps[i]); got != want {
			t.Fatalf("request %d: code %q, want %q", i, got, want)
		}
	}
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(nc, "INCR n\r\nDECRBY n 2\r\n")
	const want = ":-3\r\n:-5\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != want {
		t.Fatalf("INCR and DECRBY over RESP: %q, %v; want %q", got, err, want)
	}
	wantGrowth(t, maddr, before, map[string]float64{
		`dkv_requests_total{op="incr",code="ok"}`:          4,
		`dkv_requests_total{op="incr",code="not_integer"}`: 1,
		`dkv_requests_total{op="incr",code="overflow"}`:    1,
		`dkv_requests_total{op="other",code="ok"}`:         0,
		`dkv_requests_total{op="incr",code="other"}`:       0,
	})
}

// dkv_resp_scan_cursors counts the RESP SCAN cursors the host holds: one
// for a walk under way, none once it has ended.
func TestScanCursorsGauge(t *testing.T) {
	maddr := freeLoopbackAddr(t)
	s := start(t, t.TempDir(), "--metrics-addr", maddr)
	if got := getScrape(t, maddr)["dkv_resp_scan_cursors"]; got != 0 {
		t.Fatalf("dkv_resp_scan_cursors = %v before any SCAN", got)
	}
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	readLines := func(n int) []string {
		t.Helper()
		var out []string
		for range n {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading a reply: %v", err)
			}
			out = append(out, strings.TrimRight(line, "\r\n"))
		}
		return out
	}
	fmt.Fprint(nc, "MSET a 1 b 2\r\nSCAN 0 COUNT 1\r\n")
	// +OK, then *2, the cursor ($n and its digits), *1, $1 and the key.
	lines := readLines(7)
	if lines[0] != "+OK" || lines[1] != "*2" || lines[3] == "0" {
		t.Fatalf("MSET and the first page: %q", lines)
	}
	if got := getScrape(t, maddr)["dkv_resp_scan_cursors"]; got != 1 {
		t.Errorf("dkv_resp_scan_cursors = %v during a walk, want 1", got)
	}
	fmt.Fprintf(nc, "SCAN %s COUNT 1\r\n", lines[3])
	if last := readLines(6); last[2] != "0" {
		t.Fatalf("the last page: %q, want cursor 0", last)
	}
	if got := getScrape(t, maddr)["dkv_resp_scan_cursors"]; got != 0 {
		t.Errorf("dkv_resp_scan_cursors = %v after the walk ended, want 0", got)
	}
}

// metricsExchange sends one keep-alive GET of path on nc and reads its
// answer's status line and body; err is the connection's failure, if any.
func metricsExchange(nc net.Conn, br *bufio.Reader, path string) (status int, body string, err error) {
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: dkv\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// The metrics endpoint holds at most metricsConnsMax connections: idle
// keep-alive connections, which net/http kept for ever without an idle
// timeout, could be opened until the node had no descriptor left for its
// log (found by review). One past the limit is answered 503 and closed,
// and counted; a slot given back serves again.
func TestMetricsEndpointBoundsItsConnections(t *testing.T) {
	maddr := freeLoopbackAddr(t)
	start(t, t.TempDir(), "--metrics-addr", maddr)
	held := make([]net.Conn, 0, metricsConnsMax)
	defer func() {
		for _, nc := range held {
			nc.Close()
		}
	}()
	for range metricsConnsMax {
		nc, err := net.Dial("tcp", maddr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, nc)
		// A whole exchange: the server has taken the connection's slot
		// before the next one is dialled.
		if status, body, err := metricsExchange(nc, bufio.NewReader(nc), "/healthz"); err != nil || status != http.StatusOK {
			t.Fatalf("connection %d of %d: %d %q %v", len(held), metricsConnsMax, status, body, err)
		}
	}
	over := func() (int, string, error) {
		nc, err := net.Dial("tcp", maddr)
		if err != nil {
			return 0, "", err
		}
		defer nc.Close()
		return metricsExchange(nc, bufio.NewReader(nc), "/healthz")
	}
	// Answered 503 at once, or (should the answer lose a race with the
	// close) cut off: never served.
	if status, body, err := over(); status == http.StatusOK || (err == nil && (status != http.StatusServiceUnavailable || !strings.Contains(body, "too many connections"))) {
		t.Fatalf("a connection past the %d held: %d %q %v; want 503, too many connections", metricsConnsMax, status, body, err)
	}
	// The held ones still work.
	if status, _, err := metricsExchange(held[0], bufio.NewReader(held[0]), "/healthz"); err != nil || status != http.StatusOK {
		t.Fatalf("a held connection after the refusal: %d %v", status, err)
	}
	// One closed gives its slot back (once the server has seen it close).
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, err := over()
		if err == nil && status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served 10 s after a held one closed: %d %v", status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Scraped on a held connection: a new one might find every slot
	// still taken.
	status, body, err := metricsExchange(held[0], bufio.NewReader(held[0]), "/metrics")
	refused := regexp.MustCompile(`\ndkv_metrics_connections_refused_total ([1-9][0-9]*)\n`)
	if err != nil || status != http.StatusOK || !refused.MatchString(body) {
		t.Errorf("/metrics on a held connection: %d %v; want dkv_metrics_connections_refused_total 1 or more in:\n%s", status, err, body)
	}
}

// frozenDisk mounts a small ext4 file system for a test to freeze
// (fsfreeze), or skips the test where it cannot (it needs root, loop
// devices, mkfs.ext4 and fsfreeze). freeze makes every write to it wait
// until thaw; the cleanups thaw and unmount it.
func frozenDisk(t *testing.T) (mnt string, freeze, thaw func()) {
	t.Helper()
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "disk.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{"mkfs.ext4", "-q", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Skipf("cannot make a file system to freeze (%s needs root and loop devices): %v %s", c[0], err, out)
		}
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	frozen := false
	freeze = func() {
		t.Helper()
		if out, err := exec.Command("fsfreeze", "-f", mnt).CombinedOutput(); err != nil {
			t.Skipf("cannot freeze %s: %v %s", mnt, err, out)
		}
		frozen = true
		// Registered now, so that it runs before the cleanups of what
		// was started before the freeze: a server waiting on the frozen
		// disk cannot die of SIGKILL until the disk thaws.
		t.Cleanup(func() {
			if frozen {
				exec.Command("fsfreeze", "-u", mnt).Run()
			}
		})
	}
	thaw = func() {
		t.Helper()
		if out, err := exec.Command("fsfreeze", "-u", mnt).CombinedOutput(); err != nil {
			t.Fatalf("cannot thaw %s: %v %s", mnt, err, out)
		}
		frozen = false
	}
	return mnt, freeze, thaw
}

// /healthz says 503 when the node does not answer: on a disk whose writes
// do not finish (frozen here), a write's turn waits in its write or fsync,
// and no client is answered, reads included, while /healthz said ok
// (found by review). Once the disk takes writes again, the write is
// answered and /healthz says ok.
func TestHealthzOfANodeStuckOnItsDisk(t *testing.T) {
	mnt, freeze, thaw := frozenDisk(t)
	maddr := freeLoopbackAddr(t)
	s := start(t, filepath.Join(mnt, "data"), "--metrics-addr", maddr)
	if body, status := httpGet(t, "http://"+maddr+"/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz before the freeze: %d %q", status, body)
	}
	freeze()
	// The set's answer, or why there is none (read here: the test's
	// goroutine alone may fail it).
	set := make(chan string, 1)
	go func() {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			set <- err.Error()
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(roundTripTimeout))
		if _, err := nc.Write([]byte(`{"op":"set","key":"k","value":"v"}` + "\n")); err != nil {
			set <- err.Error()
			return
		}
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil {
			line += err.Error()
		}
		set <- line
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		body, status := httpGet(t, "http://"+maddr+"/healthz")
		if status == http.StatusServiceUnavailable && strings.HasPrefix(body, "not answering: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz of a node stuck on a frozen disk: %d %q; want 503, not answering", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	thaw()
	if r := <-set; r != `{"ok":true}`+"\n" {
		t.Fatalf("the set once the disk thawed: %q", r)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		body, status := httpGet(t, "http://"+maddr+"/healthz")
		if status == http.StatusOK && body == "ok\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after the thaw: %d %q", status, body)
		}
	}
}
