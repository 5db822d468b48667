package realnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dkv/core"
	"dkv/internal/tlsfiles"
)

// testNode is a small core.Node whose ops exercise the host:
//
//	ping            reply at once
//	get k [v=ms]    reply with value k, after v milliseconds if v is given
//	block           block the loop until the test releases it
//	never           never reply
//	fail            make the next Flush fail
//	stale           reply again to the last get (a node's bug), then OK
//
// It records how many requests each turn handled, and fails the test if the
// host ever enters it from two goroutines at once.
type testNode struct {
	t        *testing.T
	env      core.Env
	busy     atomic.Int32
	startErr error
	flushErr error
	blocked  chan struct{} // a block request has entered
	release  chan struct{} // lets a block request return
	// startGate, if set, holds Start (a long recovery) until it is
	// closed; startEntered is then signalled when Start begins.
	startGate    chan struct{}
	startEntered chan struct{}

	mu        sync.Mutex
	turnSizes []int // requests handled per turn, for turns that had any
	inTurn    int
	lastGet   core.ReplyFunc // the last get's reply, for stale
}

func newTestNode(t *testing.T) *testNode {
	return &testNode{t: t, blocked: make(chan struct{}, 1), release: make(chan struct{})}
}

func (n *testNode) enter() {
	if n.busy.Add(1) != 1 {
		n.t.Errorf("node entered from two goroutines at once")
	}
}

func (n *testNode) exit() { n.busy.Add(-1) }

func (n *testNode) Start(env core.Env) error {
	n.enter()
	defer n.exit()
	n.env = env
	if n.startGate != nil {
		n.startEntered <- struct{}{}
		<-n.startGate
	}
	return n.startErr
}

func (n *testNode) HandleRequest(req *core.Request, reply core.ReplyFunc) {
	n.enter()
	defer n.exit()
	n.inTurn++
	switch req.Op {
	case "ping":
		reply(core.OKResponse())
	case "get":
		key := req.Key
		resp := core.Response{OK: true, Value: &key}
		n.lastGet = reply
		if req.Value == nil {
			reply(resp)
			return
		}
		ms, err := strconv.Atoi(*req.Value)
		if err != nil {
			reply(core.ErrorResponse(core.CodeBadRequest, "value must be a delay in ms"))
			return
		}
		n.env.Clock.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			n.enter()
			defer n.exit()
			reply(resp)
		})
	case "block":
		n.blocked <- struct{}{}
		<-n.release
		reply(core.OKResponse())
	case "stale":
		if n.lastGet != nil {
			stale := "stale"
			n.lastGet(core.Response{OK: true, Value: &stale})
		}
		reply(core.OKResponse())
	case "never":
	case "fail":
		n.flushErr = errors.New("fsync failed: input/output error")
		reply(core.OKResponse())
	default:
		reply(core.ErrorResponse(core.CodeUnknownOp, "unknown op %q", req.Op))
	}
}

func (n *testNode) HandleMessage(from core.NodeID, msg []byte) {}

func (n *testNode) Flush() error {
	n.enter()
	defer n.exit()
	n.mu.Lock()
	if n.inTurn > 0 {
		n.turnSizes = append(n.turnSizes, n.inTurn)
	}
	n.inTurn = 0
	n.mu.Unlock()
	return n.flushErr
}

func handled(n *testNode) int {
	sum := 0
	for _, k := range n.turns() {
		sum += k
	}
	return sum
}

func (n *testNode) turns() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int(nil), n.turnSizes...)
}

// holdConfig is testConfig for the tests that hold the node from one
// connection while others queue requests behind it: an event loop that
// runs the node reads none of its connections meanwhile, so those need a
// second loop (the default is one).
func holdConfig() HostConfig {
	cfg := testConfig()
	if EventLoopsSupported {
		cfg.EventLoops = 2
	}
	return cfg
}

func testConfig() HostConfig {
	cfg := DefaultHostConfig()
	cfg.RequestBytesMax = 200
	cfg.LineTimeout = 200 * time.Millisecond
	cfg.IdleTimeout = 2 * time.Second
	cfg.WriteTimeout = 2 * time.Second
	return cfg
}

type running struct {
	host *Host
	addr string
	done chan error // Run's result
}

// startHost runs node on a loopback port and stops it at the end of the test.
func startHost(t *testing.T, node core.Node, cfg HostConfig) *running {
	t.Helper()
	return startHostOn(t, node, nil, cfg, nil)
}

// startHostOn is startHost over disk d, with setup (if any) run on the host
// before it starts.
func startHostOn(t *testing.T, node core.Node, d core.Disk, cfg HostConfig, setup func(*Host)) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startHostOnListener(t, node, d, cfg, setup, ln)
}

// startHostOnListener is startHostOn on a listener of the test's own.
func startHostOnListener(t *testing.T, node core.Node, d core.Disk, cfg HostConfig, setup func(*Host), ln net.Listener) *running {
	t.Helper()
	cfg.Logf = t.Logf
	h, err := NewHost(node, d, cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if setup != nil {
		setup(h)
	}
	r := &running{host: h, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { r.done <- h.Run(context.Background(), ln) }()
	select {
	case <-h.Ready():
	case err := <-r.done:
		t.Fatalf("Run returned before ready: %v", err)
	}
	t.Cleanup(func() {
		h.Shutdown()
		r.wait(t)
	})
	return r
}

// wait returns Run's result, failing the test if it takes too long.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for a second waiter, such as the cleanup
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// line reads one raw response line.
func (c *client) line() (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c.br.ReadString('\n')
}

func (c *client) recv() *core.Response {
	c.t.Helper()
	line, err := c.line()
	if err != nil {
		c.t.Fatalf("reading a response: %v (got %q)", err, line)
	}
	resp, err := core.DecodeResponse([]byte(strings.TrimSuffix(line, "\n")))
	if err != nil {
		c.t.Fatalf("response %q: %v", line, err)
	}
	return resp
}

func (c *client) recvCode(want string) *core.Response {
	c.t.Helper()
	resp := c.recv()
	got := ""
	if resp.Error != nil {
		got = resp.Error.Code
	}
	if got != want || resp.OK != (want == "") {
		c.t.Fatalf("response %+v: error code %q, want %q", resp, got, want)
	}
	return resp
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	line, err := c.line()
	if err != io.EOF && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Fatalf("want the connection closed, got %q, %v", line, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestPipelinedResponsesKeepRequestOrder(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	// Later requests are answered first: request i waits (n-i)*2 ms.
	const n = 50
	var batch strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, `{"id":%d,"op":"get","key":"k%d","value":"%d"}`+"\n", i, i, (n-i)*2)
	}
	c.send(batch.String())
	for i := range n {
		resp := c.recvCode("")
		if string(resp.ID) != strconv.Itoa(i) || resp.Value == nil || *resp.Value != "k"+strconv.Itoa(i) {
			t.Fatalf("response %d: id %s value %v, want id %d value k%d", i, resp.ID, resp.Value, i, i)
		}
	}
}

// Many connections pipeline at once, and every tenth request is answered
// from a timer: readers and timer goroutines all take turns running the
// node, and the test node fails the test if two ever run it at once.
func TestPipelinedAcrossConnections(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	var wg sync.WaitGroup
	for conn := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, r.addr)
			var batch strings.Builder
			for i := range 200 {
				delay := ""
				if i%10 == 0 {
					delay = `,"value":"1"`
				}
				fmt.Fprintf(&batch, `{"id":"%d-%d","op":"get","key":"%d"%s}`+"\n", conn, i, i, delay)
			}
			c.send(batch.String())
			for i := range 200 {
				resp := c.recv()
				if want := fmt.Sprintf(`"%d-%d"`, conn, i); string(resp.ID) != want {
					t.Errorf("conn %d: response %d has id %s, want %s", conn, i, resp.ID, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestIDIsEchoedVerbatim(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	for _, id := range []string{`7`, `"abc"`, `{"a":[1,2]}`, `-1.5e3`} {
		c.send(`{"op":"ping","id":` + id + "}\n")
		if resp := c.recvCode(""); string(resp.ID) != id {
			t.Errorf("id %s came back as %s", id, resp.ID)
		}
	}
	c.send(`{"op":"ping"}` + "\n")
	line, err := c.line()
	if err != nil || line != `{"ok":true}`+"\n" {
		t.Errorf("request without id: response %q, %v; want no id", line, err)
	}
	// The bytes as sent, not the value re-encoded; ids that are empty or
	// null are ids too; and errors of a line that is an object carry it.
	for _, id := range []string{`null`, `""`, `{}`, `[]`, `[1, 2]`, `"\u00e9"`, `1.50`, `{ "a" : [ true ] }`} {
		c.send(`{"op":"ping","id":` + id + "}\n")
		if line, err := c.line(); err != nil || line != `{"id":`+id+`,"ok":true}`+"\n" {
			t.Errorf("id %s: response %q, %v", id, line, err)
		}
		for _, bad := range []string{
			`{"id":` + id + `,"op":"ping","seq":1}`,
			`{"op":"ping","vaule":1,"id":` + id + `}`,
			`{"id":` + id + `,"op":"ping"`,
		} {
			c.send(bad + "\n")
			if line, err := c.line(); err != nil || !strings.HasPrefix(line, `{"id":`+id+`,"ok":false,"error":{"code":"bad_request"`) {
				t.Errorf("%s: response %q, %v", bad, line, err)
			}
		}
	}
}

func TestOverlongLineIsSkippedAndConnectionStaysUsable(t *testing.T) {
	cfg := testConfig()
	r := startHost(t, newTestNode(t), cfg)
	c := dial(t, r.addr)
	long := `{"op":"get","key":"` + strings.Repeat("x", 3*cfg.RequestBytesMax) + `"}`

	// Whole in one write, with a good request behind it.
	c.send(long + "\n" + `{"op":"ping","id":1}` + "\n")
	c.recvCode(core.CodeTooLarge)
	if resp := c.recvCode(""); string(resp.ID) != "1" {
		t.Errorf("request after the long line: id %s, want 1", resp.ID)
	}

	// In pieces: the error comes before the newline does, and the rest of
	// the line, however long, is skipped.
	c.send(long[:cfg.RequestBytesMax+10])
	c.recvCode(core.CodeTooLarge)
	for range 5 {
		c.send(strings.Repeat("y", 1000))
	}
	c.send("\n" + `{"op":"ping","id":2}` + "\n")
	if resp := c.recvCode(""); string(resp.ID) != "2" {
		t.Errorf("request after the skipped line: id %s, want 2", resp.ID)
	}

	// A line exactly at the limit is served.
	exact := `{"op":"get","key":"`
	exact += strings.Repeat("z", cfg.RequestBytesMax-len(exact)-2) + `"}`
	c.send(exact + "\n")
	c.recvCode("")
}

func TestLongLineGrowsTheReadBuffer(t *testing.T) {
	cfg := testConfig()
	cfg.RequestBytesMax = 3 * readBufBytes
	r := startHost(t, newTestNode(t), cfg)
	c := dial(t, r.addr)
	key := strings.Repeat("k", 2*readBufBytes)
	c.send(`{"op":"ping","id":1}` + "\n" + `{"op":"get","key":"` + key + `"}` + "\n" + `{"op":"ping","id":2}` + "\n")
	c.recvCode("")
	if resp := c.recvCode(""); resp.Value == nil || *resp.Value != key {
		t.Fatalf("long key did not round-trip")
	}
	if resp := c.recvCode(""); string(resp.ID) != "2" {
		t.Errorf("after the long line: id %s, want 2", resp.ID)
	}
}

func TestMalformedLinesGetBadRequest(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	for _, bad := range []string{`{"op":`, `not json`, ``, "\r", `{"op":"ping","bogus":1}`} {
		c.send(bad + "\n")
		c.recvCode(core.CodeBadRequest)
		c.send(`{"op":"ping","id":"after"}` + "\r\n")
		if resp := c.recvCode(""); string(resp.ID) != `"after"` {
			t.Errorf("after %q: id %s", bad, resp.ID)
		}
	}
	c.send(`{"op":"ping","id":9,"bogus":1}` + "\n")
	if resp := c.recvCode(core.CodeBadRequest); string(resp.ID) != "9" {
		t.Errorf("bad request with an id: id %s, want 9", resp.ID)
	}
}

func TestConnectionLimit(t *testing.T) {
	cfg := testConfig()
	cfg.ConnsMax = 2
	r := startHost(t, newTestNode(t), cfg)
	a, b := dial(t, r.addr), dial(t, r.addr)
	// A served request proves each is registered.
	for _, c := range []*client{a, b} {
		c.send(`{"op":"ping"}` + "\n")
		c.recvCode("")
	}
	extra := dial(t, r.addr)
	extra.recvCode(core.CodeTooManyConns)
	extra.expectClosed()

	// Closing one makes room, once the host has noticed.
	a.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, r.addr)
		c.send(`{"op":"ping"}` + "\n")
		resp := c.recv()
		if resp.OK {
			break
		}
		if resp.Error.Code != core.CodeTooManyConns || time.Now().After(deadline) {
			t.Fatalf("after closing one: %+v", resp.Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStalledPartialLineTimesOut(t *testing.T) {
	cfg := testConfig()
	r := startHost(t, newTestNode(t), cfg)
	c := dial(t, r.addr)
	c.send(`{"op":"ping","id":1}` + "\n" + `{"op":"pi`)
	c.recvCode("")
	start := time.Now()
	c.recvCode(core.CodeTimeout)
	c.expectClosed()
	if waited := time.Since(start); waited > 10*cfg.LineTimeout {
		t.Errorf("timeout came after %v, line timeout is %v", waited, cfg.LineTimeout)
	}

	// Trickling bytes does not extend the line's time.
	c = dial(t, r.addr)
	start = time.Now()
	for i := 0; ; i++ {
		if _, err := c.nc.Write([]byte(" ")); err != nil {
			break
		}
		if time.Since(start) > 10*cfg.LineTimeout {
			t.Fatal("trickled line never timed out")
		}
		time.Sleep(cfg.LineTimeout / 10)
		if i == 20 {
			break
		}
	}
	c.recvCode(core.CodeTimeout)
}

func TestIdleConnectionIsClosedSilently(t *testing.T) {
	cfg := testConfig()
	cfg.IdleTimeout = 100 * time.Millisecond
	r := startHost(t, newTestNode(t), cfg)
	c := dial(t, r.addr)
	c.send(`{"op":"ping"}` + "\n")
	c.recvCode("")
	c.expectClosed()
}

func TestHalfClosedClientGetsItsResponses(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	// The last request has no newline; the client's EOF ends it.
	c.send(`{"op":"get","key":"a","value":"20"}` + "\n" + `{"op":"ping","id":2}`)
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if resp := c.recvCode(""); *resp.Value != "a" {
		t.Errorf("first response value %q, want a", *resp.Value)
	}
	if resp := c.recvCode(""); string(resp.ID) != "2" {
		t.Errorf("unterminated last request: id %s, want 2", resp.ID)
	}
	c.expectClosed()
}

// serverConn is the host's side of client c, once registered.
func (r *running) serverConn(t *testing.T, c *client) *conn {
	t.Helper()
	want := c.nc.LocalAddr().String()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		r.host.mu.Lock()
		for k := range r.host.conns {
			if k.nc.RemoteAddr().String() == want {
				r.host.mu.Unlock()
				return k
			}
		}
		r.host.mu.Unlock()
	}
	t.Fatalf("connection from %s not registered", want)
	return nil
}

// dialOffLoopOf dials a connection that is not served by the event loop
// that serves holder (any connection, on a host without loops). An event
// loop that runs the node does not read its connections meanwhile, so
// while holder's request holds the node, only other loops read.
func (r *running) dialOffLoopOf(t *testing.T, holder *client) *client {
	t.Helper()
	lp := r.serverConn(t, holder).lp
	for range 64 {
		c := dial(t, r.addr)
		if lp == nil || r.serverConn(t, c).lp != lp {
			return c
		}
	}
	t.Fatal("every new connection goes to the holder's event loop")
	return nil
}

// holdAndPipeline blocks the node from one connection (whose reader then
// runs it, blocked) and sends n pipelined pings on a second.
func holdAndPipeline(t *testing.T, r *running, node *testNode, n int) (holder, c *client) {
	holder, cs := holdAndSend(t, r, node, 1, strings.Repeat(`{"op":"ping"}`+"\n", n))
	return holder, cs[0]
}

// holdAndSend blocks the node from one connection and has conns more
// connections, off the holder's loop, each send lines in one write.
func holdAndSend(t *testing.T, r *running, node *testNode, conns int, lines string) (holder *client, cs []*client) {
	holder = dial(t, r.addr)
	holder.send(`{"op":"block"}` + "\n")
	<-node.blocked
	for range conns {
		c := r.dialOffLoopOf(t, holder)
		c.send(lines)
		cs = append(cs, c)
	}
	return holder, cs
}

func TestTurnTakesQueuedEventsUpToTheLimit(t *testing.T) {
	node := newTestNode(t)
	cfg := holdConfig()
	cfg.EventsPerTurnMax = 4
	r := startHost(t, node, cfg)
	// While the node is held, three connections queue three requests each
	// behind it, each connection's three in one write and so one batch.
	holder, cs := holdAndSend(t, r, node, 3, strings.Repeat(`{"op":"ping"}`+"\n", 3))
	waitFor(t, "9 requests queued", func() bool { return r.host.queued() >= 9 })
	if n := r.host.queuedEvents(); n != 3 {
		t.Errorf("%d events queued for three connections' batches, want 3", n)
	}
	close(node.release)
	holder.recvCode("")
	for _, c := range cs {
		for range 3 {
			c.recvCode("")
		}
	}
	// A reply may leave during its turn, before the turn's Flush is
	// counted: wait for the count rather than race it.
	for deadline := time.Now().Add(5 * time.Second); len(node.turns()) < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got, want := node.turns(), []int{4, 3, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("requests per turn = %v, want %v (the blocked turn goes on with one batch of 3; a batch is never split, and a turn takes no batch past 4)", got, want)
	}
}

// A batch bigger than the limit is still taken whole, as a turn's only event.
func TestTurnTakesABatchPastTheLimitWhole(t *testing.T) {
	node := newTestNode(t)
	cfg := holdConfig()
	cfg.EventsPerTurnMax = 4
	r := startHost(t, node, cfg)
	holder, c := holdAndPipeline(t, r, node, 10)
	waitFor(t, "10 requests queued", func() bool { return r.host.queued() >= 10 })
	close(node.release)
	holder.recvCode("")
	for range 10 {
		c.recvCode("")
	}
	for deadline := time.Now().Add(5 * time.Second); len(node.turns()) < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got, want := node.turns(), []int{1, 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("requests per turn = %v, want %v", got, want)
	}
}

// A full queue holds its posters until a turn takes events from it, and
// then they all get through: four connections' batches behind a held node,
// with room for two.
func TestFullQueueHoldsPostersUntilATurnMakesRoom(t *testing.T) {
	node := newTestNode(t)
	cfg := holdConfig()
	cfg.EventQueueMax = 2
	r := startHost(t, node, cfg)
	holder, cs := holdAndSend(t, r, node, 4, `{"op":"ping"}`+"\n")
	waitFor(t, "2 events queued", func() bool { return r.host.queuedEvents() >= 2 })
	for range 50 { // the posters of the other two wait meanwhile
		if n := r.host.queuedEvents(); n > 2 {
			t.Fatalf("%d events queued, past EventQueueMax 2", n)
		}
		time.Sleep(time.Millisecond)
	}
	close(node.release)
	holder.recvCode("")
	for _, c := range cs {
		c.recvCode("")
	}
}

// queued counts the requests waiting in the host's queue.
func (h *Host) queued() int {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	n := 0
	for _, q := range h.queue {
		n += q.requests
	}
	return n
}

func (h *Host) queuedEvents() int {
	h.qmu.Lock()
	defer h.qmu.Unlock()
	return len(h.queue)
}

func TestFlushErrorStopsRun(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	c.send(`{"op":"fail"}` + "\n")
	err := r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "fsync failed") {
		t.Fatalf("Run returned %v, want the node's fsync error", err)
	}
	// The reply was queued before the failing Flush and goes out, but
	// nothing more is served.
	c.recvCode("")
	c.expectClosed()
	if _, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		t.Error("listener still accepts after a fatal error")
	}
}

func TestStartErrorStopsRun(t *testing.T) {
	node := newTestNode(t)
	node.startErr = errors.New("corrupt data: wal-1 at offset 40")
	h, err := NewHost(node, nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "wal-1 at offset 40") {
		t.Fatalf("Run = %v, want the start error", err)
	}
	select {
	case <-h.Ready():
		t.Error("Ready closed although the node never started")
	default:
	}
}

// slowStart is a test node whose Start waits for the test.
func slowStart(t *testing.T) *testNode {
	n := newTestNode(t)
	n.startGate, n.startEntered = make(chan struct{}), make(chan struct{}, 1)
	return n
}

// A client that connects while the node recovers is refused at once, not
// kept waiting: the port is bound only after Start and its Flush.
func TestRunListenBindsOnlyOnceRecovered(t *testing.T) {
	node := slowStart(t)
	h, err := NewHost(node, nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- h.RunListen(context.Background(), func() (net.Listener, error) { return net.Listen("tcp", addr) })
	}()
	<-node.startEntered
	for range 3 {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
			t.Fatal("a connection was accepted during recovery")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial during recovery: %v, want connection refused", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.Addr() != nil {
		t.Errorf("Addr = %v during recovery, want nil", h.Addr())
	}
	close(node.startGate)
	<-h.Ready()
	if got := h.Addr().String(); got != addr {
		t.Errorf("Addr = %s, want %s", got, addr)
	}
	c := dial(t, addr)
	c.send(`{"op":"ping","id":1}` + "\n")
	c.recvCode("")
	h.Shutdown()
	if err := (&running{done: done}).wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// A port that is taken fails Run after recovery, clearly, and the node is
// stopped as by a Shutdown.
func TestRunListenErrorStopsRun(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	h, err := NewHost(newTestNode(t), nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- h.RunListen(context.Background(), func() (net.Listener, error) {
			return net.Listen("tcp", taken.Addr().String())
		})
	}()
	err = (&running{done: done}).wait(t)
	if err == nil || !strings.Contains(err.Error(), "cannot listen") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("RunListen = %v, want cannot listen: address in use", err)
	}
	select {
	case <-h.Ready():
		t.Error("Ready closed although nothing listens")
	default:
	}
}

// A Shutdown during recovery ends Run without binding the port.
func TestShutdownDuringRecoveryDoesNotListen(t *testing.T) {
	node := slowStart(t)
	h, err := NewHost(node, nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	var listened atomic.Bool
	done := make(chan error, 1)
	go func() {
		done <- h.RunListen(context.Background(), func() (net.Listener, error) {
			listened.Store(true)
			return net.Listen("tcp", "127.0.0.1:0")
		})
	}()
	<-node.startEntered
	h.Shutdown()
	close(node.startGate)
	if err := (&running{done: done}).wait(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if listened.Load() {
		t.Error("listen was called after a Shutdown during recovery")
	}
}

func TestShutdownClosesConnectionsAndReturnsNil(t *testing.T) {
	node := newTestNode(t)
	r := startHost(t, node, testConfig())
	c := dial(t, r.addr)
	c.send(`{"op":"ping","id":1}` + "\n")
	c.recvCode("")
	// A request the node never answers must not hold shutdown up.
	c.send(`{"op":"never"}` + "\n" + `{"op":"ping"}` + "\n")
	deadline := time.Now().Add(5 * time.Second)
	for handled(node) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r.host.Shutdown()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run after Shutdown = %v, want nil", err)
	}
	c.expectClosed()
}

func TestContextCancelStopsRun(t *testing.T) {
	h, err := NewHost(newTestNode(t), nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	<-h.Ready()
	if h.Addr().String() != ln.Addr().String() {
		t.Errorf("Addr = %v, want %v", h.Addr(), ln.Addr())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConfigMustBePositive(t *testing.T) {
	cfg := DefaultHostConfig()
	cfg.LineTimeout = 0
	if _, err := NewHost(newTestNode(t), nil, cfg); err == nil || !strings.Contains(err.Error(), "LineTimeout") {
		t.Errorf("NewHost with LineTimeout 0: err = %v, want one naming LineTimeout", err)
	}
}

func TestInflightLimitPushesBackOnTheReader(t *testing.T) {
	node := newTestNode(t)
	cfg := holdConfig()
	cfg.ConnInflightMax = 2
	r := startHost(t, node, cfg)
	holder, c := holdAndPipeline(t, r, node, 10)
	// Two pings take the two slots, and the reader then waits instead of
	// queueing the other eight.
	time.Sleep(50 * time.Millisecond)
	if n := r.host.queued(); n != 2 {
		t.Errorf("%d events queued with an in-flight limit of 2, want 2", n)
	}
	close(node.release)
	holder.recvCode("")
	for range 10 {
		c.recvCode("")
	}
}

func TestShutdownSendsReadyResponsesInOrder(t *testing.T) {
	h, err := NewHost(newTestNode(t), nil, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	server, clientEnd := net.Pipe()
	defer clientEnd.Close()
	c := newConn(h, server)
	id := func(s string) core.Response { r := core.OKResponse(); r.ID = []byte(s); return r }
	for _, s := range []*slot{filledSlot(id("1")), filledSlot(id("2")), {}, filledSlot(id("4"))} {
		// The third is never answered; the fourth is, but behind it.
		if !c.push(s) {
			t.Fatal("push refused")
		}
	}
	c.shutdown()
	h.wg.Add(1)
	go c.write()
	got, err := io.ReadAll(clientEnd)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":1,"ok":true}` + "\n" + `{"id":2,"ok":true}` + "\n"; string(got) != want {
		t.Errorf("after shutdown the client got %q, want %q", got, want)
	}
	h.wg.Wait()
}

func TestShutdownIsNotHeldUpByAClientThatDoesNotRead(t *testing.T) {
	shutdownWithAStuckClient(t, testConfig(), func(addr string) *client { return dial(t, addr) })
}

// The same over TLS, whose closing alert waits 5 s of its own for a client
// that does not read, unless the TCP connection is closed under it.
func TestShutdownIsNotHeldUpByATLSClientThatDoesNotRead(t *testing.T) {
	f := testCerts(t)
	cfg := testConfig()
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	shutdownWithAStuckClient(t, cfg, func(addr string) *client { return dialTLS(t, addr, testClientTLS(t, f.CA, "", "")) })
}

func shutdownWithAStuckClient(t *testing.T, cfg HostConfig, dial func(addr string) *client) {
	cfg.RequestBytesMax = 1 << 20
	cfg.WriteTimeout = time.Minute
	node := newTestNode(t)
	r := startHost(t, node, cfg)
	c := dial(r.addr)
	// Megabytes of responses that the client never reads fill both socket
	// buffers, and the writer blocks.
	key := strings.Repeat("k", 100<<10)
	go func() {
		for range 100 {
			if _, err := io.WriteString(c.nc, `{"op":"get","key":"`+key+`"}`+"\n"); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for handled(node) < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	r.host.Shutdown()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*shutdownWriteTimeout {
		t.Errorf("shutdown took %v with a stuck client, want about %v", took, shutdownWriteTimeout)
	}
}

// After the writer goroutine has sent something, under a write deadline,
// and that deadline has passed, the loop still sends replies directly: the
// old deadline must not make every direct write fail.
func TestDirectSendAfterWriterDeadlinePassed(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 50 * time.Millisecond
	h, err := NewHost(newTestNode(t), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	clientEnd, server := loopbackPair(t)
	c := newConn(h, server)
	h.wg.Add(1)
	go c.write()
	defer func() { c.readerStopped(); c.shutdown() }()
	br := bufio.NewReader(clientEnd)

	// The first reply goes through the writer goroutine: the loop finds
	// the socket taken (wmu held) and wakes the writer instead.
	s1 := &slot{req: &core.Request{Op: core.OpPing}}
	if !c.push(s1) {
		t.Fatal("push refused")
	}
	c.wmu.Lock()
	fillLater := make(chan bool)
	go func() {
		_, _, ok := c.fill(s1, s1.gen, core.OKResponse())
		h.flushReplies() // as the end of a turn does
		fillLater <- ok
	}()
	time.Sleep(20 * time.Millisecond)
	c.wmu.Unlock()
	<-fillLater
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * cfg.WriteTimeout)

	// The second is sent by the loop itself.
	s2 := &slot{}
	if !c.push(s2) {
		t.Fatal("push refused")
	}
	c.mu.Lock()
	s2.resp, s2.filled = core.OKResponse(), true
	c.mu.Unlock()
	if !c.sendNow() {
		t.Fatal("sendNow failed on an idle socket whose last write deadline had passed")
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
}

// Shutdown ends even under a load that never lets the queue empty: new
// requests are refused once it starts, and the loop looks up from its
// turns to notice it.
func TestShutdownUnderSustainedLoad(t *testing.T) {
	node := newTestNode(t)
	r := startHost(t, node, testConfig())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		nc, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		wg.Add(2)
		go func() { // writes pings as fast as the socket takes them
			defer wg.Done()
			batch := []byte(strings.Repeat(`{"op":"ping"}`+"\n", 64))
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := nc.Write(batch); err != nil {
					return
				}
			}
		}()
		go func() { // and reads every answer
			defer wg.Done()
			io.Copy(io.Discard, nc)
		}()
	}
	for handled(node) < 10_000 {
		time.Sleep(time.Millisecond)
	}
	r.host.Shutdown()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run after Shutdown = %v, want nil", err)
	}
	close(stop)
	wg.Wait()
}

// onlyConn is the host's one client connection, once it is registered.
func (r *running) onlyConn(t *testing.T) *conn {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		r.host.mu.Lock()
		for c := range r.host.conns {
			if len(r.host.conns) == 1 {
				r.host.mu.Unlock()
				return c
			}
		}
		r.host.mu.Unlock()
	}
	t.Fatal("no single connection registered")
	return nil
}

// The replies of one turn to one connection leave with one write, however
// many there are.
func TestRepliesOfATurnLeaveInOneWrite(t *testing.T) {
	node := newTestNode(t)
	r := startHost(t, node, holdConfig())
	holder, c := holdAndPipeline(t, r, node, 50)
	for deadline := time.Now().Add(5 * time.Second); r.host.queued() < 50; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests queued", r.host.queued())
		}
	}
	var sc *conn
	r.host.mu.Lock()
	for k := range r.host.conns {
		k.mu.Lock()
		if k.writes.Load() == 0 && len(k.queue) == 50 {
			sc = k
		}
		k.mu.Unlock()
	}
	r.host.mu.Unlock()
	if sc == nil {
		t.Fatal("cannot find the pipelining connection")
	}
	close(node.release)
	holder.recvCode("")
	for range 50 {
		c.recvCode("")
	}
	// The replies may leave before the turn's Flush is counted.
	for deadline := time.Now().Add(5 * time.Second); len(node.turns()) < 1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := node.turns(); len(got) != 1 || got[0] != 51 {
		t.Errorf("requests per turn = %v, want [51]: the batch joins the held turn", got)
	}
	if n := sc.writes.Load(); n != 1 {
		t.Errorf("50 replies of one turn took %d writes, want 1", n)
	}
}

// A client that waits for each answer before it sends again costs one read
// per request: a read that drained the socket is not followed by another
// that could only find nothing (EAGAIN), whether the answer leaves at once
// or later (from a timer).
func TestOneReadPerRequestOfAWaitingClient(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	c.send(`{"op":"ping"}` + "\n")
	c.recvCode("")
	sc := r.onlyConn(t)
	const n = 200
	before := sc.reads.Load()
	for i := range n {
		if i%2 == 0 {
			c.send(`{"op":"ping"}` + "\n")
		} else {
			c.send(`{"op":"get","key":"k","value":"1"}` + "\n")
		}
		c.recvCode("")
	}
	// A spurious wake-up now and then may cost a read that finds nothing.
	if reads := sc.reads.Load() - before; reads > n+n/10 {
		t.Errorf("%d requests, one at a time, took %d reads, want about %d", n, reads, n)
	}
}

// A client that sends its last request and closes its side at once (the
// end of stream may come in the same readiness event as the data, which a
// read that drained the socket does not see) gets its answer and then the
// server's end of stream, soon.
func TestHalfCloseAfterACompleteRequestClosesTheConnection(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	for range 20 {
		c := dial(t, r.addr)
		c.send(`{"op":"ping","id":1}` + "\n")
		if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.recvCode("")
		start := time.Now()
		c.expectClosed()
		if waited := time.Since(start); waited > time.Second {
			t.Fatalf("the server closed %v after the answer, want within %v", waited, eofProbeDelay)
		}
		c.nc.Close()
	}
}

// A line refused by the host, in the same batch as a request the node has
// not answered yet, is answered at once: it does not wait for the node.
func TestRefusedLineDoesNotWaitForTheRestOfItsBatch(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	c.send("garbage\n" + `{"op":"never"}` + "\n")
	c.recvCode(core.CodeBadRequest)
}

// A reply made twice is dropped even when the first one's slot is already
// in use by the connection's next request (slots are reused once their
// reply is sent): the next request gets its own answer.
func TestSecondReplyNeverAnswersTheSlotsNextRequest(t *testing.T) {
	r := startHost(t, newTestNode(t), testConfig())
	c := dial(t, r.addr)
	for i := range 50 {
		c.send(`{"op":"get","key":"k` + strconv.Itoa(i) + `"}` + "\n")
		if got := c.recv(); got.Value == nil || *got.Value != "k"+strconv.Itoa(i) {
			t.Fatalf("get: %+v", got)
		}
		c.send(`{"op":"stale"}` + "\n")
		if got := c.recv(); !got.OK || got.Value != nil {
			t.Fatalf("request %d after a get, whose reply the node made twice, answered %+v", i, got)
		}
	}
}

// loopbackPair is a TCP connection over loopback: its dialed end and its
// accepted end, both closed when the test ends.
func loopbackPair(tb testing.TB) (dialed, accepted net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	dialed, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dialed.Close() })
	accepted, err = ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { accepted.Close() })
	return dialed, accepted
}

// A connection posts its requests without allocating an event each time:
// a client that waits for every answer makes its connection one batch,
// which carries each of its requests in turn, whichever host serves it.
func TestConnReusesItsRequestBatch(t *testing.T) {
	for _, loops := range []int{1, 0} {
		t.Run(fmt.Sprintf("event-loops=%d", loops), func(t *testing.T) {
			cfg := testConfig()
			cfg.EventLoops = loops
			r := startHost(t, newTestNode(t), cfg)
			nc, err := net.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			const pings = 200
			for i := range pings {
				if _, err := io.WriteString(nc, `{"op":"ping"}`+"\n"); err != nil {
					t.Fatal(err)
				}
				if _, err := br.ReadString('\n'); err != nil {
					t.Fatalf("ping %d: %v", i, err)
				}
			}
			// A reply may leave before its batch is put back, so a
			// request that follows at once may, rarely, find no spare.
			if made := r.host.batchesMade.Load(); made > pings/10 {
				t.Errorf("%d request batches made for %d requests one at a time", made, pings)
			}
		})
	}
}
