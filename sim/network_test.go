package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// netMsg is a test message: who sent it, when, and its place in the
// sender's sequence on that link.
type netMsg struct {
	from, to Addr
	seq      int
	sentAt   int64
}

// sendRandom has the network carry a random stream of messages among a few
// nodes and clients, at random times, and returns what was sent and what
// arrived (in arrival order).
func sendRandom(t *rapid.T, n *Network, w *World, withPartitions bool) (sent []netMsg, blockedAtSend map[int]bool) {
	addrs := []Addr{NodeAddr(0), NodeAddr(1), NodeAddr(2), ClientAddr(0), ClientAddr(1)}
	seqs := map[link]int{}
	blockedAtSend = map[int]bool{}
	count := rapid.IntRange(1, 200).Draw(t, "messages")
	for i := 0; i < count; i++ {
		from := rapid.SampledFrom(addrs).Draw(t, "from")
		to := rapid.SampledFrom(addrs).Draw(t, "to")
		if from == to || !from.IsNode() && !to.IsNode() {
			continue
		}
		gap := time.Duration(rapid.IntRange(0, 5).Draw(t, "gap")) * latencyQuantum
		w.RunTo(w.Now() + int64(gap))
		if withPartitions && rapid.IntRange(0, 9).Draw(t, "weather") == 0 {
			if n.Partitioned() {
				n.Heal()
			} else {
				n.Partition([]Addr{from}, addrs, rapid.Bool().Draw(t, "oneway"))
			}
		}
		l := link{from, to}
		m := netMsg{from: from, to: to, seq: seqs[l], sentAt: w.Now()}
		seqs[l]++
		if n.Blocked(from, to) {
			blockedAtSend[len(sent)] = true
		}
		sent = append(sent, m)
		n.Send(from, to, len(sent)-1)
	}
	for w.Step() {
	}
	return sent, blockedAtSend
}

func newTestNetwork(seed uint64, f LinkFaults) (*Network, *World, *[]int) {
	w := NewWorld(0)
	var got []int
	n := NewNetwork(w, rand.New(rand.NewPCG(seed, 3)), func(from, to Addr, msg any) { got = append(got, msg.(int)) })
	n.Client, n.Peer = f, f
	return n, w, &got
}

func drawLatency(t *rapid.T) LinkFaults {
	lo := rapid.IntRange(0, 10).Draw(t, "lo")
	hi := lo + rapid.IntRange(0, 30).Draw(t, "spread")
	return LinkFaults{LatencyMin: time.Duration(lo) * latencyQuantum, LatencyMax: time.Duration(hi) * latencyQuantum}
}

// Without faults, every message arrives exactly once, no sooner than the
// minimum latency, and in order on its link (the network promises FIFO
// links, as TCP gives).
func TestNetworkDeliversEveryMessageOnceInOrder(t *testing.T) {
	skipWhenReplaying(t)
	rapid.Check(t, func(t *rapid.T) {
		f := drawLatency(t)
		n, w, got := newTestNetwork(rapid.Uint64().Draw(t, "seed"), f)
		var arrivals []netMsg
		n.deliver = func(from, to Addr, msg any) {
			*got = append(*got, msg.(int))
			arrivals = append(arrivals, netMsg{from: from, to: to, sentAt: w.Now()})
		}
		sent, _ := sendRandom(t, n, w, false)
		if len(*got) != len(sent) {
			t.Fatalf("%d messages sent, %d delivered", len(sent), len(*got))
		}
		seen := map[int]bool{}
		last := map[link]int{}
		for i, id := range *got {
			if seen[id] {
				t.Fatalf("message %d delivered twice", id)
			}
			seen[id] = true
			m := sent[id]
			if arrivals[i].from != m.from || arrivals[i].to != m.to {
				t.Fatalf("message %d delivered on the wrong link", id)
			}
			if at := arrivals[i].sentAt; at < m.sentAt+int64(f.LatencyMin) {
				t.Fatalf("message %d arrived after %v, under the minimum latency %v", id, time.Duration(at-m.sentAt), f.LatencyMin)
			}
			l := link{m.from, m.to}
			if prev, ok := last[l]; ok && m.seq < prev {
				t.Fatalf("link %v→%v delivered message %d after %d", m.from, m.to, m.seq, prev)
			}
			last[l] = m.seq
		}
	})
}

// Reordering breaks FIFO, never exactly-once.
func TestNetworkReorderKeepsExactlyOnce(t *testing.T) {
	skipWhenReplaying(t)
	rapid.Check(t, func(t *rapid.T) {
		f := drawLatency(t)
		f.ReorderProb = rapid.Float64Range(0, 1).Draw(t, "reorder")
		n, w, got := newTestNetwork(rapid.Uint64().Draw(t, "seed"), f)
		sent, _ := sendRandom(t, n, w, false)
		seen := map[int]bool{}
		for _, id := range *got {
			if seen[id] {
				t.Fatalf("message %d delivered twice", id)
			}
			seen[id] = true
		}
		if len(seen) != len(sent) {
			t.Fatalf("%d sent, %d delivered", len(sent), len(seen))
		}
	})
}

// A message on a cut link is lost; drop and duplicate do what they say.
func TestNetworkPartitionsAndFaults(t *testing.T) {
	skipWhenReplaying(t)
	rapid.Check(t, func(t *rapid.T) {
		f := drawLatency(t)
		f.DropProb = rapid.Float64Range(0, 0.5).Draw(t, "drop")
		f.DupProb = rapid.Float64Range(0, 0.5).Draw(t, "dup")
		n, w, got := newTestNetwork(rapid.Uint64().Draw(t, "seed"), f)
		sent, blocked := sendRandom(t, n, w, true)
		count := map[int]int{}
		for _, id := range *got {
			count[id]++
			if blocked[id] {
				t.Fatalf("message %d was sent on a cut link and still arrived", id)
			}
		}
		for id, c := range count {
			if c > 2 {
				t.Fatalf("message %d delivered %d times", id, c)
			}
		}
		if f.DropProb == 0 && f.DupProb == 0 && !n.Partitioned() {
			for id := range sent {
				if !blocked[id] && count[id] == 0 && n.Cut == 0 {
					t.Fatalf("message %d lost with no drop and no cut", id)
				}
			}
		}
		if n.InFlight() != 0 {
			t.Fatalf("%d messages still counted in flight after the queue drained", n.InFlight())
		}
	})
}
