package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"

	"dkv/checks"
	"dkv/core"
	"dkv/election"
	"dkv/mesh"
)

// client is a simulated user of the store: one request at a time, its own
// timeout, retries of retryable failures, and a history entry for every
// attempt. Keys come from a small space so that clients collide.
type client struct {
	s     *Sim
	id    int
	addr  Addr
	reqs  int      // logical requests issued
	cur   *attempt // the attempt waiting for its reply
	idle  bool     // done with its share of the workload
	final bool     // the final reader: retries until it gets an answer
	// keys is the final reader's work list.
	keys []string
	// leader is the last leader a node named in a not_leader answer, for
	// a Mode's Target to use.
	leader string
	// rotor picks the next node to try when no leader is known.
	rotor int
	// seq numbers the session's writes; lg is the logical request in
	// progress (Mode.Sessions).
	seq uint64
	lg  *logical
	// writes are the session's logical writes in order, for settling
	// those whose outcome the client never learnt (Sim.settleSessions).
	writes []*logical
	// getsOwed gets of recentKeys (the keys of its last write) come
	// before anything else, after a node started (FaultMix.ReadAfterStart).
	getsOwed   int
	recentKeys []string
	// token is the highest stamp a mesh node answered this client: its
	// next write carries it (Request.After), as KVClient does.
	token mesh.Stamp
	// lastSeen is the value this client last saw of each key (read,
	// written, or reported by a refused condition), which its if_value
	// writes compare with, as a compare-and-set loop does.
	lastSeen checks.Seen
	// walk is the consistent scan this client has under way, if any.
	walk *scanWalk
	// conn numbers the client's connections: it abandons one when a
	// request on it times out, as a real client closes a connection it
	// gave up on, and the next request goes on a new one, not queued
	// behind what the old one still carries.
	conn int
	// callAt and retAt, when not 0, are the call and return times that
	// the request being sent is recorded with: a page of a walk reads its
	// first page's instant (scanWalk).
	callAt, retAt int64
}

// logical is one request of a session client, which it may send several
// times: every attempt of a write carries the same seq, so at most one of
// them applies, and the history records the request once.
type logical struct {
	op       checks.Op
	attempts []*attempt
	// maybe: an attempt's outcome is unknown (it timed out, or the
	// cluster could not say), so the request may have applied.
	maybe   bool
	histIdx int
	seq     uint64 // a write's session seq; 0 for a read
}

// sessionAttemptsMin is the fewest attempts a session client makes before
// it gives up, as ClusterKVClient does across a failover.
const sessionAttemptsMin = 8

// attempt is one sending of one logical request.
type attempt struct {
	c       *client
	id      int64 // unique in the run, for the trace
	req     *core.Request
	op      checks.Op
	tries   int // attempts of this request before this one
	timeout *Scheduled
	done    bool
	// What the hosts know of the attempt, for Op.NoEffect and
	// Op.EffectBy: whether a node took it, and by when its effect, if
	// any, was settled.
	handled  bool
	takenAt  int64 // when a node took it from its queue
	replied  bool
	answer   *core.Response // what the node replied, heard or not
	effectBy int64
	histIdx  int // its entry in the history, once recorded; -1 before
	node     int // the node it was sent to
	conn     int // the client's connection it went on (client.conn)
}

var callKinds = map[string]string{
	core.OpGet: "call-get", core.OpSet: "call-set", core.OpDelete: "call-delete",
	core.OpBulkSet: "call-bulk", core.OpStatus: "call-status", core.OpPing: "call-ping",
	core.OpBulkGet: "call-bulk-get", core.OpBulkDelete: "call-bulk-delete",
	core.OpScan: "call-scan", core.OpExpire: "call-expire", core.OpPersist: "call-persist",
	core.OpIncr: "call-incr",
}

// think waits a little, then issues the next request.
func (c *client) think() {
	d := time.Duration(0)
	if steps := int64(c.s.mix.ThinkMax / latencyQuantum); steps > 0 {
		d = time.Duration(c.s.wr.Int64N(steps+1)) * latencyQuantum
	}
	// A client calls no sooner than a nanosecond after its last answer, as
	// no real client can do both at one instant. It also matters to the
	// check: porcupine treats intervals as closed, so an op called at the
	// instant another returns counts as concurrent with it, and clients in
	// lockstep would chain every batch to the next into one search.
	c.s.w.After(d+1, c.next)
}

// next issues a new logical request, or goes idle once the run's budget is
// spent.
func (c *client) next() {
	if c.final {
		c.nextFinal()
		return
	}
	// Once one client has ended the chaos, every client ends its part
	// with its request under way: the chaos ended at a moment when the
	// service seemed gone (a node gone for good, another not yet seen
	// done rejoining), the others went on through the rest of the run's
	// budget, and the quiet phase took 16 s (cluster seed 302010).
	if c.s.issued >= c.s.cfg.Ops || c.s.stopped || c.s.phase != phaseChaos || (c.s.mode.ChaosMax > 0 && c.s.w.now >= int64(c.s.mode.ChaosMax)) || c.s.serviceGone() {
		c.idle = true
		c.s.endChaos()
		return
	}
	c.s.issued++
	c.reqs++
	c.callAt, c.retAt = 0, 0
	req, op := c.draw()
	c.send(req, op, 0)
}

// draw picks an op by the mix's weights. Values name the client and request
// ("c2.17"), so every value in the history says who wrote it.
func (c *client) draw() (*core.Request, checks.Op) {
	m := &c.s.mix
	r := c.s.wr
	key := func() string { return c.s.keyName(r.IntN(m.Keys)) }
	value := func(suffix string) string {
		if m.WIncr > 0 && suffix == "" && !c.s.indexes && r.IntN(2) == 0 {
			// A counter, for the incrs to add to: as unique as the
			// other values (clients are far fewer than a million).
			return strconv.Itoa((c.id+1)*1_000_000 + c.reqs)
		}
		v := fmt.Sprintf("c%d.%d%s", c.id, c.reqs, suffix)
		if c.s.indexes {
			v += c.valueWords()
		}
		if m.ValuePad > 0 && r.IntN(4) == 0 {
			// Every other request pads with zero bytes, as binary
			// values may: a record's own zeros must not pass for a
			// sector never written (core.whiten). The choice draws
			// no random number: every seed's random stream is as
			// it was.
			pad := "x"
			if c.reqs%2 == 1 {
				pad = "\x00"
			}
			v += ":" + strings.Repeat(pad, r.IntN(m.ValuePad+1))
		}
		return v
	}
	op := checks.Op{Client: c.id, Req: c.reqs}
	// The walk goes on in place of every other op, a choice that draws
	// no random number, so that the ops drawn are those of the seed
	// without views.
	if c.walk != nil && c.reqs%2 == 0 {
		return c.nextPage(op)
	}
	if c.getsOwed > 0 {
		// Half of them read what this client wrote last, the rest any
		// key: what recovery rebuilt from a snapshot shows only on keys
		// that no later write covered.
		c.getsOwed--
		op.Kind, op.Key = checks.KindGet, key()
		if len(c.recentKeys) > 0 && r.IntN(2) == 0 {
			op.Key = c.recentKeys[r.IntN(len(c.recentKeys))]
		}
		return &core.Request{Op: core.OpGet, Key: op.Key}, op
	}
	// bulk_get and bulk_delete come after the older ops, so a seed whose
	// weights for them are 0 draws the ops it drew before they existed.
	bulkKeys := func() []core.KV {
		n := 1 + r.IntN(m.BulkMax)
		kvs := make([]core.KV, n)
		for i := range kvs {
			kvs[i].Key = key()
		}
		return kvs
	}
	keysOf := func(kvs []core.KV) []string {
		ks := make([]string, len(kvs))
		for i, kv := range kvs {
			ks[i] = kv.Key
		}
		return ks
	}
	w := r.IntN(m.WGet + m.WSet + m.WDelete + m.WBulk + m.WBulkGet + m.WBulkDel + m.WScan + m.WCond + m.WIncr + m.WStatus)
	switch {
	case w < m.WGet:
		op.Kind, op.Key = checks.KindGet, key()
		if m.TTLProb > 0 && r.IntN(4) == 0 {
			// A ttl, in the seeds with keys that expire: a read of
			// whether the key exists (and a time left within reason).
			op.Presence = true
			return &core.Request{Op: core.OpTTL, Key: op.Key}, op
		}
		return &core.Request{Op: core.OpGet, Key: op.Key}, op
	case w < m.WGet+m.WSet:
		if m.TTLProb > 0 && r.IntN(5) == 0 {
			// An expire or a persist, in the seeds with keys that
			// expire: a write of a key's deadline alone.
			op.Kind, op.Key = checks.KindExpire, key()
			c.recentKeys = append(c.recentKeys[:0], op.Key)
			if r.IntN(3) == 0 {
				return &core.Request{Op: core.OpPersist, Key: op.Key}, op
			}
			req := &core.Request{Op: core.OpExpire, Key: op.Key}
			ms := 1 + c.s.wr.Int64N(int64(m.TTLMax/time.Millisecond))
			req.TTLMs, op.TTL = uint64(ms), ms*int64(time.Millisecond)
			return req, op
		}
		op.Kind, op.Key, op.Value = checks.KindSet, key(), value("")
		c.recentKeys = append(c.recentKeys[:0], op.Key)
		v := op.Value
		req := &core.Request{Op: core.OpSet, Key: op.Key, Value: &v, DebugSimulateFail: c.s.chance(m.SimFail)}
		c.maybeExpire(req, &op)
		return req, op
	case w < m.WGet+m.WSet+m.WDelete:
		op.Kind, op.Key = checks.KindDelete, key()
		c.recentKeys = append(c.recentKeys[:0], op.Key)
		return &core.Request{Op: core.OpDelete, Key: op.Key}, op
	case w < m.WGet+m.WSet+m.WDelete+m.WBulk:
		op.Kind = checks.KindBulkSet
		n := 1 + r.IntN(m.BulkMax)
		c.recentKeys = c.recentKeys[:0]
		for i := 0; i < n; i++ {
			v := value(fmt.Sprintf("/%d", i))
			if m.BulkPad > 0 {
				v += ":" + strings.Repeat("b", r.IntN(m.BulkPad+1))
			}
			op.Items = append(op.Items, core.KV{Key: key(), Value: v})
			c.recentKeys = append(c.recentKeys, op.Items[i].Key)
		}
		return &core.Request{Op: core.OpBulkSet, Items: op.Items, DebugSimulateFail: c.s.chance(m.SimFail)}, op
	case w < m.WGet+m.WSet+m.WDelete+m.WBulk+m.WBulkGet:
		op.Kind, op.Items = checks.KindBulkGet, bulkKeys()
		return &core.Request{Op: core.OpBulkGet, Keys: keysOf(op.Items)}, op
	case w < m.WGet+m.WSet+m.WDelete+m.WBulk+m.WBulkGet+m.WBulkDel:
		op.Kind, op.Items = checks.KindBulkDelete, bulkKeys()
		c.recentKeys = append(c.recentKeys[:0], keysOf(op.Items)...)
		return &core.Request{Op: core.OpBulkDelete, Keys: keysOf(op.Items)}, op
	case w < m.WGet+m.WSet+m.WDelete+m.WBulk+m.WBulkGet+m.WBulkDel+m.WScan:
		// Every key, the keys of one digit's prefix ("k1" is k1 alone
		// with at most 8 keys), or one key's; after a key or not.
		req := &core.Request{Op: core.OpScan, Limit: uint64(1 + r.IntN(4))}
		switch r.IntN(3) {
		case 1:
			req.Prefix = "k"
		case 2:
			req.Prefix = key()
		}
		if r.IntN(2) == 0 {
			req.StartAfter = key()
		}
		req.Consistent = m.ScanViews && c.reqs%2 == 1
		if req.Consistent {
			// Every page of the walk reads one instant, the first's: the
			// checker holds their reads to it together (checks.Op.Group).
			op.Group = c.s.hist.NewGroup()
		}
		// Recorded as a bulk_get of the keys the page covers, once it
		// is answered (scanned); until then, of every key it may cover.
		for _, k := range c.s.scanCandidates(req) {
			op.Items = append(op.Items, core.KV{Key: k})
		}
		if len(op.Items) > 0 {
			op.Kind = checks.KindBulkGet
		}
		return req, op
	case w < m.WGet+m.WSet+m.WDelete+m.WBulk+m.WBulkGet+m.WBulkDel+m.WScan+m.WCond:
		op.Key = key()
		c.recentKeys = append(c.recentKeys[:0], op.Key)
		req := &core.Request{Key: op.Key}
		// if_value compares with what this client saw last, which
		// another client may have replaced since; with nothing seen, a
		// value no one writes.
		old, ok := c.lastSeen[op.Key]
		if !ok {
			old = "never-written"
		}
		switch r.IntN(4) {
		case 0:
			op.Cond, req.IfAbsent = core.Condition{Kind: core.CondAbsent}, true
		case 1:
			op.Cond, req.IfExists = core.Condition{Kind: core.CondExists}, true
		case 2:
			op.Cond, req.IfValue = core.Condition{Kind: core.CondValue, Value: old}, &old
		case 3:
			op.Cond, req.IfValue = core.Condition{Kind: core.CondValue, Value: old}, &old
			op.Kind, req.Op = checks.KindDelete, core.OpDelete
			return req, op
		}
		op.Kind, req.Op, op.Value = checks.KindSet, core.OpSet, value("")
		v := op.Value
		req.Value = &v
		c.maybeExpire(req, &op) // a lease, with if_absent
		return req, op
	case w < m.WGet+m.WSet+m.WDelete+m.WBulk+m.WBulkGet+m.WBulkDel+m.WScan+m.WCond+m.WIncr:
		op.Kind, op.Key, op.Delta = checks.KindIncr, key(), 1
		c.recentKeys = append(c.recentKeys[:0], op.Key)
		req := &core.Request{Op: core.OpIncr, Key: op.Key}
		switch r.IntN(20) {
		case 0:
			// Near the ends of int64: past them from most counters, and
			// a counter left there takes the next incrs past them.
			op.Delta = math.MaxInt64 - r.Int64N(8)
		case 1:
			op.Delta = math.MinInt64 + r.Int64N(8)
		case 2, 3, 4, 5:
			// No delta: the default, 1.
			return req, op
		default:
			op.Delta = r.Int64N(9) - 3
		}
		d := op.Delta
		req.Delta = &d
		return req, op
	default:
		return &core.Request{Op: core.OpStatus}, op // op.Kind 0: not recorded
	}
}

func keyName(i int) string { return fmt.Sprintf("k%d", i) }

// keyName is the workload's key i: keyName(i), or in a mesh meshKeys[i].
func (s *Sim) keyName(i int) string {
	if s.mode.Mesh {
		return meshKeys[i]
	}
	return keyName(i)
}

// meshKeys are a mesh run's keys: each odd one shares the anti-entropy
// bucket (mesh's bucketOf: FNV-1a of the key, modulo its bucketsN) of the
// key before it, "k1-…" that of "k0", and so on. With keyName's keys, a
// workload's 1 to 8 keys fell in 1,024 buckets one to a bucket but by
// chance, and what a bucket of several keys asks of the node went
// untested: a scan whose walk of a bucket stopped at its first tombstone
// (the mutant scan-tomb-ends-bucket) lost no key in 1,000 seeds. The hash
// is mesh's, copied: if the mesh's buckets change, the keys stop sharing
// them, and that mutant's test (TestCatchesMeshMutations) fails.
var meshKeys = func() []string {
	keys := make([]string, keysMax)
	for i := range keys {
		keys[i] = keyName(i)
		if i%2 == 0 {
			continue
		}
		for n := 0; ; n++ {
			if k := fmt.Sprintf("k%d-%d", i, n); meshBucket(k) == meshBucket(keys[i-1]) {
				keys[i] = k
				break
			}
		}
	}
	return keys
}()

// meshBuckets is mesh's bucketsN.
const meshBuckets = 1024

// meshBucket is mesh's bucketOf(key).
func meshBucket(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64() % meshBuckets
}

// ptrValue is *v, or "" for nil.
func ptrValue(v *string) string {
	if v == nil {
		return ""
	}
	return *v
}

// maybeExpire gives a set a ttl_ms, by the mix's odds (no draw at all in a
// seed without them, whose requests stay as they were).
func (c *client) maybeExpire(req *core.Request, op *checks.Op) {
	m := &c.s.mix
	if m.TTLProb == 0 || c.s.wr.Float64() >= m.TTLProb {
		return
	}
	ms := 1 + c.s.wr.Int64N(int64(m.TTLMax/time.Millisecond))
	req.TTLMs, op.TTL = uint64(ms), ms*int64(time.Millisecond)
}

// send makes one attempt of a request.
func (c *client) send(req *core.Request, op checks.Op, tries int) {
	s := c.s
	if s.mode.Sessions && tries == 0 {
		c.lg = &logical{op: op, histIdx: -1}
		c.lg.op.Call = s.w.now
		if req.Op == core.OpSet || req.Op == core.OpDelete || req.Op == core.OpBulkSet || req.Op == core.OpBulkDelete || req.Op == core.OpExpire || req.Op == core.OpPersist || req.Op == core.OpIncr {
			// One request at a time: every lower seq was answered or
			// given up, so the cluster may forget them.
			c.seq++
			req.ClientID, req.Seq, req.Acked = uint64(c.id)+1, c.seq, c.seq
			if lag := uint64(s.mix.AckLag); lag > 0 {
				// Acknowledge later than the client could, as a client
				// with writes in flight does: the cluster keeps the seqs
				// since, and a copy of one of them that comes late is
				// judged by them.
				req.Acked = c.seq - min(lag, c.seq-1)
			}
			c.lg.seq = c.seq
			c.writes = append(c.writes, c.lg)
		}
	}
	s.attempts++
	a := &attempt{c: c, id: s.attempts, op: op, tries: tries, histIdx: -1, conn: c.conn}
	if c.lg != nil {
		c.lg.attempts = append(c.lg.attempts, a)
	}
	if s.mode.Mesh && tries == 0 {
		c.meshSend(req)
	}
	if s.mode.Mesh {
		c.meshAttempt(req)
	}
	// Each attempt gets its own copy: the node may keep what it is given.
	cp := *req
	cp.Items = append([]core.KV(nil), req.Items...)
	a.req = &cp
	a.op.Call = s.w.now
	if c.callAt != 0 {
		a.op.Call = c.callAt
		if c.lg != nil && tries == 0 {
			c.lg.op.Call = c.callAt
		}
	}
	c.cur = a
	s.trace(c.addr, callKinds[req.Op], a.id, int64(tries), op.Key)
	to := s.target(c)
	a.node = int(to)
	s.net.Send(c.addr, to, &request{a: a, req: a.req})
	timeout := s.mix.Timeout
	if c.final {
		timeout = finalTimeout
	}
	a.timeout = s.w.After(timeout, func() { c.timedOut(a) })
}

// finalTimeout is the final reader's patience: generous, since faults have
// stopped and it is liveness, not latency, that is judged.
const finalTimeout = time.Second

func (c *client) timedOut(a *attempt) {
	if a.done || c.s.stopped {
		return
	}
	a.done = true
	c.s.trace(c.addr, "timeout", a.id, 0, "")
	c.leader = "" // the node may be dead: try another
	if c.s.mix.Reconnect {
		c.conn++ // and the connection is given up
	}
	c.finish(a, checks.Unknown, "timeout")
	c.retryOrNext(a)
}

// receive takes a reply from the network.
func (c *client) receive(m *response) {
	a := m.a
	if a != c.cur || a.done {
		// The answer to an attempt the client gave up on; a real client
		// would have closed the connection.
		c.s.trace(c.addr, "late-reply", a.id, 0, "")
		return
	}
	a.done = true
	a.timeout.Cancel()
	resp := &m.resp
	code := ""
	if resp.Error != nil {
		code = resp.Error.Code
	}
	c.s.trace(c.addr, "return", a.id, 0, code)
	switch {
	case code == core.CodeConditionFailed && a.op.Cond.Kind != core.CondNone:
		if !c.conditionFailed(a, resp) {
			return
		}
		c.finish(a, checks.OK, code)
	case resp.OK && a.op.Kind == checks.KindExpire:
		if resp.Value != nil || resp.TTLMs != nil && (a.req.Op != core.OpPersist || *resp.TTLMs > uint64(c.s.mix.TTLMax/time.Millisecond)) {
			c.s.fail("protocol", fmt.Sprintf("%s %s answered %+v, a value, or a ttl_ms that is not a persist's of at most any TTL set (attempt %d)", a.req.Op, a.op.Key, resp, a.id))
			return
		}
		c.finish(a, checks.OK, "")
	case resp.OK && a.op.Kind == checks.KindIncr:
		if _, ok := core.ParseCounter(ptrValue(resp.Value)); !ok || resp.TTLMs != nil {
			c.s.fail("protocol", fmt.Sprintf("incr %s answered %+v, not a counter's value (attempt %d)", a.op.Key, resp, a.id))
			return
		}
		a.op.Value = *resp.Value
		c.finish(a, checks.OK, "")
	case (code == core.CodeNotInteger || code == core.CodeOverflow) && a.op.Kind == checks.KindIncr:
		// A refusal: nothing written, and the answer says what the
		// key held (no counter, or one the delta takes past int64).
		a.op.Refusal = code
		c.finish(a, checks.OK, code)
	case code == core.CodeNotFound && a.op.Kind == checks.KindExpire:
		// The key was not there: nothing written, and the answer is the
		// read it amounts to, of whether the key exists.
		a.op.Kind, a.op.Presence, a.op.Found, a.op.TTL = checks.KindGet, true, false, 0
		c.finish(a, checks.OK, code)
	case resp.OK:
		if a.op.Presence {
			if resp.Value != nil || resp.TTLMs != nil && *resp.TTLMs > uint64(c.s.mix.TTLMax/time.Millisecond) {
				c.s.fail("protocol", fmt.Sprintf("ttl %s answered %+v, a value or more time than any TTL set (attempt %d)", a.op.Key, resp, a.id))
				return
			}
			a.op.Found, a.op.Deadline = true, checks.DeadlineNone
			if resp.TTLMs != nil {
				a.op.Deadline = checks.DeadlineSome
			}
		} else if a.op.Kind == checks.KindGet {
			if resp.Value == nil {
				c.s.fail("protocol", fmt.Sprintf("get %s answered ok without a value (attempt %d)", a.op.Key, a.id))
				return
			}
			a.op.Found, a.op.Value = true, *resp.Value
		}
		if a.req.Op == core.OpScan {
			if !c.scanned(a, resp) || !c.walked(a, resp) {
				return
			}
		} else if a.op.Kind == checks.KindBulkGet {
			if len(resp.Values) != len(a.op.Items) {
				c.s.fail("protocol", fmt.Sprintf("bulk_get of %d keys answered %d values (attempt %d)", len(a.op.Items), len(resp.Values), a.id))
				return
			}
			a.op.Reads = resp.Values
		}
		if a.op.Kind == checks.KindBulkDelete && (resp.Deleted == nil && !c.s.mode.Sessions || resp.Deleted != nil && *resp.Deleted > uint64(distinctKeys(a.op.Items))) {
			c.s.fail("protocol", fmt.Sprintf("bulk_delete of %d distinct keys answered deleted %v (attempt %d)", distinctKeys(a.op.Items), resp.Deleted, a.id))
			return
		}
		if c.s.mode.Mesh && a.op.Kind != 0 {
			c.meshAnswered(a, resp)
		}
		c.finish(a, checks.OK, "")
	case code == core.CodeNotFound && a.op.Kind == checks.KindGet:
		if c.s.mode.Mesh {
			c.meshAnswered(a, resp)
		}
		c.finish(a, checks.OK, "")
	case retryable(code):
		if code == core.CodeStoreFull {
			c.s.storeFull++
		}
		c.leader = ""
		c.finish(a, checks.Failed, code)
		c.retryOrNext(a)
		return
	case code == core.CodeSessionExpired && c.s.mode.Sessions && len(c.s.clients) < election.DefaultNodeConfig(0, nil).SessionsMax:
		// With fewer clients than the cluster keeps sessions for, none
		// can be forgotten.
		c.s.fail("protocol", fmt.Sprintf("%s (attempt %d) answered session_expired, though the cluster has room for all %d clients' sessions: %s",
			a.req.Op, a.id, len(c.s.clients), resp.Error.Message))
		return
	case code == core.CodeOutcomeUnknown && c.s.mode.Sessions:
		// The cluster cannot tell whether an earlier attempt applied.
		c.finish(a, checks.Unknown, code)
		c.retryOrNext(a)
		return
	case code == core.CodeOutcomeUnknown && c.s.mode.Mesh:
		// A quorum write that its peers did not confirm in time: durable
		// on the node that took it, and on its way to the others; so it
		// joins the mesh's checks as a write acknowledged with its stamp.
		if resp.Stamp == "" {
			c.s.fail("protocol", fmt.Sprintf("%s (attempt %d) answered outcome_unknown without the stamp of the write it made durable", a.req.Op, a.id))
			return
		}
		c.meshAnswered(a, resp)
		c.finish(a, checks.Unknown, code)
	case code == core.CodeConditionRefusedEarlier && c.s.mode.Sessions && a.op.Cond.Kind != core.CondNone:
		// A retry of a write refused when it first applied, whose
		// answer was lost: certainly not applied, value unknown.
		c.finish(a, checks.Failed, code)
		c.finishLogical(checks.Failed)
	case code == core.CodeScanExpired && a.req.View != "":
		// The view went: the node restarted, lost the leadership, or
		// dropped it. The walk is over; the page read nothing.
		c.walk = nil
		c.finish(a, checks.Failed, code)
		if c.lg != nil {
			c.finishLogical(checks.Failed)
		}
	case code == core.CodeNotLeader:
		// A follower applies nothing; go where it points.
		c.leader = resp.Error.Leader
		c.finish(a, checks.Failed, code)
		c.retryOrNext(a)
		return
	default:
		c.s.fail("protocol", fmt.Sprintf("unexpected answer to %s (attempt %d): %+v", a.req.Op, a.id, resp.Error))
		return
	}
	c.think()
}

// conditionFailed checks a refused conditional write and makes its history
// entry the get it amounts to: the key's value the refusal reported, which
// must be one the condition does not hold for. It reports false, having
// failed the run, for a refusal that contradicts itself.
func (c *client) conditionFailed(a *attempt, resp *core.Response) bool {
	cur, found := "", resp.Value != nil
	if found {
		cur = *resp.Value
	}
	if a.op.Cond.Holds(cur, found) {
		c.s.fail("protocol", fmt.Sprintf("%s %s (%s, attempt %d) refused with condition_failed, but the value it reports (%q, found %v) meets the condition",
			a.req.Op, a.op.Key, a.op.Cond, a.id, cur, found))
		return false
	}
	a.op.Kind, a.op.Cond, a.op.Found, a.op.Value = checks.KindGet, core.Condition{}, found, cur
	return true
}

// retryable reports whether an error code promises that the request had no
// effect, so that retrying it is safe. A store_full may clear as other
// clients delete.
func retryable(code string) bool {
	return code == core.CodeUnavailable || code == core.CodeIOError || code == core.CodeDiskFull || code == core.CodeStoreFull
}

// finish records the attempt in the history; for a session client, it
// records what the attempt says of the logical request, which is recorded
// once it is over (finishLogical).
func (c *client) finish(a *attempt, o checks.Outcome, note string) {
	c.cur = nil
	if a.op.Kind == 0 {
		c.s.statusOps++
		return
	}
	if o == checks.OK {
		c.saw(&a.op)
	}
	if lg := c.lg; lg != nil {
		lg.op.Note = note
		switch o {
		case checks.OK:
			// Items too: a scan's are the keys its page covered; and
			// the kind and condition: a refused condition is a get.
			lg.op.Found, lg.op.Value, lg.op.Reads, lg.op.Items = a.op.Found, a.op.Value, a.op.Reads, a.op.Items
			lg.op.Kind, lg.op.Cond, lg.op.Presence, lg.op.TTL = a.op.Kind, a.op.Cond, a.op.Presence, a.op.TTL
			lg.op.Refusal, lg.op.Deadline = a.op.Refusal, a.op.Deadline
			c.finishLogical(checks.OK)
		case checks.Unknown:
			lg.maybe = true
		}
		return
	}
	a.op.Return, a.op.Outcome, a.op.Note, a.op.Final = c.s.w.now, o, note, c.final
	if c.retAt != 0 && o == checks.OK {
		a.op.Return = c.retAt
	}
	if a.handled {
		a.op.Taken = a.takenAt
	}
	a.histIdx = c.s.hist.Add(a.op)
	if o == checks.Unknown {
		c.s.unknowns = append(c.s.unknowns, a)
	}
}

// saw notes the value of a key that an OK op read or wrote, for the
// client's next if_value write of it.
func (c *client) saw(op *checks.Op) {
	if c.lastSeen == nil {
		c.lastSeen = checks.Seen{}
	}
	c.lastSeen.Note(op)
}

// finishLogical records the session client's request: ok, or given up —
// unknown if an attempt may have applied, failed if none can have.
func (c *client) finishLogical(o checks.Outcome) {
	lg := c.lg
	c.lg = nil
	if o != checks.OK && lg.maybe {
		o = checks.Unknown
	}
	lg.op.Return, lg.op.Outcome, lg.op.Final = c.s.w.now, o, c.final
	if c.retAt != 0 && o == checks.OK {
		lg.op.Return = c.retAt
	}
	lg.op.Taken = lg.taken()
	lg.histIdx = c.s.hist.Add(lg.op)
	if o == checks.Unknown {
		c.s.unknownLogicals = append(c.s.unknownLogicals, lg)
	}
}

// taken is when a node first took one of the request's attempts, 0 if
// none was taken: the request cannot have applied before.
func (lg *logical) taken() int64 {
	var t int64
	for _, a := range lg.attempts {
		if a.handled && (t == 0 || a.takenAt < t) {
			t = a.takenAt
		}
	}
	return t
}

func (c *client) retryOrNext(a *attempt) {
	if c.s.stopped {
		return
	}
	if c.lg != nil {
		if a.tries+1 < max(c.s.mix.Retries+1, sessionAttemptsMin) || c.final {
			backoff := time.Duration(1+c.s.wr.IntN(20)) * latencyQuantum * 10
			c.s.w.After(backoff, func() { c.send(a.req, a.op, a.tries+1) })
			return
		}
		c.finishLogical(checks.Failed)
		c.think()
		return
	}
	if a.tries < c.s.mix.Retries || c.final {
		// Back off a little: hammering a node that just refused helps
		// nobody, and it spreads retries over different weather.
		backoff := time.Duration(1+c.s.wr.IntN(20)) * latencyQuantum * 10
		c.s.w.After(backoff, func() { c.send(a.req, a.op, a.tries+1) })
		return
	}
	c.think()
}

// nextFinal reads the next key of the final phase.
func (c *client) nextFinal() {
	if len(c.keys) == 0 {
		c.idle = true
		c.s.finalDone()
		return
	}
	key := c.keys[0]
	c.keys = c.keys[1:]
	c.reqs++
	c.send(&core.Request{Op: core.OpGet, Key: key}, checks.Op{Client: c.id, Req: c.reqs, Kind: checks.KindGet, Key: key}, 0)
}

func (s *Sim) clientByID(id int) *client {
	if id < len(s.clients) {
		return s.clients[id]
	}
	return s.final
}

// sessionApplied records that a node applied the session write (client,
// seq) now, unless one did before.
func (s *Sim) sessionApplied(client, seq uint64) {
	if s.appliedAt == nil {
		s.appliedAt = map[[2]uint64]int64{}
	}
	k := [2]uint64{client, seq}
	if _, ok := s.appliedAt[k]; !ok {
		s.appliedAt[k] = s.w.now
	}
}

// settleSessions settles each session write whose client gave up on it by
// what the simulator saw the nodes do: applied when the first node applied
// it (it was committed by then: it counts as acknowledged at that time), or
// never (nothing applied it by the end of the run, after the final reads).
// Without this, every such write could take effect at any later time, and
// a seed whose cluster was mostly unavailable leaves porcupine hundreds of
// them. The watcher checks that replicas agree on every applied entry, so
// the first node's apply is the cluster's.
func (s *Sim) settleSessions() {
	for _, c := range s.clients {
		for _, lg := range c.writes {
			if lg.histIdx < 0 || s.hist.Ops[lg.histIdx].Outcome != checks.Unknown {
				continue
			}
			op := &s.hist.Ops[lg.histIdx]
			if at, ok := s.appliedAt[[2]uint64{uint64(c.id) + 1, lg.seq}]; ok {
				op.Settled, op.EffectBy = checks.SettledApplied, at
			} else {
				op.Settled = checks.SettledNoEffect
			}
		}
	}
}

// distinctKeys counts the keys of items, each once: what a bulk_delete can
// have found.
func distinctKeys(items []core.KV) int {
	seen := make(map[string]bool, len(items))
	for _, kv := range items {
		seen[kv.Key] = true
	}
	return len(seen)
}
