package sim

import (
	"time"

	"dkv/election"
)

// Graceful stops of a cluster's leader, as cmd/node's SIGTERM makes them:
// the leader hands the office to its most up-to-date follower
// (election.Node.HandOver), the process waits until it no longer leads and
// its writes have their answers (HandedOver), or handOverWait, and exits.
// They come in handOverSeeds of the cluster seeds, drawn from a stream of
// their own so that the other seeds run as before, every handOverEvery on
// average, among the other faults: a hand-over meets crashes, partitions,
// lost messages and full disks like any election.

// streamHandOver draws the seed's graceful stops.
const streamHandOver = 301

const (
	handOverSeeds = 0.3
	// handOverWait is cmd/node's bound (handOverWait there): a second.
	handOverWait = time.Second
	handOverPoll = 5 * time.Millisecond
)

// scheduleHandOvers draws whether this cluster seed has graceful stops,
// and schedules the first.
func (s *Sim) scheduleHandOvers() {
	if !s.mode.Sessions {
		return // the cluster modes: the others have no leader
	}
	r := stream(s.cfg.Seed, streamHandOver)
	if r.Float64() >= handOverSeeds {
		return
	}
	every := time.Duration(100+r.IntN(1900)) * time.Millisecond
	var next func()
	next = func() {
		gap := time.Duration(r.ExpFloat64() * float64(every))
		s.w.After(max(gap, latencyQuantum).Round(latencyQuantum), func() {
			if !s.chaos() {
				return
			}
			if h := s.leaderHost(); h != nil {
				s.stopGracefully(h)
			}
			next()
		})
	}
	next()
}

// leaderHost is the up node that leads in the highest term, nil if none.
func (s *Sim) leaderHost() *host {
	var best *host
	var term uint64
	for _, h := range s.hosts {
		n, ok := h.node.(*election.Node)
		if !ok || !h.up {
			continue
		}
		if r := n.Raft(); r.State() == election.Leader && (best == nil || r.Term() > term) {
			best, term = h, r.Term()
		}
	}
	return best
}

// stopGracefully stops h as a SIGTERM does: the hand-over in a turn of its
// node, then a look every handOverPoll until it is done or handOverWait
// has passed, then the process's exit (no power loss).
func (s *Sim) stopGracefully(h *host) {
	n := h.node.(*election.Node)
	incarnation := h.incarnation
	h.Deliver(0, func() {
		to, ok := n.HandOver()
		if !ok {
			return
		}
		s.handOvers++
		s.trace(h.addr, "hand-over", int64(to), 0, "")
		deadline := s.w.now + int64(handOverWait)
		var look func()
		look = func() {
			if !h.up || h.incarnation != incarnation {
				return
			}
			if n.HandedOver() || s.w.now >= deadline {
				if n.HandedOver() {
					s.handedOver++
				}
				h.crash("stopped gracefully after its hand-over", false)
				return
			}
			h.Deliver(handOverPoll, look)
		}
		h.Deliver(handOverPoll, look)
	})
}
