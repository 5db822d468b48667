package realnet

import (
	"strings"
	"testing"

	"dkv/core"
	"dkv/mesh"
)

// EXISTS and TOUCH count the keys that exist: their values are never sent,
// so the bound on the values a bulk_get answers does not hold them back.
// They read through bulk_get, and answered too_large where Redis answers
// a count (found by the RESP review: EXISTS of five keys of 1 MiB on a
// cluster node). MGET of the same keys is still refused.
func TestExistsCountsKeysWhoseValuesPassTheAnswerBound(t *testing.T) {
	const limit = 1 << 20
	single := core.DefaultSingleConfig()
	single.Limits.RequestBytesMax = limit
	meshCfg := mesh.DefaultConfig(0, []core.NodeID{0})
	meshCfg.Limits.RequestBytesMax = limit
	nodes := map[string]func() core.Node{
		"single": func() core.Node { return core.NewSingleNode(single) },
		"mesh": func() core.Node {
			n, err := mesh.NewNode(meshCfg)
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
	}
	for name, node := range nodes {
		t.Run(name, func(t *testing.T) {
			r := startOnDisk(t, node(), respConfig())
			rc := dialRESP(t, r.addr)
			value := strings.Repeat("v", 400<<10) // three pass the bound
			for _, k := range []string{"a", "b", "c"} {
				rc.send(respArray("SET", k, value))
				if line := rc.respLine(); line != "+OK" {
					t.Fatalf("SET %s: %q", k, line)
				}
			}
			for _, cmd := range []string{"EXISTS", "TOUCH"} {
				rc.send(respArray(cmd, "a", "b", "c", "missing", "a"))
				if line := rc.respLine(); line != ":4" {
					t.Errorf("%s of three large keys, a missing one and a repeat: %q, want :4", cmd, line)
				}
			}
			rc.send(respArray("MGET", "a", "b", "c"))
			if line := rc.respLine(); !strings.Contains(line, core.CodeTooLarge) {
				t.Errorf("MGET past the bound: %q", line)
			}
		})
	}
}
