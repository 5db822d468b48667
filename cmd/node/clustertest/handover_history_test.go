package clustertest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dkv/checks"
	"dkv/core"
	"dkv/internal/historytest"
	"dkv/internal/nodeproc"
)

// The history check of TestClusterHistoryIsLinearizable across graceful
// stops: the leader gets SIGTERM, hands the office over
// (election.Node.HandOver, cmd/node's handOver) and exits, and is started
// again, several times in a row; then the same with the hand-over target
// SIGKILLed the moment the leader names it, the new leader SIGKILLed the
// moment the old one has exited, and the leader stopped while a follower
// is down, so that the target is the only other node. Callers make every
// kind of call (reads, writes, conditional writes, incrs, bulk_sets), four
// of them on one shared client's connection; pipeliners send a set and a
// get of a key of their own in one write on one raw connection, whose
// answers must keep the connection's order (the get sees the set it
// follows if that was acknowledged, and not if it was refused). The
// history must be linearizable, every acknowledged write readable at the
// end, and every hand-over that succeeded must have gone, by every node's
// log, to the node that then led, in the next term.
func TestClusterHistoryIsLinearizableAcrossHandOvers(t *testing.T) {
	c := startCluster(t)
	waitLeader(t, c)

	rec := historytest.NewRecorder()
	const workers, keys = 6, 24
	shared := dialCluster(t, c.Addrs())
	cs := startCallers(workers, func(w int) historytest.Caller {
		kv := shared
		if w >= 4 {
			kv = dialCluster(t, c.Addrs())
		}
		return historytest.Caller{KV: kv, Keys: keys, Rand: rand.New(rand.NewPCG(uint64(w), 29)), ID: w, Rec: rec,
			Patient: 5 * time.Second, Impatient: 3 * time.Millisecond}
	})
	const pipeliners = 2
	ps := make([]*pipeliner, pipeliners)
	var pwg sync.WaitGroup
	for w := range ps {
		ps[w] = &pipeliner{id: 100 + w, key: fmt.Sprint("p", w), addrs: c.Addrs(), next: w, rec: rec, stop: &cs.stop}
		pwg.Add(1)
		go func() { defer pwg.Done(); ps[w].run() }()
	}
	halt := func() { cs.halt(); pwg.Wait() }
	progress := func(n int64) {
		t.Helper()
		cs.progress(t, n)
	}
	defer halt()

	progress(1000)
	// Plain hand-overs, one after the other.
	for round := range 3 {
		lead, before := waitLeader(t, c)
		if err := c.Stop(lead, waitMax); err != nil {
			t.Fatalf("round %d: node %d on SIGTERM: %v", round, lead, err)
		}
		to := checkHandedOver(t, c, lead, before.Term)
		t.Logf("round %d: node %d handed the office to node %d; %d calls made", round, lead, to, cs.done.Load())
		progress(300)
		start(t, c, lead)
		progress(300)
	}

	// The target SIGKILLed as soon as the leader names it: the hand-over
	// fails (or the target had stood already), and the leader exits
	// leading or not; a majority is back once both are started again.
	{
		lead, _ := waitLeader(t, c)
		p := c.Process(lead)
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		to := waitLogged(t, p, regexp.MustCompile(`handing the office to node (\d+)`))
		c.Kill(to)
		if err := p.Wait(waitMax); err != nil {
			t.Fatalf("node %d on SIGTERM: %v", lead, err)
		}
		t.Logf("node %d named node %d to take the office, which was killed; %d calls made", lead, to, cs.done.Load())
		start(t, c, to)
		start(t, c, lead)
		progress(300)
	}

	// The new leader SIGKILLed as soon as the old one has exited: the
	// writes the old one held and sent on to it may be lost with it only
	// if they were not acknowledged.
	{
		lead, before := waitLeader(t, c)
		if err := c.Stop(lead, waitMax); err != nil {
			t.Fatalf("node %d on SIGTERM: %v", lead, err)
		}
		to := checkHandedOver(t, c, lead, before.Term)
		c.Kill(to)
		t.Logf("node %d handed the office to node %d, which was killed; %d calls made", lead, to, cs.done.Load())
		start(t, c, lead)
		start(t, c, to)
		progress(300)
	}

	// The leader stopped while a follower is down: the other follower is
	// the only node that can take the office, and leads alone until the
	// two are started again.
	{
		first, _ := waitLeader(t, c)
		down := (first + 1) % c.Size()
		c.Kill(down)
		progress(300) // through the leader and the last follower, whose log grows past down's
		// The same leader, but for an election on a busy machine.
		lead, before := waitLeader(t, c)
		if err := c.Stop(lead, waitMax); err != nil {
			t.Fatalf("node %d on SIGTERM: %v", lead, err)
		}
		to := checkHandedOver(t, c, lead, before.Term)
		if to == down {
			t.Errorf("node %d handed the office to node %d, which was down", lead, to)
		}
		t.Logf("node %d, with node %d down, handed the office to node %d; %d calls made", lead, down, to, cs.done.Load())
		start(t, c, down)
		start(t, c, lead)
		progress(300)
	}
	halt()

	waitLeader(t, c)
	kv := dialCluster(t, c.Addrs())
	historytest.FinalReads(t, kv, workers, keys, waitMax, rec)
	for w, p := range ps {
		historytest.FinalRead(t, kv, 200, w, p.key, waitMax, rec)
		t.Logf("pipeliner %d: %d batches sent, %d sets acknowledged, %d gets answered, gets refused %v", w, p.batches, p.acked, p.reads, p.readsRefused)
		for _, e := range p.wrong {
			t.Error(e)
		}
	}
	historytest.Judge(t, rec, 3000)
}

// start starts node i again, failing the test if it does not serve.
func start(t *testing.T, c *nodeproc.Cluster, i int) {
	t.Helper()
	if _, err := c.Start(i); err != nil {
		t.Fatal(err)
	}
}

// waitLogged waits until p's log has a line that re matches, and returns
// the number of its first group.
func waitLogged(t *testing.T, p *nodeproc.Process, re *regexp.Regexp) int {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for {
		if m := re.FindStringSubmatch(p.Stderr()); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %q in the log after %v:\n%s", re, waitMax, p.Stderr())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// checkHandedOver checks, once node lead, which led in term, has exited on
// SIGTERM, that its log says it handed the office over, and that every
// node's log agrees on to whom: that node became leader in the term lead
// last knew of, after its own, and every other running node followed it
// in that term. It returns the new leader.
func checkHandedOver(t *testing.T, c *nodeproc.Cluster, lead int, term uint64) int {
	t.Helper()
	logs := c.Process(lead).Stderr()
	m := regexp.MustCompile(`handed the office to node (\d+) in`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("node %d's log does not say it handed the office over:\n%s", lead, logs)
	}
	to, _ := strconv.Atoi(m[1])
	if to == lead || to < 0 || to >= c.Size() {
		t.Fatalf("node %d handed the office to node %d", lead, to)
	}
	// The term it knew the new leader in, from its last word of a leader:
	// past its own. (Not term+1 exactly: on a busy machine a follower
	// may time out and stand meanwhile, and the hand-over is an election
	// a term later.)
	fm := regexp.MustCompile(`following node (\d+), the leader at term (\d+)`).FindAllStringSubmatch(logs, -1)
	if fm == nil {
		t.Fatalf("node %d handed the office to node %d, but its log names no leader it followed:\n%s", lead, to, logs)
	}
	last := fm[len(fm)-1]
	next, _ := strconv.ParseUint(last[2], 10, 64)
	if last[1] != m[1] || next <= term {
		t.Errorf("node %d, leader in term %d, handed the office to node %d, but the last leader its log names is node %s in term %d:\n%s", lead, term, to, last[1], next, logs)
	}
	wants := map[int]string{to: fmt.Sprintf("became leader at term %d", next)}
	for i := range c.Size() {
		if i != lead && i != to && c.Node(i) != nil {
			wants[i] = fmt.Sprintf("following node %d, the leader at term %d", to, next)
		}
	}
	for i, want := range wants {
		// A follower may hear of the new leader a moment later.
		deadline := time.Now().Add(waitMax)
		for !strings.Contains(c.Process(i).Stderr(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("node %d handed the office to node %d, but node %d's log does not say %q:\n%s", lead, to, i, want, c.Process(i).Stderr())
			}
			time.Sleep(time.Millisecond)
		}
	}
	return to
}

// pipeliner sends, on one raw connection, a set of its own key and a get
// of it in one write, pair after pair, and records both in the history.
// On one connection requests take effect in the order sent
// (docs/PROTOCOL.md): a get answered after an acknowledged set must read
// its value, and one after a set refused without effect must not.
type pipeliner struct {
	id    int
	key   string
	addrs []string
	next  int // the node to dial next
	rec   *historytest.Recorder
	stop  interface{ Load() bool }

	nc net.Conn
	rd *bufio.Reader

	batches, acked, reads int
	readsRefused          map[string]int // by code
	wrong                 []string
}

// drop closes the connection, and moves on to the next node.
func (p *pipeliner) drop() {
	if p.nc != nil {
		p.nc.Close()
		p.nc = nil
	}
	p.next = (p.next + 1) % len(p.addrs)
}

// pipelineWait bounds one pair's answers: longer than a hand-over's wait
// (cmd/node's handOverWait) and an election.
const pipelineWait = 5 * time.Second

type rawResponse struct {
	OK    bool    `json:"ok"`
	Value *string `json:"value"`
	Error *struct {
		Code   string `json:"code"`
		Leader string `json:"leader"`
	} `json:"error"`
}

func (p *pipeliner) run() {
	defer p.drop()
	r := rand.New(rand.NewPCG(uint64(p.id), 31))
	// What the key holds, as far as this pipeliner, its only writer,
	// knows: known is false from a set of unknown outcome to the next
	// one acknowledged.
	known, found, cur := true, false, ""
	req := 0
	p.readsRefused = map[string]int{}
	for !p.stop.Load() {
		if p.nc == nil {
			nc, err := net.DialTimeout("tcp", p.addrs[p.next], time.Second)
			if err != nil {
				p.drop()
				time.Sleep(2 * time.Millisecond)
				continue
			}
			p.nc, p.rd = nc, bufio.NewReader(nc)
		}
		// A batch of 2 to 6 sets and gets, in one write.
		ops := make([]checks.Op, 2+r.IntN(5))
		var line strings.Builder
		for i := range ops {
			op := checks.Op{Client: p.id, Req: req, Kind: checks.KindGet, Key: p.key}
			if i == 0 || r.IntN(2) == 0 {
				op.Kind, op.Value = checks.KindSet, fmt.Sprintf("c%d.%d", p.id, req)
				fmt.Fprintf(&line, `{"id":%d,"op":"set","key":%q,"value":%q}`+"\n", req, p.key, op.Value)
			} else {
				fmt.Fprintf(&line, `{"id":%d,"op":"get","key":%q}`+"\n", req, p.key)
			}
			req++
			ops[i] = op
		}
		p.nc.SetDeadline(time.Now().Add(pipelineWait))
		call := p.rec.Now()
		p.batches++
		_, err := p.nc.Write([]byte(line.String()))
		var refused *rawResponse
		for i := range ops {
			op := &ops[i]
			op.Call = call
			var resp *rawResponse
			if err == nil {
				resp, err = readResponse(p.rd)
			}
			op.Return = p.rec.Now()
			if op.Kind == checks.KindSet {
				switch {
				case err != nil:
					op.Outcome, op.Note = checks.Unknown, err.Error()
					known = false
				case resp.OK:
					op.Outcome = checks.OK
					known, found, cur = true, true, op.Value
					p.acked++
				case resp.Error != nil && (resp.Error.Code == core.CodeNotLeader || resp.Error.Code == core.CodeUnavailable):
					// Not applied, and never to be.
					op.Outcome, op.Note = checks.Failed, resp.Error.Code
					refused = resp
				default:
					op.Outcome, op.Note = checks.Unknown, fmt.Sprintf("%+v", resp.Error)
					known = false
				}
				p.rec.Record(*op)
				continue
			}
			switch {
			case err != nil:
				continue // a read unanswered observed nothing
			case resp.OK && resp.Value != nil:
				op.Outcome, op.Found, op.Value = checks.OK, true, *resp.Value
			case resp.Error != nil && resp.Error.Code == core.CodeNotFound:
				op.Outcome = checks.OK
			default:
				refused = resp
				if resp.Error != nil {
					p.readsRefused[resp.Error.Code]++
				}
				continue // a read refused observed nothing
			}
			p.rec.Record(*op)
			p.reads++
			if known && (op.Found != found || op.Value != cur) {
				p.wrong = append(p.wrong, fmt.Sprintf("%s: a get of %s pipelined after the sets before it on its connection read %q (found %v); the last acknowledged, with none of unknown outcome since, wrote %q (found %v)",
					p.addrs[p.next], p.key, op.Value, op.Found, cur, found))
			}
		}
		if err != nil {
			p.drop()
			continue
		}
		if refused != nil {
			p.follow(refused)
		}
	}
}

// follow goes on at the leader a not_leader answer names, or at the next
// node if it names none, after a pause.
func (p *pipeliner) follow(r *rawResponse) {
	if r.Error == nil || (r.Error.Code != core.CodeNotLeader && r.Error.Code != core.CodeUnavailable) {
		return
	}
	if i := slices.Index(p.addrs, r.Error.Leader); i >= 0 {
		p.next = (i + len(p.addrs) - 1) % len(p.addrs) // drop moves on to it
	} else {
		time.Sleep(2 * time.Millisecond)
	}
	p.drop()
}

func readResponse(rd *bufio.Reader) (*rawResponse, error) {
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var r rawResponse
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("answer %q: %w", line, err)
	}
	return &r, nil
}
