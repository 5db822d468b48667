package realnet

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"dkv/core"
	"dkv/disk"
)

// recordedMetrics is a Metrics that keeps every call.
type recordedMetrics struct {
	mu       sync.Mutex
	turns    int
	requests []RequestSample
	refused  []string
	conns    int
	opened   int
	rejected int
	// tlsFailed counts TLSHandshakeFailed's calls.
	tlsFailed int
	fsyncs    []string
	// nodeTurns and turnEvents count Turn's calls and their events.
	nodeTurns, turnEvents int
	// gathered counts Gathered's calls by outcome.
	gathered map[string]int
}

func (m *recordedMetrics) Requests(turn []RequestSample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.turns++
	m.requests = append(m.requests, turn...)
}

func (m *recordedMetrics) Refused(code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refused = append(m.refused, code)
}

func (m *recordedMetrics) Conn(delta int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns += delta
	if delta > 0 {
		m.opened++
	}
}

func (m *recordedMetrics) ConnRefused() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejected++
}

func (m *recordedMetrics) TLSHandshakeFailed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tlsFailed++
}

func (m *recordedMetrics) Fsync(file string, elapsed time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil && elapsed > 0 {
		m.fsyncs = append(m.fsyncs, file)
	}
}

func (m *recordedMetrics) Gathered(outcome string, waited time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gathered == nil {
		m.gathered = make(map[string]int)
	}
	m.gathered[outcome]++
}

func (m *recordedMetrics) Turn(elapsed time.Duration, events int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if elapsed > 0 {
		m.nodeTurns++
		m.turnEvents += events
	}
}

func (m *recordedMetrics) snapshot() recordedMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	return recordedMetrics{turns: m.turns, requests: slices.Clone(m.requests), refused: slices.Clone(m.refused),
		conns: m.conns, opened: m.opened, rejected: m.rejected, fsyncs: slices.Clone(m.fsyncs),
		nodeTurns: m.nodeTurns, turnEvents: m.turnEvents}
}

// fileNode is a testNode whose "set" appends to a file and syncs it.
type fileNode struct {
	*testNode
	f core.File
}

func (n *fileNode) Start(env core.Env) error {
	if err := n.testNode.Start(env); err != nil {
		return err
	}
	f, err := env.Disk.Create("data.log")
	n.f = f
	return err
}

func (n *fileNode) HandleRequest(req *core.Request, reply core.ReplyFunc) {
	if req.Op != core.OpSet {
		n.testNode.HandleRequest(req, reply)
		return
	}
	if err := n.f.Append([]byte(req.Key)); err != nil {
		reply(core.ErrorResponse(core.CodeIOError, "%v", err))
		return
	}
	if err := n.f.Sync(); err != nil {
		reply(core.ErrorResponse(core.CodeIOError, "%v", err))
		return
	}
	reply(core.OKResponse())
}

// startHostWith is startHost on a real data directory, reporting to m.
func startHostWith(t *testing.T, node core.Node, cfg HostConfig, m Metrics) *running {
	t.Helper()
	d, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return startHostOn(t, node, d, cfg, func(h *Host) { h.SetMetrics(m) })
}

// Every answered line is reported once: the node's answers with their op,
// code and time, a turn's together; the host's own refusals with their
// code. Connections are counted in and out, and refused ones apart; an
// fsync is timed with its file, and every turn with its events.
func TestMetricsHearRequestsConnectionsAndFsyncs(t *testing.T) {
	m := &recordedMetrics{}
	cfg := testConfig()
	cfg.ConnsMax = 1
	r := startHostWith(t, &fileNode{testNode: newTestNode(t)}, cfg, m)
	c := dial(t, r.addr)
	c.send(`{"op":"ping"}` + "\n" + `{"op":"get","key":"k","value":"x"}` + "\n" + `{"op":"nope"}` + "\n" +
		"garbage\n" + `{"op":"set","key":"k","value":"v"}` + "\n" + string(make([]byte, 300)) + "\n")
	for _, want := range []string{"", core.CodeBadRequest, core.CodeUnknownOp, core.CodeBadRequest, "", core.CodeTooLarge} {
		c.recvCode(want)
	}
	extra := dial(t, r.addr)
	extra.recvCode(core.CodeTooManyConns)

	// The node's answers are reported at the end of their turn, which
	// may come just after the client has them.
	var got recordedMetrics
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if got = m.snapshot(); (len(got.requests) >= 4 && got.turnEvents >= 4) || time.Now().After(deadline) {
			break
		}
	}
	want := []RequestSample{{core.OpPing, "", 0}, {core.OpGet, core.CodeBadRequest, 0}, {"nope", core.CodeUnknownOp, 0}, {core.OpSet, "", 0}}
	if len(got.requests) != len(want) || got.turns < 1 || got.turns > len(want) {
		t.Fatalf("requests %+v in %d turns, want %+v", got.requests, got.turns, want)
	}
	for i, w := range want {
		g := got.requests[i]
		if g.Op != w.Op || g.Code != w.Code || g.Elapsed <= 0 {
			t.Errorf("request %d: %+v, want op %q code %q, timed", i, g, w.Op, w.Code)
		}
	}
	// Each turn is timed, after its replies, with its events: the four
	// requests the node answered among them.
	if got.nodeTurns < 1 || got.turnEvents < len(want) {
		t.Errorf("%d turns timed with %d events, for %d requests the node answered", got.nodeTurns, got.turnEvents, len(want))
	}
	if !slices.Equal(got.refused, []string{core.CodeBadRequest, core.CodeTooLarge}) {
		t.Errorf("refused lines %v, want bad_request, too_large", got.refused)
	}
	if !slices.Equal(got.fsyncs, []string{"data.log"}) {
		t.Errorf("fsyncs %v, want one of data.log", got.fsyncs)
	}
	if got.conns != 1 || got.opened != 1 || got.rejected != 1 {
		t.Errorf("conns %d open, %d opened, %d refused; want 1, 1, 1", got.conns, got.opened, got.rejected)
	}
	c.nc.Close()
	for deadline := time.Now().Add(5 * time.Second); m.snapshot().conns != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a closed connection is still counted: %d open", m.snapshot().conns)
		}
	}
}

// Inspect runs its func as one of the node's events, never beside the
// node (testNode fails the test if it is entered twice at once), waits
// at most as long as its context, and refuses before recovery and after
// the host stopped.
func TestInspectRunsBetweenTheNodesEvents(t *testing.T) {
	node := slowStart(t)
	h, err := NewHost(node, nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- h.RunListen(context.Background(), func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") })
	}()
	<-node.startEntered
	if err := h.Inspect(context.Background(), func(core.Node) {}); !errors.Is(err, ErrNotServing) {
		t.Fatalf("Inspect during recovery = %v, want ErrNotServing", err)
	}
	close(node.startGate)
	<-h.Ready()

	inspect := func(timeout time.Duration) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		ran := false
		err := h.Inspect(ctx, func(n core.Node) {
			tn := n.(*testNode)
			tn.enter()
			ran = true
			tn.exit()
		})
		return ran, err
	}
	if ran, err := inspect(5 * time.Second); err != nil || !ran {
		t.Fatalf("Inspect = %v, ran %v", err, ran)
	}

	// While the node is held up, Inspect waits no longer than asked.
	c := dial(t, h.Addr().String())
	c.send(`{"op":"block"}` + "\n")
	<-node.blocked
	start := time.Now()
	if _, err := inspect(50 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Inspect of a busy node = %v, want DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("Inspect waited %v", waited)
	}
	node.release <- struct{}{}
	c.recvCode("")
	if ran, err := inspect(5 * time.Second); err != nil || !ran {
		t.Fatalf("Inspect after the node was released = %v, ran %v", err, ran)
	}

	h.Shutdown()
	if err := (&running{done: done}).wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, err := inspect(5 * time.Second); !errors.Is(err, ErrNotServing) {
		t.Errorf("Inspect after Run returned = %v, want ErrNotServing", err)
	}
}
