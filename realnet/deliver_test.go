package realnet

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"dkv/core"
)

// peerNode records peer messages and holds Start until released, to show
// that a message that arrives while the node starts waits for it.
type peerNode struct {
	*testNode
	started  chan struct{} // Start has been entered
	finish   chan struct{} // lets Start return
	messages atomic.Int32
	early    atomic.Bool // a message ran before Start returned
	done     atomic.Bool // Start has returned
}

func (n *peerNode) Start(env core.Env) error {
	close(n.started)
	<-n.finish
	err := n.testNode.Start(env)
	n.done.Store(true)
	return err
}

func (n *peerNode) HandleMessage(from core.NodeID, msg []byte) {
	n.enter()
	defer n.exit()
	if !n.done.Load() {
		n.early.Store(true)
	}
	if from != 2 || string(msg) != "hello" {
		n.t.Errorf("message from %d: %q", from, msg)
	}
	n.messages.Add(1)
}

func TestPeerMessagesWaitForStart(t *testing.T) {
	node := &peerNode{testNode: newTestNode(t), started: make(chan struct{}), finish: make(chan struct{})}
	cfg := testConfig()
	cfg.ID = 1
	cfg.Logf = t.Logf
	h, err := NewHost(node, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background(), ln) }()
	<-node.started
	delivered := make(chan struct{})
	go func() {
		h.Deliver(2, []byte("hello"))
		close(delivered)
	}()
	// Deliver queues and returns: the role is Run's while Start runs.
	select {
	case <-delivered:
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver blocked while the node was starting")
	}
	close(node.finish)
	<-h.Ready()
	deadline := time.Now().Add(5 * time.Second)
	for node.messages.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if node.messages.Load() != 1 {
		t.Fatalf("the message queued during Start was handled %d times", node.messages.Load())
	}
	if node.early.Load() {
		t.Fatal("a peer message ran before Start returned")
	}
	if node.env.ID != 1 {
		t.Fatalf("the node runs as node %d, the config says 1", node.env.ID)
	}
	h.Shutdown()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
