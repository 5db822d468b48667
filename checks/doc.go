// Package checks decides whether a run of dkv kept its promises. It knows
// nothing of how the run happened: a simulator (or a real-process test)
// records a History of client calls and returns in one time base, with each
// call's outcome — ok, failed (certainly had no effect) or unknown (timed
// out: may or may not have applied) — and the checkers judge that history
// alone. Linearizability is checked with porcupine against a model of the
// store, partitioned per key so that long histories stay cheap; because a
// per-key check cannot see that a bulk_set or a bulk_delete is
// all-or-nothing, nor that a bulk_get (a scan page, a consistent scan's
// walk) reads its keys at one instant, a separate atomicity checker looks
// for reads that observe part of a bulk op, and for reads of one instant
// (Op.Group) that disagree about one. A durability
// checker asks whether every acknowledged write is still there (or was
// overwritten) in the final reads taken after recovery. When porcupine
// finds a violation, Report writes its HTML visualisation so a human can see
// the bad interleaving.
package checks
