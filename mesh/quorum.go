package mesh

import (
	"math/bits"
	"slices"

	"dkv/core"
)

// quorumWait is a write that waits for more nodes than this one to hold it
// durably before it is answered (Config.WriteQuorum, or the request's
// quorum).
//
// A wait is named by its write's stamp, which the replicate carries and a
// peer's acknowledgement echoes. A stamp names one write of this node for
// good: the clock never goes back, across restarts too (a restarted node's
// clock starts above every durable write's stamp, and only durable writes
// are sent, so only they are acknowledged), and a wiped node's new
// incarnation is told apart by the acknowledgement's header (Node.
// HandleMessage). Waits used to be named by a counter that started at 1 with
// every start of the node, so a peer's acknowledgement of a write of an
// earlier life, delivered late, counted for a new write that no peer held
// (found by review).
type quorumWait struct {
	stamp    Stamp
	need     int    // peer acknowledgements needed
	acks     uint64 // peers that acknowledged, by peer.bit
	local    bool   // durable on this node
	reply    core.ReplyFunc
	resp     core.Response
	items    []Item // the write's, sent again to peers that are silent
	deadline int64  // Clock.Now after which it is answered outcome_unknown
	sentAt   int64  // Clock.Now when it was last sent to the peers
	done     bool
}

// quorumAck counts a peer's acknowledgement of the write stamped s.
func (n *Node) quorumAck(p *peer, s Stamp) {
	qw := n.findWait(s)
	if qw == nil {
		return // answered already, or from before a restart
	}
	qw.acks |= p.bit
	n.quorumCheck(qw)
}

// quorumCheck answers qw once it is durable here and on enough peers.
func (n *Node) quorumCheck(qw *quorumWait) {
	if qw.done || !qw.local || bits.OnesCount64(qw.acks) < qw.need {
		return
	}
	qw.done = true
	n.removeWait(qw)
	qw.reply(qw.resp)
}

// findWait finds a waiting write by stamp; waits are kept in stamp order.
func (n *Node) findWait(s Stamp) *quorumWait {
	i, ok := slices.BinarySearchFunc(n.waits, s, func(w *quorumWait, s Stamp) int { return w.stamp.Compare(s) })
	if !ok {
		return nil
	}
	return n.waits[i]
}

// addWait adds qw in stamp order: at the end, since stamps rise with every
// write, unless the clock is the planted wall clock (MutWallClockLWW).
func (n *Node) addWait(qw *quorumWait) {
	i, _ := slices.BinarySearchFunc(n.waits, qw.stamp, func(w *quorumWait, s Stamp) int { return w.stamp.Compare(s) })
	n.waits = slices.Insert(n.waits, i, qw)
}

func (n *Node) removeWait(qw *quorumWait) {
	for i, w := range n.waits {
		if w == qw {
			n.waits = append(n.waits[:i], n.waits[i+1:]...)
			return
		}
	}
}

// armQuorumTimer resends waiting writes to the peers that have not
// acknowledged them, a write once every QuorumResend at most, and answers
// those past their deadline. One timer runs while writes wait: it used to
// be armed whenever the waits went from none to one, while the last one's
// was still pending, and each then re-armed itself, so a steady trickle of
// quorum writes kept dozens running, each resending every write that
// waited, even one sent a moment before (found by review).
func (n *Node) armQuorumTimer() {
	if n.quorumTimer != nil {
		return
	}
	n.quorumTimer = n.env.Clock.AfterFunc(n.cfg.QuorumResend, func() {
		n.quorumTimer = nil
		if n.turns.Stopped() != nil {
			return
		}
		now := n.env.Clock.Now()
		kept := n.waits[:0]
		for _, qw := range n.waits {
			if !qw.local {
				kept = append(kept, qw) // its batch is not durable yet
				continue
			}
			if now >= qw.deadline {
				qw.done = true
				resp := core.ErrorResponse(core.CodeOutcomeUnknown,
					"the write is durable on this node, but only %d of the %d other nodes it waits for confirmed it in time; it will still reach them (anti-entropy)",
					bits.OnesCount64(qw.acks), qw.need)
				// The write is made: its stamp is what a client that goes
				// on passes as after, and what a checker holds it to.
				resp.Stamp = qw.resp.Stamp
				qw.reply(resp)
				continue
			}
			if now-qw.sentAt < int64(n.cfg.QuorumResend) {
				kept = append(kept, qw) // sent a moment ago
				continue
			}
			qw.sentAt = now
			var msg []byte
			for _, p := range n.peers {
				if qw.acks&p.bit == 0 {
					if msg == nil {
						msg = n.encode(nil, &message{header: header{kind: msgReplicate}, quorum: []Stamp{qw.stamp}, items: qw.items})
					}
					n.env.Network.Send(p.id, msg)
				}
			}
			kept = append(kept, qw)
		}
		clear(n.waits[len(kept):])
		n.waits = kept
		if len(n.waits) > 0 {
			n.armQuorumTimer()
		}
	})
}
