package election

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"dkv/core"
)

// Snapshot transfer. When a follower needs entries the leader has compacted
// away, Raft asks to send it the snapshot (a MsgSnap). The leader's node
// sends the snapshot file instead, in chunks of SnapChunkBytes, one at a
// time: the follower acknowledges each with how much it holds, and the
// leader sends on from there when that moved on, or again after a wait
// without such an answer (twice the last chunk's round trip: see
// chunkResendTicks). The follower writes the chunks to a temporary file; once it is
// whole it is synced and checked (the file's own checksum, and that it
// decodes), and only then does the follower's Raft get the MsgSnap, which
// makes the next Ready install it. A transfer cut short by a lost message,
// a new leader with the same snapshot, or the leader's restart resumes from
// what the follower holds; the follower's own restart starts it over.

// chunkResendTicks is how long the leader first waits for a chunk's
// acknowledgement before sending from the last acknowledged offset again.
// After that it waits twice as long as the last chunk took to be
// acknowledged, and twice as long again after each resend that moved
// nothing, up to chunkResendTicksMax: a fixed wait shorter than a chunk's
// crossing of a slow link resent every chunk while it was on its way, and
// the copies queued before the next chunk made the link slower still
// (found by review: a 75 MB snapshot crawled at 0.5 MB/s, the peer queue
// full of copies).
const (
	chunkResendTicks    = 5
	chunkResendTicksMax = 250
)

// doneLingerTicks is how long a finished transfer is remembered, so that
// Raft's repeated requests for it until the follower answers do not start
// it again.
const doneLingerTicks = 50

// sendState is a snapshot being sent to one follower.
type sendState struct {
	to              core.NodeID
	index, term     uint64
	commit, context uint64
	have            uint64 // what the follower acknowledged holding
	sentTick        int    // when a chunk was last sent
	firstTick       int    // when the chunk at have was first sent
	resendTicks     int    // how long to wait for its acknowledgement (0: chunkResendTicks)
}

// recvState is a snapshot being received from a leader.
type recvState struct {
	from        core.NodeID
	index, term uint64 // of the snapshot
	total       uint64
	tmp         string
	file        core.File
	have        uint64
	complete    bool // whole, synced and checked
	stepped     bool // handed to Raft: the next Ready installs it
	store       *core.Store
	sess        *sessions
}

const recvPrefix, recvSuffix = "recv-", ".tmp"

func recvName(index uint64) string { return fmt.Sprintf("%s%020d%s", recvPrefix, index, recvSuffix) }

func isRecvFile(name string) bool {
	return strings.HasPrefix(name, recvPrefix) && strings.HasSuffix(name, recvSuffix)
}

// startTransfer takes Raft's request to send follower m.To the snapshot.
func (n *Node) startTransfer(m *Message) {
	i := slices.Index(n.raft.peers, m.To)
	if i < 0 || m.Snapshot == nil {
		return
	}
	if t := n.out[i]; t != nil && t.index == m.Snapshot.Index {
		t.commit, t.context = m.Commit, m.Context
		return // under way, or just done and waiting for the follower's answer
	}
	if m.Snapshot.Index != n.snaps.Index() {
		n.logf("cannot send node %d the snapshot at %d: the newest on disk is at %d", m.To, m.Snapshot.Index, n.snaps.Index())
		return
	}
	if n.outIndex != m.Snapshot.Index || n.outFile == nil {
		// Sends of another snapshot are over: the snapshotter replaced it
		// (snapshotReplaced ended them), so none should be left.
		n.endSends(n.outIndex, fmt.Sprintf("the snapshot at %d is sent instead", m.Snapshot.Index))
		h, err := core.OpenRead(n.env.Disk, core.SnapshotName(m.Snapshot.Index))
		if err != nil {
			n.logf("cannot send node %d the snapshot at %d: %v", m.To, m.Snapshot.Index, err)
			return
		}
		n.outFile, n.outIndex, n.outSize = h, m.Snapshot.Index, uint64(h.Size())
	}
	t := &sendState{to: m.To, index: m.Snapshot.Index, term: m.Snapshot.Term, commit: m.Commit, context: m.Context}
	n.out[i] = t
	n.logf("sending node %d the snapshot at index %d (%d bytes)", m.To, t.index, n.outSize)
	n.sendChunk(t)
	t.firstTick = n.ticks
}

// sendChunk sends the chunk at the follower's position, read from the file
// now: the leader holds one chunk, not the file (reading a 148 MB snapshot
// whole at a transfer's start stalled a leader's loop for a second, past
// its followers' election timeout, and held the file in memory while any
// send ran: found by review). The handle reads the file opened at the
// start even if its name is removed or replaced meanwhile, so the chunks
// of one transfer are of one file. A read that fails, or comes short of
// the size the file had then, ends every send of it: Raft asks again, and
// the file is opened afresh.
func (n *Node) sendChunk(t *sendState) {
	if t.index != n.outIndex || n.outFile == nil {
		return
	}
	total := n.outSize
	size := int(min(uint64(n.cfg.SnapChunkBytes), total-min(t.have, total)))
	if cap(n.outBuf) < size {
		n.outBuf = make([]byte, size)
	}
	data := n.outBuf[:size]
	if got, err := n.outFile.ReadAt(data, int64(t.have)); got < size {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("it ends at %d bytes, not %d as when the transfer started", t.have+uint64(got), total)
		}
		n.endSends(t.index, fmt.Sprintf("reading %d bytes at %d: %v", size, t.have, err))
		return
	}
	c := chunk{
		From: n.cfg.ID, To: t.to, Term: n.raft.Term(),
		Index: t.index, SnapTerm: t.term, Commit: t.commit, Context: t.context,
		Offset: t.have, Total: total, Data: data,
	}
	n.env.Network.Send(t.to, appendChunk(nil, &c))
	t.sentTick = n.ticks
}

// endSends ends every send of the snapshot at index, and closes its file.
func (n *Node) endSends(index uint64, why string) {
	if index == 0 {
		return
	}
	for i, t := range n.out {
		if t != nil && t.index == index {
			n.logf("ending the transfer of the snapshot at %d to node %d (%d of %d bytes acknowledged): %s", index, t.to, t.have, n.outSize, why)
			n.out[i] = nil
		}
	}
	if n.outIndex == index {
		n.closeOut()
	}
}

// snapshotReplaced ends the sends of any snapshot older than the one at
// index, which is now the node's newest: the snapshotter removed the older
// file, and the log it would have been caught up from. Raft asks again,
// with the newer.
func (n *Node) snapshotReplaced(index uint64) {
	if n.outIndex != 0 && n.outIndex != index {
		n.endSends(n.outIndex, fmt.Sprintf("the snapshot at %d replaced it", index))
	}
}

// closeOut closes the snapshot file being sent, if any: no send runs.
func (n *Node) closeOut() {
	if n.outFile != nil {
		if err := n.outFile.Close(); err != nil {
			n.logf("closing the snapshot at %d after sending it: %v", n.outIndex, err)
		}
	}
	n.outFile, n.outIndex, n.outSize, n.outBuf = nil, 0, 0, nil
}

func (n *Node) onChunkAck(a *chunkAck) {
	i := slices.Index(n.raft.peers, a.From)
	t := n.out[i]
	if t == nil || t.index != a.Index || n.raft.State() != Leader || a.Term != n.raft.Term() {
		return
	}
	have := min(a.Have, n.outSize)
	moved := have > t.have
	if moved {
		t.resendTicks = min(max(chunkResendTicks, 2*(n.ticks-t.firstTick)), chunkResendTicksMax)
	} else if have == 0 && t.have > 0 {
		// The follower starts over: the resend from 0 is timed afresh.
		t.resendTicks, t.firstTick = chunkResendTicks, n.ticks
	}
	if moved || have == 0 {
		// A follower's position only grows, unless it started over (a
		// restart, a snapshot it refused): then it is 0, and the next
		// resend starts there. Any other lower one is an answer older
		// than the last; taking it would make the next copy of the
		// current one look like a move, and send a chunk on the wire
		// already.
		t.have = have
	}
	switch {
	case have == n.outSize:
		t.sentTick = n.ticks // done: lingers until Raft hears of it
	case moved:
		n.sendChunk(t)
		t.firstTick = n.ticks
	default:
		// An answer that does not move the follower on answers a copy of
		// a chunk (the network's, or a resend's while the first was on
		// its way), or is a late one: the chunk its first answer sent is
		// on the wire already. Sending for it too would start a second
		// chain of chunks and answers, and copies of its messages more
		// (the simulator's cluster seed 1901905): the resend timer covers
		// a chunk that was lost.
	}
}

// tickTransfers resends what went unanswered and forgets transfers that are
// over: the follower has the entries, or this node no longer leads.
func (n *Node) tickTransfers() {
	leading := n.raft.State() == Leader
	progress := n.raft.Progress()
	active := false
	for i, t := range n.out {
		if t == nil {
			continue
		}
		var match uint64
		for _, p := range progress {
			if p.ID == t.to {
				match = p.Match
			}
		}
		total := n.outSize
		switch {
		case !leading || match >= t.index || t.index != n.outIndex:
			n.out[i] = nil
			continue
		case t.have >= total && n.ticks-t.sentTick > doneLingerTicks:
			n.out[i] = nil
			continue
		case t.have < total && n.ticks-t.sentTick >= max(t.resendTicks, chunkResendTicks):
			n.sendChunk(t)
			t.resendTicks = min(2*max(t.resendTicks, chunkResendTicks), chunkResendTicksMax)
		}
		active = true
	}
	if !active {
		n.closeOut() // no send runs
	}
	// A snapshot being received that the log no longer needs: its sender
	// lost office and this node caught up from the next leader's log.
	// Kept, its part on disk stayed until a restart or the next transfer
	// (found by review).
	if in := n.in; in != nil && !in.stepped && !n.raft.WouldRestore(in.index, in.term) {
		n.logf("dropping the part of the snapshot at %d received from node %d (%d of %d bytes): the log has what it covers", in.index, in.from, in.have, in.total)
		n.dropReceived()
	}
}

// receiveChunk takes a piece of a leader's snapshot.
func (n *Node) receiveChunk(c *chunk) {
	if c.Term < n.raft.Term() {
		return // a deposed leader's
	}
	ack := func(have uint64) {
		a := chunkAck{From: n.cfg.ID, To: c.From, Term: c.Term, Index: c.Index, Have: have}
		n.env.Network.Send(c.From, appendChunkAck(nil, &a))
	}
	if !n.raft.WouldRestore(c.Index, c.SnapTerm) {
		// The log has what the snapshot covers, or it is old news: Raft
		// only moves its commit index and answers the leader.
		ack(c.Total)
		n.stepSnapshotMsg(c)
		return
	}
	in := n.in
	if in != nil && in.stepped {
		// Raft restores from it in this turn's Ready: nothing may replace
		// it before. A chunk of another snapshot is sent again later.
		if in.index == c.Index && in.term == c.SnapTerm {
			ack(in.total)
		}
		return
	}
	if in != nil && (in.index != c.Index || in.term != c.SnapTerm || in.total != c.Total) {
		if c.Offset != 0 {
			ack(0) // another snapshot: start it from its beginning
			return
		}
		n.dropReceived()
		in = nil
	}
	if in == nil {
		if c.Offset != 0 {
			ack(0)
			return
		}
		tmp := recvName(c.Index)
		f, err := n.env.Disk.Create(tmp)
		if err != nil {
			n.logf("cannot receive the snapshot at %d: %v", c.Index, err)
			return
		}
		in = &recvState{from: c.From, index: c.Index, term: c.SnapTerm, total: c.Total, tmp: tmp, file: f}
		n.in = in
	}
	if in.complete || c.Offset != in.have {
		ack(in.have)
		return
	}
	if err := in.file.Append(c.Data); err != nil {
		n.logf("receiving the snapshot at %d: %v", c.Index, err)
		n.dropReceived()
		return
	}
	in.have += uint64(len(c.Data))
	if in.have < in.total {
		ack(in.have)
		return
	}
	if err := n.checkReceived(in); err != nil {
		n.logf("the snapshot at %d from node %d is refused: %v", c.Index, c.From, err)
		n.dropReceived()
		ack(0)
		return
	}
	in.complete = true
	ack(in.total)
	in.stepped = true
	n.stepSnapshotMsg(c)
}

// checkReceived syncs a whole received snapshot and reads it back: the
// file's checksum and decoding are the pair of the leader's writing it.
func (n *Node) checkReceived(in *recvState) error {
	if err := in.file.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", in.tmp, err)
	}
	in.file.Close()
	in.file = nil
	// Read a chunk at a time, as recovery reads one: read whole, the
	// file sat in memory beside both the store it fills and the one it
	// replaces (found by review).
	store, index, meta, size, err := core.ReadSnapshot(n.env.Disk, in.tmp)
	if err != nil {
		return fmt.Errorf("reading %s back: %w", in.tmp, err)
	}
	if uint64(size) != in.total {
		return fmt.Errorf("%s holds %d bytes, the leader sent %d", in.tmp, size, in.total)
	}
	if index != in.index || meta.Term != in.term {
		return fmt.Errorf("it holds index %d term %d, the leader said %d term %d", index, meta.Term, in.index, in.term)
	}
	sess, err := decodeSessions(meta.Extra, n.cfg.SessionsMax)
	if err != nil {
		return err
	}
	in.store, in.sess = store, sess
	return nil
}

// stepSnapshotMsg hands Raft the leader's MsgSnap for a snapshot this node
// now holds whole (or does not need).
func (n *Node) stepSnapshotMsg(c *chunk) {
	n.raft.Step(Message{
		Type: MsgSnap, From: c.From, To: n.cfg.ID, Term: c.Term,
		Snapshot: &Snapshot{Index: c.Index, Term: c.SnapTerm},
		Commit:   c.Commit, Context: c.Context,
	})
}

func (n *Node) dropReceived() {
	in := n.in
	n.in = nil
	if in.file != nil {
		in.file.Close()
	}
	_ = n.env.Disk.Remove(in.tmp) // best effort; a restart removes leftovers
}

// install makes the received snapshot the node's state, as Raft's Ready
// says: the snapshot takes its name, the log starts afresh after it. The
// raft-state file marks the install while it runs, so that a crash between
// the rename and the log's reset is finished at the next start instead of
// leaving a log of the replaced history after the snapshot.
func (n *Node) install(s *Snapshot) error {
	in := n.in
	assert(in != nil && in.complete && in.index == s.Index && in.term == s.Term,
		"install: Raft installs the snapshot at %d, which this node did not receive whole", s.Index)
	n.in = nil
	n.saved.Installing = s.Index
	if err := n.state.Save(n.saved.encode()); err != nil {
		return err
	}
	if err := n.env.Disk.Rename(in.tmp, core.SnapshotName(s.Index)); err != nil {
		return fmt.Errorf("renaming %s: %w", in.tmp, err)
	}
	if err := n.env.Disk.SyncDir(); err != nil {
		return fmt.Errorf("syncing the directory after installing the snapshot at %d: %w", s.Index, err)
	}
	if err := n.log.Reset(s.Index + 1); err != nil {
		return err
	}
	n.gc.Rebased()
	n.saved.Installing = 0
	if err := n.state.Save(n.saved.encode()); err != nil {
		return err
	}
	n.snaps.Installed(s.Index, int64(in.total), n.gc.BytesAdded())
	n.snapshotReplaced(s.Index)
	n.store, n.sess = in.store, in.sess
	if n.cfg.Mutation != MutInstallUnindexed {
		n.indexes.Stop()
		n.indexes = core.AttachIndexes(n.store, n.cfg.Indexes, n.env.Clock, n.cfg.IndexBuild, n.env.Logf, core.MutNone)
	}
	n.applied, n.appliedTerm = s.Index, s.Term
	// Proposals the snapshot covers: the session table says whether each
	// was applied.
	for len(n.writes) > 0 && n.writes[0].index <= s.Index {
		w := n.writes[0]
		n.writes = n.writes[1:]
		known, applied, refused := n.sess.has(w.client, w.seq)
		switch {
		case w.client == 0:
			w.reply(outcomeUnknown("a snapshot from the leader replaced this node's log, and a write without a session cannot be looked up in it"))
		case applied && w.key != "":
			w.reply(n.incrAnswer(w.key, w.client, w.seq))
		case applied:
			w.reply(core.OKResponse())
		case refused:
			w.reply(refusedEarlier("a snapshot from the leader replaced this node's log"))
		case known:
			w.reply(superseded()) // its session holds no such write up to the snapshot
		case n.sess.goneSet[w.client]:
			w.reply(outcomeResponse(expired))
		case n.sess.byClient[w.client] == nil:
			// No write of this client applied up to the snapshot's index,
			// this one included.
			w.reply(superseded())
		default:
			// The client had moved past it (below acked): it was answered
			// elsewhere, or given up.
			w.reply(outcomeUnknown("a snapshot from the leader replaced this node's log, and the client had moved past this write"))
		}
	}
	n.logf("installed the leader's snapshot at index %d (term %d, %d keys)", s.Index, s.Term, n.store.Len())
	return nil
}
