// Package realnet is the production host: it runs one core.Node on one
// goroutine and connects it to TCP clients, the OS clock and crypto-seeded
// randomness.
//
// Node logic is a single-threaded state machine (see DESIGN.md); this package
// is where the goroutines live. Each client connection has a reader goroutine
// that frames and decodes request lines and a writer goroutine that sends the
// responses back in request order, so clients may pipeline. Requests, timer
// callbacks and (later) peer messages all reach the node through one channel
// drained by the loop goroutine. A turn of the loop takes every event that is
// already queued, up to a limit, and then calls Node.Flush, so one fsync
// covers every write of the turn: group commit falls out of the queue. Every
// queue and line has a limit, and nothing the node calls back into ever
// blocks the loop.
package realnet
