package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// A log record on disk:
//
//	[length u32][crc32c u32][type u8][index u64][payload]
//
// length counts the bytes after the crc (type, index, payload). The crc
// covers the length field and those bytes, so a damaged length cannot
// silently frame the wrong span. All integers are little-endian.
//
// The payload is stored whitened (recordWhitened in the type byte): XORed
// with a pseudo-random stream keyed by the record's index (whiten). Recovery
// tells a torn write by zeros where a sector was never written (tornShape);
// a payload's own zeros (a value of zero bytes) would look the same, and
// damage at rest beside them passed for a tear, which cut an acknowledged
// batch (found by the simulator with zero bytes in its values). Whitened,
// stored bytes are zero only by chance. Records written before it (the flag
// clear) are read as they are.
const (
	recordHeaderBytes = 4 + 4 + 1 + 8
	// recordBytesMax bounds one record. Requests are bounded below it, and a
	// length field above it can only be damage.
	recordBytesMax = 64 << 20
)

// Record types. The high bit of the type byte marks the last record of a
// batch (one host turn), which recovery uses to tell a torn final batch from
// damage to a batch that was synced.
//
// The single node logs its writes as set, delete, bulk-set and bulk-delete
// records. A
// cluster node logs Raft entries (RecordEntry: [term u64][command]), whose
// commands carry the same writes plus the client session (see Command). A
// mesh node logs stamped writes (RecordMesh), whose payload package mesh
// defines.
const (
	recordSet     byte = 1
	recordDelete  byte = 2
	recordBulkSet byte = 3
	RecordEntry   byte = 4
	RecordMesh    byte = 5
	// recordBulkDelete is a bulk_delete: [count uvarint]([key len uvarint][key])*.
	recordBulkDelete byte = 6
	// recordSetExpiring is a set with a deadline (Request.TTLMs):
	// [deadline u64][key len uvarint][key][value], the deadline in
	// milliseconds since the Unix epoch.
	recordSetExpiring byte = 7
	// recordExpire deletes keys whose deadline passed, each only if its
	// deadline is still the one the node saw pass (a later write may have
	// replaced it): [count uvarint]([key len uvarint][key][deadline uvarint])*.
	recordExpire byte = 8
	// recordDeadline gives an existing key a deadline, or takes its
	// deadline away (expire, persist), its value unchanged:
	// [deadline uvarint, 0: none][key].
	recordDeadline byte = 9
	recordTypeLast      = recordDeadline
	recordBatchEnd byte = 0x80
	recordWhitened byte = 0x40 // the payload is stored whitened
	recordTypeMask byte = 0x3f
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Record is one decoded log record.
type Record struct {
	Type     byte // without the batch-end bit
	BatchEnd bool
	Index    uint64
	Payload  []byte
}

// Errors of decodeRecord. errRecordShort means the buffer ends inside the
// record; errRecordInvalid means the bytes there are not a valid record.
var (
	errRecordShort   = errors.New("record truncated")
	errRecordInvalid = errors.New("record invalid")
)

// appendRecord encodes a record onto dst.
func appendRecord(dst []byte, typ byte, index uint64, payload []byte) []byte {
	assert(typ&recordTypeMask != 0 && typ&recordWhitened == 0, "record type must be set, and whitening is appendRecord's")
	length := 1 + 8 + len(payload)
	assert(recordHeaderBytes+len(payload) <= recordBytesMax, "record over recordBytesMax")
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(length))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // crc, filled below
	dst = append(dst, typ|recordWhitened)
	dst = binary.LittleEndian.AppendUint64(dst, index)
	dst = append(dst, payload...)
	whiten(dst[len(dst)-len(payload):], dst[len(dst)-len(payload):], index)
	putCRC(dst[start:])
	return dst
}

// whiten sets dst to src XORed with a pseudo-random stream keyed by index
// (splitmix64), which undoes itself: applied to a stored payload it gives
// the plain one back. dst and src may be the same slice.
func whiten(dst, src []byte, index uint64) {
	assert(len(dst) == len(src), "whiten: lengths differ")
	state := index*0x9e3779b97f4a7c15 ^ 0x6a09e667f3bcc908
	next := func() uint64 {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
	i := 0
	for ; i+8 <= len(src); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:])^next())
	}
	if i < len(src) {
		z := next()
		for ; i < len(src); i++ {
			dst[i] = src[i] ^ byte(z)
			z >>= 8
		}
	}
}

// recordPayload is the plain payload of a record's stored one: a copy,
// unwhitened, where the type byte says it was whitened; else the stored
// bytes themselves.
func recordPayload(typ byte, index uint64, stored []byte) []byte {
	if typ&recordWhitened == 0 {
		return stored
	}
	p := make([]byte, len(stored))
	whiten(p, stored, index)
	return p
}

// putCRC fills in the crc of the encoded record at the start of rec, after
// its header or type byte changed.
func putCRC(rec []byte) {
	length := int(binary.LittleEndian.Uint32(rec[0:4]))
	binary.LittleEndian.PutUint32(rec[4:8], recordCRC(rec[:8+length]))
}

func recordCRC(rec []byte) uint32 {
	c := crc32.Update(0, crcTable, rec[0:4])
	return crc32.Update(c, crcTable, rec[8:])
}

// decodeRecord decodes the record at the start of buf and returns it with the
// number of bytes it takes. The payload is a copy, unwhitened (or, for a
// record written before whitening, aliases buf).
func decodeRecord(buf []byte) (Record, int, error) {
	if len(buf) < recordHeaderBytes {
		return Record{}, 0, errRecordShort
	}
	length := int(binary.LittleEndian.Uint32(buf[0:4]))
	if length < 9 || length+8 > recordBytesMax {
		return Record{}, 0, fmt.Errorf("%w: length %d", errRecordInvalid, length)
	}
	total := 8 + length
	if len(buf) < total {
		return Record{}, 0, errRecordShort
	}
	if got, want := recordCRC(buf[:total]), binary.LittleEndian.Uint32(buf[4:8]); got != want {
		return Record{}, 0, fmt.Errorf("%w: checksum mismatch", errRecordInvalid)
	}
	typ := buf[8]
	if typ&recordTypeMask == 0 || typ&recordTypeMask > recordTypeLast {
		return Record{}, 0, fmt.Errorf("%w: unknown type %d", errRecordInvalid, typ)
	}
	index := binary.LittleEndian.Uint64(buf[9:17])
	return Record{
		Type:     typ & recordTypeMask,
		BatchEnd: typ&recordBatchEnd != 0,
		Index:    index,
		Payload:  recordPayload(typ, index, buf[17:total]),
	}, total, nil
}

// Commands are what records carry: the writes of the state machine.

func encodeSet(dst []byte, key, value string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, value...)
}

func encodeSetExpiring(dst []byte, key, value string, at int64) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at))
	return encodeSet(dst, key, value)
}

// encodeExpire encodes the keys of items and their deadlines, ats.
func encodeExpire(dst []byte, items []KV, ats []int64) []byte {
	assert(len(items) == len(ats), "an expiry has a deadline per key")
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for i, kv := range items {
		dst = binary.AppendUvarint(dst, uint64(len(kv.Key)))
		dst = append(dst, kv.Key...)
		dst = binary.AppendUvarint(dst, uint64(ats[i]))
	}
	return dst
}

// encodeKeyDeadline encodes a recordDeadline: key's new deadline, at (0:
// none).
func encodeKeyDeadline(dst []byte, key string, at int64) []byte {
	dst = binary.AppendUvarint(dst, uint64(at))
	return append(dst, key...)
}

func encodeDelete(dst []byte, key string) []byte {
	return append(dst, key...)
}

// encodeBulkDelete encodes the keys of items (their values are unused).
func encodeBulkDelete(dst []byte, items []KV) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for _, kv := range items {
		dst = binary.AppendUvarint(dst, uint64(len(kv.Key)))
		dst = append(dst, kv.Key...)
	}
	return dst
}

func encodeBulkSet(dst []byte, items []KV) []byte { return encodeBulkSetWith(dst, items, MutNone) }

// encodeBulkSetWith is encodeBulkSet with a planted mutation (a single
// node's SingleConfig.Mutation).
func encodeBulkSetWith(dst []byte, items []KV, mut Mutation) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for _, kv := range items {
		if mut == MutBulkLengthsFirst {
			dst = binary.AppendUvarint(binary.AppendUvarint(dst, uint64(len(kv.Key))), uint64(len(kv.Value)))
			dst = append(append(dst, kv.Key...), kv.Value...)
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(kv.Key)))
		dst = append(dst, kv.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(kv.Value)))
		dst = append(dst, kv.Value...)
	}
	return dst
}

var errPayload = errors.New("malformed record payload")

// ErrForeignLog refuses a log written by another kind of node: a single
// node's data directory given to a cluster node, or the other way round.
var ErrForeignLog = errors.New("the log was written by another kind of node")

// decodeCommand returns the writes a record carries. For a delete, the value
// of the single item is unused.
func decodeCommand(rec Record) ([]KV, error) {
	items, _, err := decodeCommandWith(rec, MutNone)
	return items, err
}

// decodeCommandWith is decodeCommand with a planted mutation (a single
// node's SingleConfig.Mutation), which also returns the deadlines of a set
// that expires or of an expiry (see decodeWrites).
func decodeCommandWith(rec Record, mut Mutation) ([]KV, []int64, error) {
	switch rec.Type {
	case RecordEntry:
		return nil, nil, fmt.Errorf("%w: a Raft entry (this data directory belongs to a cluster node)", ErrForeignLog)
	case RecordMesh:
		return nil, nil, fmt.Errorf("%w: a mesh write (this data directory belongs to a mesh node)", ErrForeignLog)
	}
	return decodeWrites(rec.Type, rec.Payload, mut)
}

// decodeWrites decodes the writes of a record of type typ: the items, and
// for recordSetExpiring, recordExpire and recordDeadline each item's
// deadline (ats, nil for the other types; 0 in a recordDeadline: none).
func decodeWrites(typ byte, p []byte, mut Mutation) ([]KV, []int64, error) {
	if typ == recordSetExpiring {
		if len(p) < 8 {
			return nil, nil, errPayload
		}
		at := int64(binary.LittleEndian.Uint64(p))
		if at <= 0 {
			return nil, nil, fmt.Errorf("%w: deadline %d", errPayload, at)
		}
		items, err := decodeItems(recordSet, p[8:], mut)
		return items, []int64{at}, err
	}
	if typ == recordDeadline {
		at, n := binary.Uvarint(p)
		if n <= 0 || at > math.MaxInt64 || n == len(p) {
			return nil, nil, fmt.Errorf("%w: a deadline record", errPayload)
		}
		return []KV{{Key: string(p[n:])}}, []int64{int64(at)}, nil
	}
	items, err := decodeItems(typ, p, mut)
	if err != nil || typ != recordExpire {
		return items, nil, err
	}
	return items, expireDeadlines(items), nil
}

// expireDeadlines takes the deadlines decodeItems left in an expiry's
// values (each an 8-byte big-endian deadline) out of them.
func expireDeadlines(items []KV) []int64 {
	ats := make([]int64, len(items))
	for i := range items {
		ats[i] = decodeDeadline(items[i].Value)
		items[i].Value = ""
	}
	return ats
}

func decodeItems(typ byte, p []byte, mut Mutation) ([]KV, error) {
	str := func(n uint64) (string, bool) {
		if n > uint64(len(p)) {
			return "", false
		}
		s := string(p[:n])
		p = p[n:]
		return s, true
	}
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	switch typ {
	case recordSet:
		kl, ok := uvarint()
		if !ok {
			return nil, errPayload
		}
		if mut == MutSetKeyLenOffByOne && kl > 0 {
			kl--
		}
		key, ok := str(kl)
		if !ok {
			return nil, errPayload
		}
		return []KV{{Key: key, Value: string(p)}}, nil
	case recordDelete:
		return []KV{{Key: string(p)}}, nil
	case recordBulkDelete, recordBulkSet, recordExpire:
		// [count] then per item [key len][key], and for a bulk set
		// [value len][value], for an expiry [deadline] (kept in the
		// value for now, see expireDeadlines).
		count, ok := uvarint()
		if !ok || count > uint64(len(p)) {
			return nil, errPayload
		}
		items := make([]KV, 0, count)
		for range count {
			kl, ok := uvarint()
			if !ok {
				return nil, errPayload
			}
			var kv KV
			if kv.Key, ok = str(kl); !ok {
				return nil, errPayload
			}
			switch typ {
			case recordBulkSet:
				vl, ok := uvarint()
				if !ok {
					return nil, errPayload
				}
				if kv.Value, ok = str(vl); !ok {
					return nil, errPayload
				}
			case recordExpire:
				at, ok := uvarint()
				if !ok || at == 0 || at > math.MaxInt64 {
					return nil, errPayload
				}
				kv.Value = string(encodeDeadline(nil, int64(at)))
			}
			items = append(items, kv)
		}
		if len(p) != 0 {
			return nil, errPayload
		}
		if typ == recordBulkDelete && mut == MutBulkDeleteReplaysFirstKey && len(items) > 1 {
			items = items[:1]
		}
		return items, nil
	}
	return nil, errPayload
}

// applyRecord applies a decoded record to the store, remembering undo
// information when undos is not nil. It returns how many of the keys it
// deleted existed (a key deleted twice counts once: the second finds it
// gone).
//
// ats are the deadlines of recordSetExpiring (one), recordExpire (one a
// key) and recordDeadline (one, 0: none), nil for the other types. An
// expiry deletes a key only if its deadline is still the one given: a
// write since the node saw it pass has replaced it, and the key stays. A
// recordDeadline is logged only for a key that exists where it applies.
func applyRecord(s *Store, typ byte, items []KV, ats []int64, undos *[]undo) (deleted uint64) {
	if typ == recordSetExpiring || typ == recordExpire || typ == recordDeadline {
		assert(len(ats) == len(items), "applyRecord: a deadline a key")
	} else {
		assert(ats == nil, "applyRecord: deadlines with a set that expires or an expiry only")
	}
	for i, kv := range items {
		var old string
		var existed bool
		was, _ := s.Deadline(kv.Key)
		switch typ {
		case recordDelete, recordBulkDelete:
			old, existed = s.Delete(kv.Key)
		case recordExpire:
			if was != ats[i] {
				continue // written since: the deadline seen to pass is gone
			}
			old, existed = s.Delete(kv.Key)
			assert(existed, "applyRecord: a key with a deadline exists")
		case recordSetExpiring:
			old, existed = s.SetExpiring(kv.Key, kv.Value, ats[i])
		case recordDeadline:
			old, existed = s.Get(kv.Key)
			assert(existed, "applyRecord: a deadline is given to a key that exists")
			s.SetDeadline(kv.Key, ats[i])
		default:
			old, existed = s.Set(kv.Key, kv.Value)
		}
		if existed && (typ == recordDelete || typ == recordBulkDelete || typ == recordExpire) {
			deleted++
		}
		if undos != nil {
			*undos = append(*undos, undo{key: kv.Key, value: old, existed: existed, at: was})
		}
	}
	return deleted
}

// Command is a write as a replicated node logs it: the writes of one
// request, and the client session that makes a retry of it apply once
// (ClientID 0: none).
type Command struct {
	Op       string // OpSet, OpDelete, OpBulkSet, OpBulkDelete, OpExpire, OpIncr or OpExpireDue
	Items    []KV   // for OpDelete and OpBulkDelete the values are unused
	ClientID uint64
	Seq      uint64
	Acked    uint64
	// Cond is a set's or a delete's condition, checked as the command
	// applies (on every replica alike: each applies the same log to the
	// same state).
	Cond Condition
	// At is a set's or an OpExpire's deadline (Request.TTLMs made
	// calendar time by the node that proposed it), 0 for none (an
	// OpExpire's: a persist); Ats are an expiry's (OpExpireDue), one a
	// key of Items.
	At  int64
	Ats []int64
	// Delta is an OpIncr's: the replicas add it to the key's counter as
	// the command applies (Store.Incr), each to the same value.
	Delta int64
}

// OpExpireDue is the op of the command that deletes keys whose deadline
// passed (applyRecord's recordExpire): the node that leads proposes it. It
// is never a client's op.
const OpExpireDue = "expire_due"

// commandBytesMax bounds an encoded command: it must fit a log record with
// the entry's term in front.
const commandBytesMax = recordBytesMax - recordHeaderBytes - 8

// CommandFromRequest is the command of a validated write request.
func CommandFromRequest(req *Request) Command {
	c := Command{Op: req.Op, ClientID: req.ClientID, Seq: req.Seq, Acked: req.Acked, Cond: req.Condition()}
	switch req.Op {
	case OpSet:
		c.Items = []KV{{Key: req.Key, Value: *req.Value}}
	case OpDelete:
		c.Items = []KV{{Key: req.Key}}
	case OpBulkSet:
		c.Items = req.Items
	case OpBulkDelete:
		c.Items = make([]KV, len(req.Keys))
		for i, k := range req.Keys {
			c.Items[i].Key = k
		}
	case OpExpire, OpPersist:
		// Both only for a key that exists when they apply: a condition,
		// so that a cluster session keeps a refusal as it keeps any
		// other. The deadline is the proposer's to set (At).
		c.Op, c.Items, c.Cond = OpExpire, []KV{{Key: req.Key}}, Condition{Kind: CondExists}
	case OpIncr:
		c.Items, c.Delta = []KV{{Key: req.Key}}, req.IncrDelta()
	default:
		panic("CommandFromRequest: not a write: " + req.Op)
	}
	return c
}

// AppendCommand encodes c after dst:
//
//	[record type u8][client uvarint][seq uvarint][acked uvarint][cond][writes]
//
// with the writes encoded as the single node's record of that type. A
// conditional command sets commandConditional in the type byte and has
// [cond kind u8], then for CondValue [length uvarint][value], where an
// unconditional one has nothing (its encoding is as it was before
// conditions). It fails when the command is over the log's record limit.
func AppendCommand(dst []byte, c *Command) ([]byte, error) {
	start := len(dst)
	var typ byte
	switch c.Op {
	case OpSet:
		typ = recordSet
	case OpDelete:
		typ = recordDelete
	case OpBulkSet:
		typ = recordBulkSet
	case OpBulkDelete:
		typ = recordBulkDelete
	case OpExpireDue:
		typ = recordExpire
	case OpExpire:
		typ = recordDeadline
	case OpIncr:
		typ = commandIncr
	default:
		panic("AppendCommand: not a write: " + c.Op)
	}
	assert(c.Cond.Kind == CondNone || typ == recordSet || typ == recordDelete || typ == recordDeadline, "only a set, a delete or an expire has a condition")
	assert(typ != recordDeadline || c.Cond.Kind == CondExists, "an expire is for a key that exists")
	assert(c.At >= 0 && (c.At == 0 || typ == recordSet || typ == recordDeadline), "only a set or an expire has a deadline")
	flags := byte(0)
	if c.Cond.Kind != CondNone {
		flags |= commandConditional
	}
	if c.At != 0 && typ == recordSet {
		flags |= commandExpiring // an expire's deadline is in its payload
	}
	dst = append(dst, typ|flags)
	dst = binary.AppendUvarint(dst, c.ClientID)
	dst = binary.AppendUvarint(dst, c.Seq)
	dst = binary.AppendUvarint(dst, c.Acked)
	if c.Cond.Kind != CondNone {
		dst = append(dst, byte(c.Cond.Kind))
		if c.Cond.Kind == CondValue {
			dst = binary.AppendUvarint(dst, uint64(len(c.Cond.Value)))
			dst = append(dst, c.Cond.Value...)
		}
	}
	if c.At != 0 && typ == recordSet {
		dst = binary.AppendUvarint(dst, uint64(c.At))
	}
	switch typ {
	case recordSet:
		dst = encodeSet(dst, c.Items[0].Key, c.Items[0].Value)
	case recordDelete:
		dst = encodeDelete(dst, c.Items[0].Key)
	case recordBulkSet:
		dst = encodeBulkSet(dst, c.Items)
	case recordBulkDelete:
		dst = encodeBulkDelete(dst, c.Items)
	case recordExpire:
		dst = encodeExpire(dst, c.Items, c.Ats)
	case recordDeadline:
		dst = encodeKeyDeadline(dst, c.Items[0].Key, c.At)
	case commandIncr:
		dst = binary.AppendVarint(dst, c.Delta)
		dst = append(dst, c.Items[0].Key...)
	}
	if len(dst)-start > commandBytesMax {
		return dst[:start], fmt.Errorf("write is %d bytes encoded; the log's record limit is %d", len(dst)-start, commandBytesMax)
	}
	return dst, nil
}

// commandConditional marks a command's type byte: a condition follows the
// session fields. Builds before conditions refuse such a command.
// commandExpiring marks a set with a deadline, which follows the condition
// ([deadline uvarint]); builds before deadlines refuse it too.
const (
	commandConditional byte = 0x80
	commandExpiring    byte = 0x40
)

// commandIncr is the type of an OpIncr command, which only a cluster logs
// (a single node logs the set an incr makes):
// [delta varint, zigzag][key]. Builds before it refuse it.
const commandIncr byte = 10

const _ = commandIncr - recordTypeLast - 1 // a compile error unless after every record type

// DecodeCommand decodes what AppendCommand wrote.
func DecodeCommand(p []byte) (Command, error) {
	var c Command
	if len(p) < 1 {
		return c, errPayload
	}
	typ := p[0]
	p = p[1:]
	for _, v := range []*uint64{&c.ClientID, &c.Seq, &c.Acked} {
		x, n := binary.Uvarint(p)
		if n <= 0 {
			return c, errPayload
		}
		*v, p = x, p[n:]
	}
	expiring := typ&commandExpiring != 0
	if typ&commandConditional != 0 {
		typ &^= commandConditional | commandExpiring
		if len(p) < 1 || (typ != recordSet && typ != recordDelete && typ != recordDeadline) {
			return c, fmt.Errorf("%w: a condition on command type %d", errPayload, typ)
		}
		c.Cond.Kind, p = CondKind(p[0]), p[1:]
		switch c.Cond.Kind {
		case CondAbsent, CondExists:
		case CondValue:
			n, k := binary.Uvarint(p)
			if k <= 0 || n > uint64(len(p)-k) {
				return c, errPayload
			}
			c.Cond.Value, p = string(p[k:k+int(n)]), p[k+int(n):]
		default:
			return c, fmt.Errorf("%w: condition kind %d", errPayload, c.Cond.Kind)
		}
	}
	typ &^= commandExpiring
	if expiring {
		at, n := binary.Uvarint(p)
		if n <= 0 || at == 0 || at > math.MaxInt64 || typ != recordSet {
			return c, fmt.Errorf("%w: a deadline on command type %d", errPayload, typ)
		}
		c.At, p = int64(at), p[n:]
	}
	switch typ {
	case recordSet:
		c.Op = OpSet
	case recordDelete:
		c.Op = OpDelete
	case recordBulkSet:
		c.Op = OpBulkSet
	case recordBulkDelete:
		c.Op = OpBulkDelete
	case recordExpire:
		c.Op = OpExpireDue
	case recordDeadline:
		c.Op = OpExpire
		if c.Cond.Kind != CondExists {
			return c, fmt.Errorf("%w: an expire without its key's condition", errPayload)
		}
	case commandIncr:
		delta, n := binary.Varint(p)
		if n <= 0 || len(p) == n || c.Cond.Kind != CondNone {
			return c, fmt.Errorf("%w: an incr without its delta or key, or with a condition", errPayload)
		}
		c.Op, c.Delta, c.Items = OpIncr, delta, []KV{{Key: string(p[n:])}}
		return c, nil
	default:
		return c, fmt.Errorf("%w: command type %d", errPayload, typ)
	}
	items, ats, err := decodeWrites(typ, p, MutNone)
	c.Items, c.Ats = items, ats
	if err == nil && typ == recordDeadline {
		c.At, c.Ats = ats[0], nil
	}
	return c, err
}

// Apply applies a command's writes to the store and returns how many of
// its keys a delete or an expiry found (see applyRecord). An OpIncr is
// Incr's.
func (s *Store) Apply(c *Command) (deleted uint64) {
	assert(c.Op != OpIncr, "Store.Apply: an incr applies through Store.Incr, which answers")
	typ, ats := recordSet, []int64(nil)
	switch c.Op {
	case OpDelete:
		typ = recordDelete
	case OpBulkDelete:
		typ = recordBulkDelete
	case OpExpireDue:
		typ, ats = recordExpire, c.Ats
	case OpExpire:
		typ, ats = recordDeadline, []int64{c.At}
	case OpSet:
		if c.At != 0 {
			typ, ats = recordSetExpiring, []int64{c.At}
		}
	}
	return applyRecord(s, typ, c.Items, ats, nil)
}

// AppendEntryPayload is the payload of a RecordEntry: the entry's term, then
// its data.
func AppendEntryPayload(dst []byte, term uint64, data []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, term)
	return append(dst, data...)
}

// DecodeEntryPayload splits a RecordEntry's payload into term and data. The
// data alias the payload.
func DecodeEntryPayload(rec Record) (term uint64, data []byte, err error) {
	if rec.Type == RecordMesh {
		return 0, nil, fmt.Errorf("%w: a mesh node's write, not a Raft entry", ErrForeignLog)
	}
	if rec.Type != RecordEntry {
		return 0, nil, fmt.Errorf("%w: a single node's write (type %d), not a Raft entry", ErrForeignLog, rec.Type)
	}
	if len(rec.Payload) < 8 {
		return 0, nil, errPayload
	}
	return binary.LittleEndian.Uint64(rec.Payload), rec.Payload[8:], nil
}
