// Package realnet is the production host: it runs one core.Node and connects
// it to TCP clients, the OS clock and crypto-seeded randomness.
//
// Node logic is a single-threaded state machine (see docs/ARCHITECTURE.md,
// "The node contract"); this package is where the goroutines live. Client
// connections are served by event loops on Linux (eloop_linux.go;
// HostConfig.EventLoops, one by default): a loop goroutine waits on an
// epoll instance for all of its connections at once,
// reads each ready socket once, frames and decodes the request lines, posts
// each read's requests to the node as one event and, after the pass over
// what was ready, runs the node on all of them in one turn. Where the loops
// are fewer than the runtime's processors, a loop blocks in epoll_wait
// holding its processor and every fsync runs inline (Redis's design: the
// next batch gathers in the sockets); otherwise loops park in the runtime's
// poller and fsyncs under load run in the background. A waiting loop that
// has just sent a sync's replies holds a turn with a write in it back for
// a moment, while those clients come back fast enough to be worth it, so
// that their requests join that batch rather than wait out the next fsync
// (gather.go). With EventLoops 0
// (and elsewhere than Linux) each connection has a reader goroutine and a
// writer goroutine instead (conn.go). Both share the framing, the limits,
// the RESP2 and JSON codecs and the reply path, so the node and the clients
// cannot tell them apart. On the 2-core VM one waiting loop costs a third
// less server CPU per durable write at 50 clients than two parked loops
// with the fsync in the background, and loops hold less memory per
// connection than goroutines (docs/ARCHITECTURE.md has the figures).
//
// The node runs on one goroutine at a time, never two: running it is a role
// that whoever queues an event while the node is idle takes, runs a turn or
// two, and gives up, handing any backlog to the loop goroutine of Host.Run.
// (Where the event loops wait holding their processors, an event posted
// from elsewhere, a peer's or a timer's, wakes a loop to run it instead.) A
// turn takes every event that is already queued, up to a limit, and then
// calls Node.Flush, so one fsync covers every write of the turn: group commit
// falls out of the queue. Replies leave from whoever runs the turn, one write
// per connection per turn, when the socket takes them at once; only what it
// does not take goes to the connection's writer (or its loop, on EPOLLOUT).
//
// Peers is the peer transport: one-way connections, a sender goroutine per
// peer, and, where the host's event loop waits (Peers.ReadOn), the frames of
// the accepted connections read on that loop (frameconn_linux.go); else a
// reader goroutine per accepted connection.
//
// Every queue and line has a limit, and nothing the node calls back into
// ever blocks it, except an inline fsync: a lone request's, which it is
// waiting for anyway, or any fsync where the loops wait holding their
// processors, while which the next batch gathers.
package realnet
