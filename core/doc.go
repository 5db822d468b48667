// Package core is the contract every dkv node is written against, and the
// single-node store built on it.
//
// Node logic sees the world only through Env: a Clock, a Network, a Disk and
// a seeded Rand. It starts no goroutines, reads no wall clock and touches no
// os or net package, so the same code runs under the deterministic simulator
// (package sim) and in production (packages realnet and disk). A host drives
// a Node from one goroutine and calls Flush at the end of every turn: the
// node writes the turn's log records with one write and one fsync and only
// then replies, which is group commit.
//
// The package also holds the protocol's request and response types, the
// ordered key-value state machine, the write-ahead log and the snapshot
// format, and their recovery rules (see docs/ARCHITECTURE.md, "Storage").
package core
