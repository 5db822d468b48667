// Package sim is dkv's deterministic simulator: the node code that ships,
// run inside a world where one seed decides everything. A World is virtual
// time and a queue of events ordered by (time, sequence), driven by one
// goroutine; every random choice comes from PCG streams derived from the
// seed. Around the nodes it builds what core.Env abstracts — a virtual
// Clock per node (with drift), a Network that delays, drops, duplicates,
// reorders and partitions, and a Disk per node that keeps unsynced data
// apart from durable data and fails, tears, flips bits and fills up — and
// a host that drives each node in realnet's turns (the events that have
// arrived, then Flush) but can kill it at any event: between turns, in the
// middle of one, or inside a disk call, between a write and its fsync.
// Simulated clients with timeouts and retries work a small key space so
// their operations collide, and record a history that package checks then
// judges for linearizability, durability and atomicity, after the faults
// stop, every node loses power and recovers, and every key is read back.
//
// Each seed draws its own fault mix (swarm testing), and a run is a pure
// function of its seed: the event trace is hashed, and a test runs seeds
// twice and compares. So any failure replays exactly with
//
//	go test ./sim -run TestSim -seed=N -v
//
// which prints the mix, the tail of the trace and the finding. `go test
// ./sim` runs a fixed budget of seeds plus a few random ones; `go run
// ./cmd/sim` runs thousands. A Mode says how many nodes a deployment has,
// how to make one and where clients send requests; the single node is the
// first, and the cluster and mesh nodes plug in the same way.
package sim
