package sim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Addr names an endpoint of the simulated network: a node or a client.
type Addr int32

// Nobody is the address of the world itself, in the trace.
const Nobody Addr = -1

// clientBase separates client addresses from node ids.
const clientBase Addr = 1000

// NodeAddr is the address of node id.
func NodeAddr(id int) Addr { return Addr(id) }

// ClientAddr is the address of client i.
func ClientAddr(i int) Addr { return clientBase + Addr(i) }

// IsNode reports whether a is a node.
func (a Addr) IsNode() bool { return a >= 0 && a < clientBase }

func (a Addr) String() string {
	switch {
	case a == Nobody:
		return "-"
	case a.IsNode():
		return fmt.Sprintf("n%d", int(a))
	default:
		return fmt.Sprintf("c%d", int(a-clientBase))
	}
}

// LinkFaults is the weather on one class of links.
type LinkFaults struct {
	// Every message takes a latency drawn uniformly from [LatencyMin,
	// LatencyMax], in steps of latencyQuantum, plus with SlowProb an extra
	// delay up to SlowMax (a long tail: a retransmission, a GC pause).
	LatencyMin, LatencyMax time.Duration
	SlowProb               float64
	SlowMax                time.Duration
	// HoldProb is the chance that a message is held, up to HoldMax, well
	// past a client's patience: a stalled connection whose bytes a node
	// reads long after its client gave up and retried elsewhere. (The
	// link is FIFO, so those after it on the link wait too.)
	HoldProb float64
	HoldMax  time.Duration
	// DropProb loses a message; DupProb delivers it a second time, with a
	// latency of its own.
	DropProb, DupProb float64
	// A link is FIFO, as a TCP stream is: a message is never delivered
	// before an earlier one on the same link. ReorderProb is the chance that
	// a message ignores that and arrives after its own latency only.
	ReorderProb float64
}

// latencyQuantum makes latencies whole multiples so that messages from
// different senders often arrive at the same virtual instant, where the
// host folds them into one turn: that is what exercises group commit.
const latencyQuantum = 100 * time.Microsecond

type link struct{ from, to Addr }

// connKey is one connection on a link, for its FIFO order: a client that
// gives up on a request abandons its connection and opens another, whose
// bytes do not wait behind the old one's (Streamed).
type connKey struct {
	link
	conn int
}

// Streamed is a message that names the connection it travels on.
type Streamed interface{ Conn() int }

// Network carries messages between endpoints with the faults of its link
// classes: Peer between two nodes, Client between a client and a node.
// Partitions cut links one way or both; a message on a cut link is lost,
// whether it was cut when the message was sent or while it was in flight.
type Network struct {
	w       *World
	r       *rand.Rand
	Peer    LinkFaults
	Client  LinkFaults
	blocked map[link]bool
	// last is the latest arrival scheduled on each link, for FIFO. Maps
	// here are only looked up, never iterated, so their order cannot leak.
	last    map[connKey]int64
	deliver func(from, to Addr, msg any)
	// inFlight counts scheduled arrivals, per class, so the run can wait
	// for stragglers before it judges.
	inFlight [2]int64
	// Counters, for the run's report.
	Sent, Delivered, Dropped, Duplicated, Cut int64
}

// Link classes, indexes of inFlight.
const (
	classClient = iota
	classPeer
)

func class(from, to Addr) int {
	if from.IsNode() && to.IsNode() {
		return classPeer
	}
	return classClient
}

// InFlight is the number of client↔node messages on the wire.
func (n *Network) InFlight() int64 { return n.inFlight[classClient] }

// NewNetwork returns a fault-free network that calls deliver at each
// arrival. r is the network's own random stream.
func NewNetwork(w *World, r *rand.Rand, deliver func(from, to Addr, msg any)) *Network {
	return &Network{w: w, r: r, blocked: map[link]bool{}, last: map[connKey]int64{}, deliver: deliver}
}

func (n *Network) faults(from, to Addr) *LinkFaults {
	if from.IsNode() && to.IsNode() {
		return &n.Peer
	}
	return &n.Client
}

func (n *Network) chance(p float64) bool { return p > 0 && n.r.Float64() < p }

// Send puts msg on the link from→to. The receiver gets the same value, so
// senders must not modify it afterwards.
func (n *Network) Send(from, to Addr, msg any) {
	n.Sent++
	l := link{from, to}
	f := n.faults(from, to)
	if n.blocked[l] {
		n.Cut++
		n.w.Trace.Add(n.w.now, from, "net-cut", int64(to), 0, "")
		return
	}
	if n.chance(f.DropProb) {
		n.Dropped++
		n.w.Trace.Add(n.w.now, from, "net-drop", int64(to), 0, "")
		return
	}
	copies := 1
	if n.chance(f.DupProb) {
		copies = 2
		n.Duplicated++
	}
	for i := 0; i < copies; i++ {
		at := n.w.now + n.latency(f)
		if !n.chance(f.ReorderProb) {
			// FIFO: queue behind the latest message on this connection.
			st := connKey{link: l}
			if sm, ok := msg.(Streamed); ok {
				st.conn = sm.Conn()
			}
			at = max(at, n.last[st])
			n.last[st] = at
		}
		n.inFlight[class(from, to)]++
		n.w.At(at, func() { n.arrive(l, msg) })
	}
}

func (n *Network) latency(f *LinkFaults) int64 {
	lo, hi := int64(f.LatencyMin/latencyQuantum), int64(f.LatencyMax/latencyQuantum)
	steps := lo
	if hi > lo {
		steps += n.r.Int64N(hi - lo + 1)
	}
	d := steps * int64(latencyQuantum)
	if f.SlowMax > 0 && n.chance(f.SlowProb) {
		d += n.r.Int64N(int64(f.SlowMax/latencyQuantum)+1) * int64(latencyQuantum)
	}
	if f.HoldMax > 0 && n.chance(f.HoldProb) {
		d += n.r.Int64N(int64(f.HoldMax/latencyQuantum)+1) * int64(latencyQuantum)
	}
	return d
}

func (n *Network) arrive(l link, msg any) {
	n.inFlight[class(l.from, l.to)]--
	if n.blocked[l] {
		n.Cut++
		n.w.Trace.Add(n.w.now, l.to, "net-cut", int64(l.from), 1, "")
		return
	}
	n.Delivered++
	n.deliver(l.from, l.to, msg)
}

// Block cuts the link from→to (one way).
func (n *Network) Block(from, to Addr) { n.blocked[link{from, to}] = true }

// Unblock restores the link from→to.
func (n *Network) Unblock(from, to Addr) { delete(n.blocked, link{from, to}) }

// Blocked reports whether from→to is cut.
func (n *Network) Blocked(from, to Addr) bool { return n.blocked[link{from, to}] }

// Partition cuts every link between side and the rest of all: both ways, or
// with oneWay only the links leaving side (side can hear, not speak).
func (n *Network) Partition(side, all []Addr, oneWay bool) {
	in := map[Addr]bool{}
	for _, a := range side {
		in[a] = true
	}
	for _, a := range side {
		for _, b := range all {
			if in[b] {
				continue
			}
			n.Block(a, b)
			if !oneWay {
				n.Block(b, a)
			}
		}
	}
}

// Heal restores every link.
func (n *Network) Heal() { clear(n.blocked) }

// Partitioned reports whether any link is cut.
func (n *Network) Partitioned() bool { return len(n.blocked) > 0 }
