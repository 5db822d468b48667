package election

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"dkv/core"
)

// probeWalk runs a leader of term 3 (node 0) and a deposed leader (node 1)
// whose log holds conflicting entries of term 2 after a common committed
// prefix, until node 1's log is the leader's. Messages take one step per
// hop and are copied with probability dup; the leader ticks (a heartbeat)
// every tickEvery steps and proposes every proposeEvery (0: never), while
// node 2, silent, keeps up by hand so that commits go on. It returns the
// appends the leader sent.
func probeWalk(t *testing.T, prefix, leaderTail, conflicting, tickEvery, proposeEvery int, dup float64, seed uint64) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 9))
	mk := func(id core.NodeID, tail int, term uint64) *Raft {
		cfg := DefaultConfig(id, []core.NodeID{0, 1, 2}, testRand{rand.New(rand.NewPCG(seed, uint64(id)))})
		for i := 1; i <= prefix; i++ {
			cfg.Entries = append(cfg.Entries, Entry{Term: 1, Index: uint64(i)})
		}
		for i := 1; i <= tail; i++ {
			cfg.Entries = append(cfg.Entries, Entry{Term: term, Index: uint64(prefix + i), Data: []byte("x")})
		}
		cfg.HardState = HardState{Term: 3, Vote: None, Commit: uint64(prefix)}
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	lead, fol := mk(0, leaderTail, 3), mk(1, conflicting, 2)
	lead.vote = 0
	lead.becomeLeader()
	type onWire struct {
		at int
		m  Message
	}
	var wire []onWire
	appends := 0
	drain := func(r *Raft, step int) {
		for r.HasReady() {
			rd := r.Ready()
			for _, m := range rd.Messages {
				if m.To == 2 {
					continue
				}
				if m.Type == MsgApp {
					appends++
				}
				for k := 1 + boolInt(rng.Float64() < dup); k > 0; k-- {
					wire = append(wire, onWire{step + 1, m})
				}
			}
			r.Advance(rd)
		}
	}
	for step := 0; step < 20_000 && appends < 100_000; step++ {
		if step%tickEvery == 0 {
			lead.Tick()
			lead.progress[2].active = true // node 2 keeps the leader in its quorum
		}
		if proposeEvery > 0 && step%proposeEvery == 0 {
			if _, err := lead.Propose([]byte("w")); err != nil {
				t.Fatal(err)
			}
			lead.progress[2].match = lead.log.lastIndex()
		}
		due := wire
		wire = nil
		for _, e := range due {
			switch {
			case e.at > step:
				wire = append(wire, e)
			case e.m.To == 0:
				lead.Step(e.m)
			default:
				fol.Step(e.m)
			}
		}
		drain(lead, step)
		drain(fol, step)
		if lead.State() != Leader {
			t.Fatalf("the leader stepped down at step %d", step)
		}
		if fol.log.matchTerm(lead.log.lastIndex(), lead.log.lastTerm()) {
			return appends
		}
	}
	t.Fatalf("node 1's log did not become the leader's: %d appends sent", appends)
	return 0
}

// A follower whose log conflicts with the leader's (a deposed leader's
// uncommitted tail) is brought in line in a few appends, whatever else the
// leader sends meanwhile and whatever the network copies. The leader acted
// on every refusal: appends went out pipelined, and every heartbeat,
// proposal and read sent one, so each started a walk back of its own, an
// entry a round trip, each step re-sending up to 256 entries; the
// network's copies of refusals multiplied the walks (found by review: 6,677
// appends where 502 would do, and with 5% of messages copied no end within
// 200,000). Now one probe at a time is answered, and the refusal's hint
// skips a term's entries at once on either side.
func TestConflictingFollowerIsBroughtInLineQuickly(t *testing.T) {
	for _, c := range []struct {
		leaderTail, conflicting, tickEvery, proposeEvery int
		dup                                              float64
	}{
		{100, 400, 1 << 30, 0, 0},
		{100, 400, 4, 0, 0},
		{100, 400, 40, 10, 0},
		{1000, 400, 4, 0, 0},
		{1000, 400, 10, 10, 0},
		{250, 400, 10, 4, 0.05},
		{1000, 150, 1 << 30, 0, 0.05},
		{100, 400, 4, 4, 0.3},
	} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			for seed := range uint64(5) {
				if got := probeWalk(t, 10, c.leaderTail, c.conflicting, c.tickEvery, c.proposeEvery, c.dup, seed); got > 40 {
					t.Fatalf("seed %d: %d appends to bring the follower in line", seed, got)
				}
			}
		})
	}
}
