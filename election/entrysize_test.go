package election_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"dkv/core"
	"dkv/election"
	"dkv/sim"
)

// peerFrameBytesMax is realnet's peer frame limit (its FrameBytesMax),
// which drops a larger message; cmd/node checks election.EntryBytesMax
// against it at start.
const peerFrameBytesMax = 64 << 20

// Every write a leader takes fits one append message to its followers: a
// write whose entry would not fit a peer frame is refused too_large, not
// proposed (found by review: a set encoded to the log's record bound,
// 64 MiB less 25 bytes, was proposed, and its append message of 64 MiB
// and 58 bytes could never be sent).
func TestClusterWriteFitsOneAppendMessage(t *testing.T) {
	disk := sim.NewDisk(rand.New(rand.NewPCG(3, 4)), sim.DiskFaults{})
	s, err := newSoloWith(t, disk, 7, func(c *election.NodeConfig) {
		c.Limits.RequestBytesMax, c.Limits.ValueBytesMax = 100<<20, 100<<20
	})
	if err != nil {
		t.Fatal(err)
	}
	s.lead()
	// "a" and a value of 64 MiB less 31 bytes encode to 64 MiB less 25.
	for _, n := range []int{64<<20 - 31, 63 << 20} {
		v := strings.Repeat("v", n)
		req := &core.Request{Op: core.OpSet, Key: "a", Value: &v}
		r := s.do(req)
		if !r.OK {
			if r.Error.Code != core.CodeTooLarge {
				t.Fatalf("a set of %d bytes: %+v, want ok or too_large", n, r.Error)
			}
			if n == 63<<20 {
				t.Errorf("a set of 63 MiB was refused: %+v", r.Error)
			}
			continue
		}
		cmd := core.CommandFromRequest(req)
		data, err := core.AppendCommand(nil, &cmd)
		if err != nil {
			t.Fatal(err)
		}
		msg := election.AppendMessage(nil, &election.Message{Type: election.MsgApp, Entries: []election.Entry{{Term: 1, Index: 2, Data: data}}})
		if len(msg) > peerFrameBytesMax {
			t.Errorf("a set of %d bytes was taken, and its append message of %d bytes cannot fit a peer frame of %d", n, len(msg), peerFrameBytesMax)
		}
	}
}
