// Package clienttest provides an in-memory dkv server for tests of code that
// talks to dkv, in the manner of net/http/httptest: it speaks the wire
// protocol of docs/PROTOCOL.md over loopback TCP and keeps its data in a map,
// with no disk and no durability. Keys given a deadline (a set's or an
// expire's ttl_ms; persist takes it away) expire by the real time, or by a
// clock the test moves (Server.StopClock). It serves incr as the real
// server does, refusals (not_integer, overflow) included, but keeps no
// client sessions: a retried incr applies again. Bulk ops and scans,
// consistent ones included, are served too; searches are refused as by a
// server without --enable-indexes, and auth as by one without a password.
package clienttest
