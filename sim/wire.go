package sim

import (
	"bytes"
	"fmt"
	"strconv"

	"dkv/core"
)

// The simulated network carries requests and responses as values, but each
// one crosses the protocol codec on its way, as it would over TCP, so that a
// codec bug is a bug of every simulated run. A request is encoded as one
// JSON line as package client sends it (core.AppendRequest, with an id that
// is unique in the run) and decoded as realnet decodes it
// (core.DecodeRequest), so the node gets what a server would. A reply gets
// the request's id, as realnet sets it, is encoded as realnet writes it
// (core.AppendResponse) and decoded as the client reads it
// (core.DecodeResponse), and the id it comes back with must be the one the
// client sent.

// lineReused is what the request line's buffer holds once the request is
// decoded: realnet's reader reads the next line into the same buffer, so a
// decoder that keeps a slice of the line, rather than a copy, hands the node
// bytes that change under it. (Digits, so that an id kept that way still
// encodes, and the client sees it come back wrong.)
const lineReused = '9'

// handleRequest hands a client request to the node through the codec.
func (h *host) handleRequest(r *request) {
	// A core mutation is the single node's and its codec's; a cluster
	// mode's are election's, and leave the codec as it ships.
	var codec core.Codec
	if h.s.cfg.Mutation != "" {
		codec.Mutation, _ = core.ParseMutation(h.s.cfg.Mutation)
	}
	reply := h.replyFunc(r)
	sent := *r.req
	sent.ID = strconv.AppendInt(nil, r.a.id, 10)
	line, err := core.AppendRequest(nil, &sent)
	if err != nil {
		h.s.fail("protocol", fmt.Sprintf("the client cannot encode %s (attempt %d): %v", r.req.Op, r.a.id, err))
		return
	}
	req, bad := codec.DecodeRequest(line[:len(line)-1])
	for i := range line {
		line[i] = lineReused
	}
	if bad != nil {
		// realnet answers a line that does not decode itself.
		respond(h, r, codec, reply, *bad)
		return
	}
	// As realnet does on the connection's goroutine; every other request
	// is left unprepared, so that both of the indexes' paths run.
	if h.idx != nil && r.a.id%2 == 0 {
		h.idx.Prepare(req)
	}
	want, bound := meshScanWanted(h.node, req), h.s.dataBoundWanted(h.node, req)
	h.node.HandleRequest(req, func(resp core.Response) {
		if want != nil {
			if msg := want.check(&resp); msg != "" {
				h.s.fail("scan", fmt.Sprintf("node %d answered attempt %d: %s", h.id, r.a.id, msg))
			}
		}
		if bound != nil {
			if msg := bound.check(&resp); msg != "" {
				h.s.fail("data-bytes", fmt.Sprintf("node %d, %s (attempt %d): %s", h.id, req.Op, r.a.id, msg))
			}
		}
		resp.ID = req.ID
		respond(h, r, codec, reply, resp)
	})
}

// respond sends the node's reply over the wire: encoded, decoded, its id
// checked, and handed on to the host's reply.
func respond(h *host, r *request, codec core.Codec, reply core.ReplyFunc, resp core.Response) {
	line := codec.AppendResponse(nil, &resp)
	got, err := core.DecodeResponse(line[:len(line)-1])
	if err != nil {
		h.s.fail("protocol", fmt.Sprintf("the reply to %s (attempt %d) does not decode: %v: %s", r.req.Op, r.a.id, err, line))
		return
	}
	var want [20]byte
	if id := strconv.AppendInt(want[:0], r.a.id, 10); !bytes.Equal(got.ID, id) {
		echoed := "without an id"
		if len(got.ID) > 0 {
			echoed = fmt.Sprintf("with id %s", got.ID)
		}
		h.s.fail("protocol", fmt.Sprintf("the reply to %s (attempt %d) came back %s, not with id %s: the client cannot match it to its request",
			r.req.Op, r.a.id, echoed, id))
		return
	}
	got.ID = nil // the simulator matches replies by attempt, as the client did by id
	reply(*got)
}
