package core

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Ops of the client protocol. docs/PROTOCOL.md is their specification.
const (
	OpSet     = "set"
	OpGet     = "get"
	OpDelete  = "delete"
	OpBulkSet = "bulk_set"
	// OpBulkGet reads every key of Keys at one instant; OpBulkDelete
	// deletes them all atomically and says how many existed.
	OpBulkGet    = "bulk_get"
	OpBulkDelete = "bulk_delete"
	OpPing       = "ping"
	OpStatus     = "status"
	// OpAuth proves that the client knows the server's secret (its
	// --auth-file). The host answers it; it never reaches a node.
	OpAuth = "auth"
	// OpScan reads the keys that start with Prefix, after StartAfter, in
	// key order, a page at a time (ScanResponse).
	OpScan = "scan"
	// OpTTL reads how long a key has left (Response.TTLMs).
	OpTTL = "ttl"
	// OpExpire gives an existing key a deadline TTLMs from now, in place
	// of the one it had, without writing its value; OpPersist takes its
	// deadline away (Response.TTLMs: what it had left). Both answer
	// CodeNotFound for a key that does not exist.
	OpExpire  = "expire"
	OpPersist = "persist"
	// OpIncr adds Delta (1 if absent) to the counter a key holds (a
	// missing key holding 0) and answers its new value, the key's deadline
	// kept; see ParseCounter for the form of a counter.
	OpIncr = "incr"
	// The index ops, served with --enable-indexes (see Indexes).
	OpSearch        = "search"
	OpSearchSimilar = "search_similar"
)

// Error codes of the client protocol. They are stable: clients match on them.
const (
	CodeBadRequest     = "bad_request" // malformed JSON, missing or mistyped field
	CodeUnknownOp      = "unknown_op"  // op is not one this server knows
	CodeTooLarge       = "too_large"   // line, key, value or batch over its limit
	CodeNotFound       = "not_found"   // get of a key that does not exist
	CodeUnavailable    = "unavailable" // cannot serve now; safe to retry
	CodeNotLeader      = "not_leader"  // a cluster follower; Error.Leader says where to go
	CodeTooManyConns   = "too_many_connections"
	CodeTimeout        = "timeout"         // a partial line stalled past the line timeout
	CodeDiskFull       = "disk_full"       // the write was not persisted and not applied
	CodeIOError        = "io_error"        // the write was not persisted and not applied
	CodeNotImplemented = "not_implemented" // a feature that is not built in this server
	// CodeStoreFull refuses a write that would take the store's data
	// bytes past the node's bound (Limits.DataBytesMax, --max-data-bytes):
	// it was not applied. Writes that do not grow the store (deletes, a
	// shorter value) are still taken, so a full store can be emptied.
	CodeStoreFull = "store_full"
	CodeInternal  = "internal"
	// CodeSessionExpired refuses a write of a client session the cluster
	// has forgotten (see SessionsMax): its retry cannot be told from a new
	// write, so it is not applied. The client must treat the write's
	// outcome as unknown.
	CodeSessionExpired = "session_expired"
	// CodeOutcomeUnknown answers a cluster write that was proposed but
	// whose fate the node cannot learn in time: leadership changed and its
	// copy of the write was replaced, or no majority answered. It may still
	// apply; a session client retries it with the same seq.
	CodeOutcomeUnknown = "outcome_unknown"
	// CodeIndexesDisabled answers a search op on a server started without
	// --enable-indexes.
	CodeIndexesDisabled = "indexes_disabled"
	// CodeAuthRequired answers any request but auth on a connection that
	// has not yet proved the server's secret; CodeAuthFailed answers an
	// auth whose password is not the secret, or sent to a server that has
	// none.
	CodeAuthRequired = "auth_required"
	CodeAuthFailed   = "auth_failed"
	// CodeTLSRequired answers a client that spoke plain text to a port
	// that speaks TLS only; the connection then closes.
	CodeTLSRequired = "tls_required"
	// CodeConditionFailed answers a conditional write (if_absent,
	// if_exists, if_value) whose condition did not hold: nothing was
	// written. The answer's value is the key's value at that instant,
	// absent when the key did not exist.
	CodeConditionFailed = "condition_failed"
	// CodeConditionRefusedEarlier answers a cluster session write that
	// was refused for its condition when it first applied, and whose
	// answer did not reach the client: nothing was written. The key has
	// changed since (or the node cannot look), so the value it was refused
	// on is not known; unlike condition_failed, the answer carries no
	// value.
	CodeConditionRefusedEarlier = "condition_refused_earlier"
	// CodeScanExpired answers a page of a consistent scan whose view the
	// node no longer keeps (see Views): the scan must start again.
	CodeScanExpired = "scan_expired"
	// CodeNotInteger answers an incr of a key whose value is not a
	// counter (ParseCounter); CodeOverflow, one whose sum would leave the
	// int64 range. Nothing was written.
	CodeNotInteger = "not_integer"
	CodeOverflow   = "overflow"
)

// Search modes: every query word must match (the default), or any.
const (
	SearchModeAll = "all"
	SearchModeAny = "any"
)

// KV is one key and its value. In a scan's answer, TTLMs is the time the
// key had left when the page was read, for a key that expires (0: due, not
// yet deleted); nil for one that does not. A bulk_set's items take none:
// the request is refused.
type KV struct {
	Key   string  `json:"key"`
	Value string  `json:"value"`
	TTLMs *uint64 `json:"ttl_ms,omitempty"`
}

// Request is one client request: one JSON object on one line.
type Request struct {
	// ID is echoed back verbatim in the response; the node never reads it.
	ID    jsontext.Value `json:"id,omitzero"`
	Op    string         `json:"op"`
	Key   string         `json:"key,omitempty"`
	Value *string        `json:"value,omitzero"`
	Items []KV           `json:"items,omitempty"`
	// Keys are bulk_get's and bulk_delete's keys, in request order; a key
	// may repeat.
	Keys []string `json:"keys,omitempty"`
	// Presence marks a bulk_get whose answer only says which keys exist
	// (RESP's EXISTS and TOUCH, which count them): its values are never
	// sent, so their bytes are not bounded (BulkGetBytesMax). Not on the
	// wire: a host sets it.
	Presence bool `json:"-"`
	// DebugSimulateFail makes the snapshot that this write triggers fail at
	// random (as an fsync failure would). The write itself stays durable.
	DebugSimulateFail bool `json:"debug_simulate_fail,omitzero"`

	// A client session makes a cluster write exactly-once: the client
	// picks a random ClientID (1..2^53-1) once, numbers its writes Seq =
	// 1, 2, ... and sends a retry with the same Seq. Acked says that the
	// client has the answers of every Seq below it, so the cluster may
	// forget them. A single node ignores these fields.
	ClientID uint64 `json:"client_id,omitzero"`
	Seq      uint64 `json:"seq,omitzero"`
	Acked    uint64 `json:"acked,omitzero"`

	// Mesh writes only. After is the stamp of a write this client saw
	// acknowledged (any node's): the new write is stamped above it, so it
	// wins over that one whatever the nodes' clocks say. Quorum asks for
	// the write to be durable on that many nodes (this one included)
	// before the answer; 0 means the node's default.
	After  string `json:"after,omitzero"`
	Quorum uint64 `json:"quorum,omitzero"`

	// Search ops only. Query is the words (search: "quoted phrases"
	// too); Mode is SearchModeAll or SearchModeAny; Limit (search) and
	// TopK (search_similar) cap the hits, 0 meaning the default. Both are
	// refused when sent as 0 (see DecodeRequest).
	Query string `json:"query,omitzero"`
	Mode  string `json:"mode,omitzero"`
	Limit uint64 `json:"limit,omitzero"`
	TopK  uint64 `json:"top_k,omitzero"`

	// Password is auth's: the server's secret.
	Password string `json:"password,omitzero"`

	// Scan only. Prefix selects the keys that start with it ("" for
	// all); StartAfter, the keys after it (the last key of the previous
	// page); Limit caps the page (0: ScanLimitDefault); KeysOnly leaves
	// the values out.
	Prefix     string `json:"prefix,omitzero"`
	StartAfter string `json:"start_after,omitzero"`
	KeysOnly   bool   `json:"keys_only,omitzero"`
	// Consistent asks for a scan whose pages all read the store of one
	// instant, the first page's: its answer names a View (Views), which
	// the next pages send.
	Consistent bool   `json:"consistent,omitzero"`
	View       string `json:"view,omitzero"`
	// Close, with View, ends a consistent scan before its last page: the
	// node drops the view (each pins what later writes replace, and a
	// node keeps at most 64), and answers ok with no items. A walk that
	// reads to its last page needs none: that page drops it.
	Close bool `json:"close,omitzero"`

	// Conditional writes: set with one of them, delete with IfValue. The
	// write applies only if, at its instant, the key does not exist
	// (IfAbsent), exists (IfExists), or holds *IfValue; otherwise it is
	// answered CodeConditionFailed (see Condition). Not in a mesh.
	IfAbsent bool    `json:"if_absent,omitzero"`
	IfExists bool    `json:"if_exists,omitzero"`
	IfValue  *string `json:"if_value,omitzero"`

	// TTLMs makes a set's key expire: the node deletes it, as a write of
	// its own, once TTLMs milliseconds have passed on its calendar clock
	// since it took the set (1..TTLMsMax; 0, absent: the key stays until
	// written again). A set without it keeps the key for good, as does a
	// bulk_set. Not in a mesh.
	TTLMs uint64 `json:"ttl_ms,omitzero"`

	// Delta is what an incr adds, negative to subtract; absent (nil): 1.
	// Not in a mesh.
	Delta *int64 `json:"delta,omitzero"`

	// Prepared is what Indexes.Prepare made of a write's values off the
	// node's loop; never on the wire.
	Prepared any `json:"-"`
}

// AuthSecretBytesMax bounds a server's secret and so an auth's password.
const AuthSecretBytesMax = 512

// PasswordFromFile is the password a --auth-file holds: its content, one
// trailing line break (LF or CRLF) dropped. The server, the CLI and the
// launcher all read the file so.
func PasswordFromFile(content []byte) string {
	return strings.TrimSuffix(strings.TrimSuffix(string(content), "\n"), "\r")
}

// ClientIDMax bounds client ids to what a JSON number holds exactly in
// every language (a double's 53-bit mantissa).
const ClientIDMax = 1<<53 - 1

// Response is one reply line.
type Response struct {
	ID    jsontext.Value `json:"id,omitzero"`
	OK    bool           `json:"ok"`
	Value *string        `json:"value,omitzero"`
	// Stamp is a mesh write's stamp, an opaque token a client passes as
	// the After of its next write.
	Stamp string `json:"stamp,omitzero"`
	// Values answer a bulk_get, one per requested key in request order;
	// nil (JSON null) for a key that does not exist.
	Values []*string `json:"values,omitzero"`
	// Deleted answers a bulk_delete: how many of its distinct keys
	// existed when it applied. A cluster's answer to the retry of a
	// session write that had already applied leaves it out (nil): the
	// count belongs to the first attempt, which the cluster no longer has.
	Deleted *uint64 `json:"deleted,omitzero"`
	Status  *Status `json:"status,omitempty"`
	// Hits answer a search op, best first; empty, not absent, when
	// nothing matched.
	Hits []Hit `json:"hits,omitzero"`
	// A scan's page, in key order: Items, or Keys with keys_only; empty,
	// not absent, when no key is left. More says whether keys are left
	// after the page's last; it is set on every scan's answer.
	Items []KV     `json:"items,omitzero"`
	Keys  []string `json:"keys,omitzero"`
	More  *bool    `json:"more,omitzero"`
	// View names the pinned view a consistent scan's next pages read; set
	// while keys are left.
	View string `json:"view,omitzero"`
	// TTLMs answers a ttl: the milliseconds the key has left (0 once its
	// deadline passed and until the node deletes it); absent for a key
	// without a deadline. It answers a persist so too, with what the key
	// had left before: absent if it had no deadline (or, in a cluster, for
	// the retry of a session write that had already applied).
	TTLMs *uint64 `json:"ttl_ms,omitzero"`
	Error *Error  `json:"error,omitempty"`
}

// bulkSetTTLRefused says why a bulk_set's item may not carry ttl_ms.
const bulkSetTTLRefused = "a bulk_set's items take no ttl_ms (a scan's answer carries it): set each key that expires with a set and its ttl_ms"

// TTLMsMax bounds a set's ttl_ms: ten years.
const TTLMsMax = 10 * 365 * 24 * 3600 * 1000

// Error is the error object of a failed response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Leader is the address of the current leader, for not_leader.
	Leader string `json:"leader,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Status describes a node, for the status op.
type Status struct {
	Mode          string `json:"mode"`
	Keys          int    `json:"keys"`
	LastIndex     uint64 `json:"last_index"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	WALSegments   int    `json:"wal_segments"`
	WALBytes      int64  `json:"wal_bytes"`
	Snapshotting  bool   `json:"snapshotting"`
	// ScanViews counts the consistent scans' views the node keeps (see
	// Views): each holds what writes replace while it lasts.
	ScanViews int `json:"scan_views"`
	// Expiring counts the keys with a deadline (a set's ttl_ms).
	Expiring int `json:"expiring"`
	// DataBytes is the store's data bytes (Store.DataBytes), and
	// DataBytesMax its bound (Limits.DataBytesMax; 0: none).
	DataBytes    int64 `json:"data_bytes"`
	DataBytesMax int64 `json:"max_data_bytes"`
	// IndexBytesMax is the search indexes' bound (Limits.IndexBytesMax),
	// present with indexes and a bound; their bytes are in Indexes.
	IndexBytesMax int64 `json:"max_index_bytes,omitzero"`
	// Cluster mode only.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
	// Mesh mode only.
	Mesh *MeshStatus `json:"mesh,omitempty"`
	// With --enable-indexes only.
	Indexes *IndexStatus `json:"indexes,omitempty"`
}

// MeshStatus is a mesh node's view of its replication.
type MeshStatus struct {
	NodeID     int    `json:"node_id"`
	Clock      string `json:"clock"`                // the hybrid clock's last reading
	Tombstones int    `json:"tombstones"`           // deletes held until every peer has them
	Collected  int    `json:"tombstones_collected"` // since the node started
	// Horizon: tombstones at or below this stamp have been collected.
	Horizon string `json:"horizon"`
	// Complete: this node holds every write at or below this stamp, or a
	// newer one of its key (its peers' passes with it say so).
	Complete string `json:"complete"`
	// Stable: every peer held everything this node held at this stamp.
	Stable      string `json:"stable"`
	WriteQuorum int    `json:"write_quorum"`
	// QuorumWaiting counts writes waiting for their peers' acknowledgements.
	QuorumWaiting int              `json:"quorum_waiting"`
	Peers         []MeshPeerStatus `json:"peers"`
	// Removed lists the nodes removed from the mesh for good
	// (--removed-nodes), which are no peers.
	Removed []int `json:"removed,omitempty"`
}

// MeshPeerStatus is what a mesh node knows of one peer.
type MeshPeerStatus struct {
	NodeID int `json:"node_id"`
	// HeardAgoMs: since the last message from it; -1 if none since start.
	HeardAgoMs int64 `json:"heard_ago_ms"`
	// Anti-entropy with it: complete passes over every bucket, the time
	// since the last one finished (the lag: anything missed before then
	// has been repaired; -1: none yet), and where the current pass is.
	Passes       int   `json:"passes"`
	PassAgoMs    int64 `json:"pass_ago_ms"`
	PassBucket   int   `json:"pass_bucket"`
	ItemsSent    int64 `json:"items_sent"`    // by anti-entropy
	ItemsFetched int64 `json:"items_fetched"` // by anti-entropy, applied here
	Replicated   int64 `json:"replicated"`    // writes sent to it as they happened
	Unreachable  bool  `json:"unreachable"`   // a round timed out and none has answered since
	// Clock: "ahead" when this node's calendar clock is more than the max
	// offset ahead of the peer's, "behind" when more than that behind, by
	// the calendar readings the two send each other; "" when in step, as
	// far as the last few seconds tell.
	Clock string `json:"clock,omitempty"`
}

// ClusterStatus is a cluster node's view of the replication.
type ClusterStatus struct {
	NodeID int    `json:"node_id"`
	Role   string `json:"role"` // leader, follower, candidate, pre-candidate
	Term   uint64 `json:"term"`
	// LeaderID is -1 when no leader is known; Leader is its client address.
	LeaderID int    `json:"leader_id"`
	Leader   string `json:"leader,omitempty"`
	Commit   uint64 `json:"commit"`
	Applied  uint64 `json:"applied"`
	Sessions int    `json:"sessions"`
	// Rejoining: the node started on an empty directory (in place of a
	// lost one, or as a new cluster's node) and votes in no election yet
	// (election.Raft's rejoined says when it will).
	Rejoining bool `json:"rejoining,omitzero"`
	// Peers is filled on the leader: what it knows of each follower.
	Peers []PeerStatus `json:"peers,omitempty"`
}

// PeerStatus is a leader's view of one follower.
type PeerStatus struct {
	NodeID int    `json:"node_id"`
	Match  uint64 `json:"match"` // highest index known on its disk
	Next   uint64 `json:"next"`  // next index the leader sends it
	// Snapshot is true while a snapshot is being sent to it.
	Snapshot bool `json:"snapshot,omitzero"`
	// Active: the leader heard from it within about the last election
	// timeout (the check-quorum period before the current one, or this
	// one): what INFO's connected_slaves counts.
	Active bool `json:"active"`
}

// Limits bound what one request may carry. Hosts enforce RequestBytesMax on
// the raw line; nodes enforce the rest through Validate.
type Limits struct {
	RequestBytesMax int // one request line, newline excluded
	KeyBytesMax     int
	ValueBytesMax   int
	BulkEntriesMax  int
	// QuorumMax is the largest quorum a write may ask for: the number of
	// nodes of a mesh, 0 where quorum has no meaning (single, cluster).
	QuorumMax int
	// QueryBytesMax bounds a search query; HitsMax bounds limit and top_k.
	QueryBytesMax int
	HitsMax       int
	// DataBytesMax bounds the store's data bytes (Store.DataBytes: keys,
	// values and a fixed cost a key): a client's write that would take
	// them past it is refused (StoreFull). 0: no bound. Replication does
	// not check it: a cluster's followers apply what its leader took, and
	// a mesh node applies its peers' writes, since refusing them would
	// part the replicas for good.
	DataBytesMax int64
	// IndexBytesMax bounds the search indexes' memory (Indexes.Bytes,
	// their own estimate), which DataBytesMax does not count and which
	// may be many times the data bytes (a short value's embedding alone
	// is about 950 bytes): while they hold that much, a client's write
	// that sets a value is refused (IndexesFull); deletes go on. 0: no
	// bound. Replication does not check it, as DataBytesMax.
	IndexBytesMax int64
}

// DefaultLimits are the limits a server uses unless told otherwise.
func DefaultLimits() Limits {
	return Limits{
		RequestBytesMax: 16 << 20,
		KeyBytesMax:     4 << 10,
		ValueBytesMax:   1 << 20,
		BulkEntriesMax:  10_000,
		QueryBytesMax:   4 << 10,
		HitsMax:         1_000,
	}
}

// NearDataBound reports whether a write that adds at most upper data bytes
// (UpperDataGrowth) to a store that holds held could pass l.DataBytesMax:
// only then is its exact growth worth the lookups it costs (Store.
// DataGrowth walks the tree once a key), so that a write far from the bound,
// the common case, pays nothing for it.
func (l Limits) NearDataBound(held, upper int64) bool {
	return l.DataBytesMax > 0 && held+upper > l.DataBytesMax
}

// UpperDataGrowth is the most that setting items can add to a store's data
// bytes: every key counted as new.
func UpperDataGrowth(items []KV) int64 {
	var n int64
	for i := range items {
		n += EntryDataBytes(len(items[i].Key), len(items[i].Value))
	}
	return n
}

// StoreFull answers a client's write that would add growth data bytes to
// BulkGetBytesMax bounds the values a bulk_get answers (BulkGetResponse):
// the request line limit, or none for a bulk_get of presence only, whose
// answer is a count (found by review: EXISTS of five keys of 1 MiB on a
// cluster node answered too_large where Redis answers 5).
func (l Limits) BulkGetBytesMax(presence bool) int {
	if presence {
		return math.MaxInt
	}
	return l.RequestBytesMax
}

// a store that holds held, past l.DataBytesMax; nil when it may go on. A
// write that does not grow the store always may: deletes and shorter
// values are how a full store is emptied.
func (l Limits) StoreFull(held, growth int64) *Response {
	if l.DataBytesMax <= 0 || growth <= 0 || held+growth <= l.DataBytesMax {
		return nil
	}
	r := ErrorResponse(CodeStoreFull, "the store holds %d data bytes and this write adds %d, past its bound of %d (--max-data-bytes): the write was not applied; delete keys, or raise the bound", held, growth, l.DataBytesMax)
	return &r
}

// IndexesFull answers a client's write that sets values while the search
// indexes hold held bytes (Indexes.Bytes), at or past l.IndexBytesMax; nil
// when it may go on. An overwrite is refused too: its words may be new.
func (l Limits) IndexesFull(held int64) *Response {
	if l.IndexBytesMax <= 0 || held < l.IndexBytesMax {
		return nil
	}
	r := ErrorResponse(CodeStoreFull, "the search indexes hold about %d bytes, at their bound of %d (--max-index-bytes): the write was not applied; delete keys, or raise the bound", held, l.IndexBytesMax)
	return &r
}

// OKResponse is a bare success.
func OKResponse() Response { return Response{OK: true} }

// ErrorResponse is a failure with a stable code and a human message.
func ErrorResponse(code, format string, args ...any) Response {
	return Response{Error: &Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// NotFoundResponse is a read's failure for a key that is not there. A miss
// is as common as a hit, so its message is built without fmt (whose
// Sprintf was 0.5% of a server's samples at GETs of half-missing keys).
func NotFoundResponse(key string) Response {
	return Response{Error: &Error{Code: CodeNotFound, Message: "key " + strconv.Quote(key) + " not found"}}
}

// Validate checks a request against the limits and the op's required fields.
// It returns nil or a failure response. A scan's limit left out is filled
// in with its default within the limits.
func (l Limits) Validate(req *Request) *Response {
	bad := func(code, format string, args ...any) *Response {
		r := ErrorResponse(code, format, args...)
		return &r
	}
	checkKey := func(key string) *Response {
		if key == "" {
			return bad(CodeBadRequest, "key must be a non-empty string")
		}
		if len(key) > l.KeyBytesMax {
			return bad(CodeTooLarge, "key is %d bytes; the limit is %d", len(key), l.KeyBytesMax)
		}
		return nil
	}
	checkValue := func(n int) *Response {
		if n > l.ValueBytesMax {
			return bad(CodeTooLarge, "value is %d bytes; the limit is %d", n, l.ValueBytesMax)
		}
		return nil
	}
	if r := l.validateSession(req); r != nil {
		return r
	}
	if r := l.validateCondition(req); r != nil {
		return r
	}
	if req.TTLMs > TTLMsMax {
		return bad(CodeBadRequest, "ttl_ms is %d; the limit is %d (ten years)", req.TTLMs, TTLMsMax)
	}
	if req.Delta != nil && req.Op != OpIncr {
		return bad(CodeBadRequest, "delta is for incr, not %q", req.Op)
	}
	if req.TTLMs != 0 && req.Op != OpSet && req.Op != OpExpire {
		return bad(CodeBadRequest, "ttl_ms is for set and expire, not %q", req.Op)
	}
	if req.Quorum > uint64(l.QuorumMax) {
		if l.QuorumMax == 0 {
			return bad(CodeBadRequest, "quorum is for mesh nodes; this node's writes are durable when acknowledged")
		}
		return bad(CodeBadRequest, "quorum %d is more than the %d nodes of the mesh", req.Quorum, l.QuorumMax)
	}
	switch req.Op {
	case OpSet:
		if r := checkKey(req.Key); r != nil {
			return r
		}
		if req.Value == nil {
			return bad(CodeBadRequest, "set needs a string field \"value\"")
		}
		return checkValue(len(*req.Value))
	case OpGet, OpDelete, OpTTL, OpPersist:
		return checkKey(req.Key)
	case OpIncr:
		if r := checkKey(req.Key); r != nil {
			return r
		}
		if l.ValueBytesMax < counterBytesMax {
			return bad(CodeTooLarge, "an incr may write %d bytes; this server's value limit is %d", counterBytesMax, l.ValueBytesMax)
		}
		return nil
	case OpExpire:
		if r := checkKey(req.Key); r != nil {
			return r
		}
		if req.TTLMs == 0 {
			return bad(CodeBadRequest, "expire needs an integer field \"ttl_ms\" in 1..%d (persist takes a deadline away)", uint64(TTLMsMax))
		}
		return nil
	case OpBulkGet, OpBulkDelete:
		if len(req.Keys) == 0 {
			return bad(CodeBadRequest, "%s needs a non-empty array \"keys\" of strings", req.Op)
		}
		if len(req.Keys) > l.BulkEntriesMax {
			return bad(CodeTooLarge, "%s has %d keys; the limit is %d", req.Op, len(req.Keys), l.BulkEntriesMax)
		}
		for i, k := range req.Keys {
			if r := checkKey(k); r != nil {
				r.Error.Message = fmt.Sprintf("keys[%d]: %s", i, r.Error.Message)
				return r
			}
		}
		return nil
	case OpBulkSet:
		if len(req.Items) == 0 {
			return bad(CodeBadRequest, "bulk_set needs a non-empty array \"items\" of {\"key\",\"value\"}")
		}
		if len(req.Items) > l.BulkEntriesMax {
			return bad(CodeTooLarge, "bulk_set has %d items; the limit is %d", len(req.Items), l.BulkEntriesMax)
		}
		for i := range req.Items {
			if req.Items[i].TTLMs != nil {
				return bad(CodeBadRequest, "items[%d]: %s", i, bulkSetTTLRefused)
			}
			if r := checkKey(req.Items[i].Key); r != nil {
				r.Error.Message = fmt.Sprintf("items[%d]: %s", i, r.Error.Message)
				return r
			}
			if r := checkValue(len(req.Items[i].Value)); r != nil {
				r.Error.Message = fmt.Sprintf("items[%d]: %s", i, r.Error.Message)
				return r
			}
		}
		return nil
	case OpPing, OpStatus:
		return nil
	case OpAuth:
		if req.Password == "" {
			return bad(CodeBadRequest, "auth needs a non-empty string field \"password\"")
		}
		if len(req.Password) > AuthSecretBytesMax {
			return bad(CodeTooLarge, "password is %d bytes; the limit is %d", len(req.Password), AuthSecretBytesMax)
		}
		return nil
	case OpSearch, OpSearchSimilar:
		return l.validateSearch(req)
	case OpScan:
		switch {
		case len(req.Prefix) > l.KeyBytesMax:
			return bad(CodeTooLarge, "prefix is %d bytes; a key is at most %d", len(req.Prefix), l.KeyBytesMax)
		case len(req.StartAfter) > l.KeyBytesMax:
			return bad(CodeTooLarge, "start_after is %d bytes; a key is at most %d", len(req.StartAfter), l.KeyBytesMax)
		case req.Limit > uint64(l.BulkEntriesMax):
			return bad(CodeTooLarge, "limit is %d; a scan returns at most %d keys a page", req.Limit, l.BulkEntriesMax)
		case req.Consistent && req.View != "":
			return bad(CodeBadRequest, "a scan's first page asks for consistent; its next pages send the view it named, not both")
		case req.View != "" && ParseViewID(req.View) == 0:
			return bad(CodeBadRequest, "view %q is not one a scan named", req.View)
		case req.Close && req.View == "":
			return bad(CodeBadRequest, "close ends a consistent scan: it needs the view its pages name")
		}
		if req.Limit == 0 && l.BulkEntriesMax > 0 {
			// A page that names no limit is ScanLimitDefault keys, but
			// never more than --max-bulk-entries, which bounds every
			// page (a default of 100 passed a limit of 5, found by
			// review). Every node kind validates before it scans.
			req.Limit = uint64(min(ScanLimitDefault, l.BulkEntriesMax))
		}
		return nil
	case "":
		return bad(CodeBadRequest, "missing field \"op\"")
	default:
		return bad(CodeUnknownOp, "unknown op %q", req.Op)
	}
}

// Writes reports whether req's op changes the store: set, delete,
// bulk_set, bulk_delete, expire, persist or incr.
func (req *Request) Writes() bool {
	switch req.Op {
	case OpSet, OpDelete, OpBulkSet, OpBulkDelete, OpExpire, OpPersist, OpIncr:
		return true
	}
	return false
}

// validateSession checks the client session fields: absent together, or a
// client_id in 1..ClientIDMax with seq >= 1 and acked <= seq, on a write.
// Only writes are deduplicated, so a session on a read is refused rather
// than taken for a promise the server does not keep. An unknown or missing
// op is left to Validate's own answer.
func (l Limits) validateSession(req *Request) *Response {
	bad := func(format string, args ...any) *Response {
		r := ErrorResponse(CodeBadRequest, format, args...)
		return &r
	}
	write := req.Writes()
	switch req.Op {
	case OpGet, OpBulkGet, OpPing, OpStatus, OpSearch, OpSearchSimilar, OpScan:
	default:
		if !write {
			return nil
		}
	}
	switch {
	case req.ClientID == 0 && (req.Seq != 0 || req.Acked != 0):
		return bad("seq and acked belong to a client session: they need client_id")
	case req.ClientID == 0:
		return nil
	case !write:
		return bad("client_id, seq and acked are for writes (set, delete, bulk_set, bulk_delete, expire, persist, incr), not %q", req.Op)
	case req.ClientID > ClientIDMax:
		return bad("client_id must be in 1..%d, not %d", uint64(ClientIDMax), req.ClientID)
	case req.Seq == 0:
		return bad("a request with client_id needs seq >= 1")
	case req.Acked > req.Seq:
		return bad("acked (%d) must not be above seq (%d)", req.Acked, req.Seq)
	}
	return nil
}

// validateSearch checks a search op's query, mode and hit count.
func (l Limits) validateSearch(req *Request) *Response {
	bad := func(code, format string, args ...any) *Response {
		r := ErrorResponse(code, format, args...)
		return &r
	}
	if req.Query == "" {
		return bad(CodeBadRequest, "%s needs a non-empty string field \"query\"", req.Op)
	}
	if len(req.Query) > l.QueryBytesMax {
		return bad(CodeTooLarge, "query is %d bytes; the limit is %d", len(req.Query), l.QueryBytesMax)
	}
	if req.Op == OpSearch {
		switch req.Mode {
		case "", SearchModeAll, SearchModeAny:
		default:
			return bad(CodeBadRequest, "mode must be %q or %q, not %q", SearchModeAll, SearchModeAny, req.Mode)
		}
	}
	if req.Limit > uint64(l.HitsMax) {
		return bad(CodeTooLarge, "limit is %d; the most a search returns is %d", req.Limit, l.HitsMax)
	}
	if req.TopK > uint64(l.HitsMax) {
		return bad(CodeTooLarge, "top_k is %d; the most a search returns is %d", req.TopK, l.HitsMax)
	}
	return nil
}
