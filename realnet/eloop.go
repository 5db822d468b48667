package realnet

import "time"

// loopState is what an event loop (eloop) keeps of one of its connections.
// The loop goroutine alone touches it, with two exceptions: fd is also read
// by whoever sends replies (sendNow), under conn.wmu, and kicked is under
// the loop's mutex.
type loopState struct {
	// fd is the socket, a descriptor of the host's own (a duplicate of
	// the accepted one), or -1 once closed. It is set to -1 under wmu
	// before the number can be reused, so that a late reply is never
	// written into another connection's socket.
	fd int
	// events is the interest registered with epoll.
	events uint32
	// reading: the reader has not stopped. paused: framing stopped at
	// the in-flight limit (conn.haveRoom); the socket is not read until a
	// response goes out.
	reading, paused bool
	// outWanted: bytes wait for the socket to take them (conn.pending).
	outWanted bool
	// stopping: the host is stopping; what is ready goes out, then the
	// connection closes. lingering: the server's side is shut and what
	// the client still sends is read and dropped (see lingerClose).
	stopping, lingering bool
	lingerLeftBytes     int
	closed              bool
	// The deadlines that run (zero: none): the read deadline (the line
	// or the idle timeout), the write deadline (a client that does not
	// take its replies) and the linger's end.
	readDeadline, writeDeadline, lingerDeadline time.Time
	kicked                                      bool // on the loop's kick list, under eloop.mu
}

// earliest is the connection's first deadline, zero for none.
func (ls *loopState) earliest() time.Time {
	var t time.Time
	for _, d := range []time.Time{ls.readDeadline, ls.writeDeadline, ls.lingerDeadline} {
		if !d.IsZero() && (t.IsZero() || d.Before(t)) {
			t = d
		}
	}
	return t
}
