// Package realnet is the production host: it runs one core.Node and connects
// it to TCP clients, the OS clock and crypto-seeded randomness.
//
// Node logic is a single-threaded state machine (see DESIGN.md); this package
// is where the goroutines live. Each client connection has a reader goroutine
// that frames and decodes request lines and a writer goroutine that sends the
// responses back in request order, so clients may pipeline. Requests, timer
// callbacks and (later) peer messages all reach the node through one queue.
//
// The node runs on one goroutine at a time, never two: running it is a role
// that whoever queues an event while the node is idle takes, runs a turn or
// two, and gives up, handing any backlog to the loop goroutine of Host.Run. A
// turn takes every event that is already queued, up to a limit, and then
// calls Node.Flush, so one fsync covers every write of the turn: group commit
// falls out of the queue. A lone request travels from its reader through
// the node, the fsync and the reply without waking another goroutine.
//
// Every queue and line has a limit, and nothing the node calls back into
// ever blocks it, except the fsync of a lone request, which it is waiting
// for anyway.
package realnet
