package sim

import (
	"testing"

	"dkv/checks"
	"dkv/core"
)

// The simulator's power is itself tested: a node broken in a way that loses
// acknowledged writes must be caught within 100 seeds. Each test runs seeds
// in order with the broken node and stops at the first seed that fails with
// it but passes with the real node, so the catch is the breakage's and not
// some other bug's.

// noSyncDisk is a disk whose File.Sync reports success without syncing:
// acknowledgements then run ahead of durability.
type noSyncDisk struct{ core.Disk }

func (d noSyncDisk) Create(name string) (core.File, error) {
	f, err := d.Disk.Create(name)
	return noSyncFile{f}, err
}

func (d noSyncDisk) OpenAppend(name string) (core.File, error) {
	f, err := d.Disk.OpenAppend(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ core.File }

func (noSyncFile) Sync() error { return nil }

// earlyReplyNode acknowledges every write as it arrives, before the node has
// written or synced it, and throws the node's own answer away.
type earlyReplyNode struct{ core.Node }

func (n earlyReplyNode) HandleRequest(req *core.Request, reply core.ReplyFunc) {
	switch req.Op {
	case core.OpSet, core.OpDelete, core.OpBulkSet:
		reply(core.OKResponse())
		n.Node.HandleRequest(req, func(core.Response) {})
	default:
		n.Node.HandleRequest(req, reply)
	}
}

func TestCatchesNodeThatDoesNotSync(t *testing.T) {
	skipWhenReplaying(t)
	catchWithin(t, 100, Config{WrapDisk: func(d core.Disk) core.Disk { return noSyncDisk{d} }})
}

func TestCatchesNodeThatRepliesBeforeFlush(t *testing.T) {
	skipWhenReplaying(t)
	catchWithin(t, 100, Config{WrapNode: func(n core.Node) core.Node { return earlyReplyNode{n} }})
}

func catchWithin(t *testing.T, seeds int, broken Config) {
	broken.Ops, broken.NoReport = 300, true
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		broken.Seed = seed
		r := Run(broken)
		if !r.Failed() {
			continue
		}
		healthy := Run(Config{Seed: seed, Ops: broken.Ops, NoReport: true})
		if healthy.Failed() {
			continue // the real node fails this seed too: not the breakage's catch
		}
		kinds := map[string]bool{}
		for _, f := range r.Findings {
			kinds[f.Check] = true
		}
		// A broken node may also trip over its own damage on restart (it
		// refuses to start); the catch this test wants is the one a user
		// would suffer: acknowledged data lost or inconsistent.
		if !kinds["durability"] && !kinds["linearizability"] && !kinds["atomicity"] {
			t.Logf("seed %d: caught, as %s", seed, firstLine(r.Findings))
			continue
		}
		t.Logf("caught at seed %d (%d ops): %s", seed, r.Ops, firstLine(r.Findings))
		return
	}
	t.Fatalf("a broken node went unnoticed for %d seeds", seeds)
}

func firstLine(fs []checks.Finding) string {
	if len(fs) == 0 {
		return ""
	}
	s := fs[0].String()
	for i := range s {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
