package core

// ReplyFunc delivers the response to one request. The node calls it exactly
// once per request, on the host's goroutine, possibly in a later turn. It must
// not block.
type ReplyFunc func(Response)

// Node is a state machine that a host drives from one goroutine. A host calls
// Start once, then any mix of HandleRequest, HandleMessage and timer
// callbacks, and Flush at the end of every turn of its loop.
type Node interface {
	// Start recovers from env.Disk and arms timers with env.Clock. An error
	// means the node cannot serve (for example, a corrupt log).
	Start(env Env) error
	// HandleRequest takes one client request. The reply may come later.
	HandleRequest(req *Request, reply ReplyFunc)
	// HandleMessage takes one framed peer message.
	HandleMessage(from NodeID, msg []byte)
	// Flush persists the turn's work with one write and one fsync, then
	// sends the turn's replies. An error is fatal: the node has stopped and
	// the host must shut it down and restart it from disk.
	Flush() error
}
