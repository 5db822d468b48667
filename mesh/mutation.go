package mesh

import "dkv/core"

// Mutation is a deliberate bug, planted only by tests that prove the
// simulator catches it (sim's planted-bug tests). cmd/node never sets one.
type Mutation uint8

const (
	MutNone Mutation = iota
	// MutWallClockLWW: writes are stamped with the node's calendar time
	// alone, no hybrid clock: no logical counter, and nothing observed from
	// peers or clients lifts it.
	MutWallClockLWW
	// MutCollectEarly: a tombstone is collected once one peer holds it,
	// not every peer.
	MutCollectEarly
	// MutHLCNotPersisted: a restarted node's clock starts from calendar
	// time, forgetting its high-water mark and the stamps it holds.
	MutHLCNotPersisted
	// MutSkipLastRange: anti-entropy leaves out the last key range (bucket)
	// that differs, while claiming to have covered every one.
	MutSkipLastRange
	// MutRefuseBelowHorizon: a write for a key the node lacks is refused
	// at or below the collection horizon instead of the node's own refusal
	// point, which a wiped node (holding nothing) adopts from its peers.
	MutRefuseBelowHorizon
	// MutBulkDeleteLocalOnly: a bulk_delete writes tombstones only for the
	// keys this node holds live, so a value a peer holds and this node has
	// not yet heard of outlives the acknowledged delete.
	MutBulkDeleteLocalOnly
	// MutIgnoreClockOffset: a node takes writes though most of its peers
	// refuse its calendar readings as too far ahead, or it theirs
	// (offset.go).
	MutIgnoreClockOffset
	// MutScanTombEndsBucket: a scan's walk of a bucket stops at the first
	// tombstone it meets, where it must step over it, so the bucket's
	// later live keys are missing from the page.
	MutScanTombEndsBucket
	// MutPassesNeverCount: no anti-entropy pass counts toward the
	// stability and refusal points (passCounts), so the horizon never
	// rises and no tombstone is ever collected.
	MutPassesNeverCount
)

var mutationNames = core.MutationNames[Mutation]{
	MutNone:                "none",
	MutWallClockLWW:        "wall-clock-lww",
	MutCollectEarly:        "collect-early",
	MutHLCNotPersisted:     "hlc-not-persisted",
	MutSkipLastRange:       "skip-last-range",
	MutRefuseBelowHorizon:  "refuse-below-horizon",
	MutBulkDeleteLocalOnly: "bulk-delete-local-only",
	MutIgnoreClockOffset:   "ignore-clock-offset",
	MutScanTombEndsBucket:  "scan-tomb-ends-bucket",
	MutPassesNeverCount:    "passes-never-count",
}

func (m Mutation) String() string { return mutationNames.Name(m) }

// Mutations lists the planted bugs, MutNone excluded.
func Mutations() []Mutation { return mutationNames.All() }

// ParseMutation returns the mutation called name.
func ParseMutation(name string) (Mutation, error) { return mutationNames.Parse("mesh", name) }
