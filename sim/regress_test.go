package sim

import (
	"strconv"
	"strings"
	"testing"
)

// regressions are seeds that once found a bug, kept so the bug stays fixed.
// Each names what it found; a seed replays with
// `go test ./sim -run TestRegressions/seed=N -v` (or TestSim -seed=N).
var regressions = []struct {
	seed    uint64
	without []string // faults switched off, as when the seed was found
	bug     string
}{
	{53, nil, "core: recovery builds on WAL records it read from the page cache after a process crash without syncing them; " +
		"a later power loss drops them under newer, synced segments (ErrCorrupt: segment starts past a gap)"},
	{55, nil, "core: as seed 53 (a crash after an append, before its fsync, then a restart that rolls a new segment)"},
	{28, nil, "core: as seed 53"},
	{132, nil, "core: a transient read bit flip in the last WAL segment is taken for a torn tail and truncated away, " +
		"with acknowledged writes in it"},
	{217, nil, "core: as seed 132"},
	{1763, []string{"readflip", "process-crash"}, "core: with background fsync (AsyncFile), a batch whose write fails is undone " +
		"by a truncate that is never synced, while the previous batch's fsync, running late, already made the partial batch durable; " +
		"after a power loss the sealed segment holds it (ErrCorrupt: bad record in a sealed segment)"},
	{1237, []string{"readflip", "process-crash"}, "core: as seed 1763, where the undone batch's records come back whole after a power loss: " +
		"writes answered io_error reappear and the next segment overlaps them (ErrCorrupt: segment starts at 54, expected 57)"},
	{851, []string{"readflip", "process-crash"}, "sim: an injected fsync error during Start was reported as a recovery failure " +
		"instead of a refusal to start; the restart must retry on a disk without faults"},
	{186, nil, "sim: read bit flips over hundreds of segments refused every start; a restart after a flip must read clean"},
}

func TestRegressions(t *testing.T) {
	for _, r := range regressions {
		t.Run("seed="+strconv.FormatUint(r.seed, 10), func(t *testing.T) {
			t.Parallel()
			res := Run(Config{Seed: r.seed, Without: r.without, ReportDir: "testdata/reports"})
			if res.Failed() {
				t.Fatalf("regression (%s)\n%s\n  with: %s", r.bug, res.Report(), strings.Join(r.without, ","))
			}
		})
	}
}
