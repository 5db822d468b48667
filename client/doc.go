// Package client is the Go client of dkv.
//
// A KVClient keeps one TCP connection to one server and pipelines on it: any
// number of goroutines may call it at once, their requests go out on the wire
// in the order they are queued, and because the server answers in request
// order on a connection, a FIFO of waiters is all it takes to hand each
// response to its caller. The callers do the socket work themselves, with no
// goroutine of the client's in between: one writes the queued requests,
// one reads responses and hands them out, so a lone caller writes its
// request and reads its answer directly. Every request also carries a fresh "id" that the
// server echoes, and the client checks the echo, so a desynchronised stream is
// detected and the connection dropped instead of a response reaching the
// wrong caller.
//
// The client never silently repeats a write it has sent, which matters most
// for one that is not idempotent (Incr). When a connection breaks under a
// write, or the caller's context expires after the write left, the call
// fails with an error matching ErrUnknownOutcome: the server may or may not
// have applied it. Reads (Get, TTL, Ping, Status, ...) are retried once
// on a fresh connection, and a request that provably never left is retried too.
// The next call after a broken connection redials, with bounded retries and
// backoff for the dial only; the calls that waited for that redial share
// its outcome, its failure too (a server that is down fails them all at
// once, with its own error, rather than one after another).
//
// Server failures come back as *ServerError carrying the protocol's stable
// code; errors.Is(err, ErrNotFound) recognises a get of a missing key, and
// ErrNotInteger and ErrOverflow the refusals of an Incr.
// docs/PROTOCOL.md is the specification of the wire protocol.
package client
