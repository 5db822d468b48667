package realnet

import (
	"testing"
	"time"

	"dkv/core"
	"dkv/disk"
)

// The client port's rate-limited lines (refused passwords, connections
// past --max-conns, failed handshakes) say how many were held back once
// their interval ends, though no line of the kind follows: the count went
// out only with the kind's next line, so a flood that stopped left it
// unsaid.
func TestHostSaysItsHeldBackLinesWhenTheIntervalEnds(t *testing.T) {
	forEachHost(t, authConfig(), func(t *testing.T, cfg HostConfig) {
		l := &testLog{t: t, name: "host"}
		d, err := disk.Open(t.TempDir(), disk.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		r := startHostOn(t, core.NewSingleNode(core.DefaultSingleConfig()), d, cfg, func(h *Host) {
			h.refuseLog.out = l.logf
			h.refuseLog.every = 50 * time.Millisecond
			h.tlsLog.every = 50 * time.Millisecond
		})
		c := dial(t, r.addr)
		for range authFailuresMax {
			c.send(`{"op":"auth","password":"guess"}` + "\n")
			c.recvCode(core.CodeAuthFailed)
		}
		l.waitFor(t, "refused a wrong password from 127.0.0.1:")
		l.waitFor(t, "2 more lines of the kind")
	})
}
