package core

import (
	"bytes"
	"errors"
	"math"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// A request is decoded by hand from the tokens of one JSON object
// (decodeRequest), not by reflection into Request, because the protocol
// needs what the struct cannot hold: whether a field was sent at all (an
// item's value "" and no value are not the same request), null told apart
// from a value, and the id's bytes exactly as sent. It is one pass over the
// line, and no slower than the reflective decode it replaced (see
// BenchmarkDecodeRequest). json.Unmarshal drives it, for its pooled
// decoders and its check that nothing follows the object.
var decodeOptions = json.WithUnmarshalers(json.UnmarshalFromFunc(decodeRequest))

// DecodeRequest parses one request line (without its newline). It returns
// the request, or a bad_request response explaining what is wrong. When the
// line is an object whose "id" could be read, the error response carries
// that id.
//
// It checks types and presence: each field has its one JSON type (null is
// not a value of any field but id), a bulk_set item has both its key and
// its value, and a session or test-hook field on an op that does not use
// it is refused (see promiseFields). Limits and values
// (an empty key, a missing value of set, the rules of client sessions) are
// Validate's, which also sees the requests that never were JSON.
func DecodeRequest(line []byte) (*Request, *Response) { return Codec{}.DecodeRequest(line) }

// RequestBuf is room for one decoded request. A host that keeps an object
// of its own for each request embeds one there and decodes into it
// (DecodeRequestInto): one allocation a request fewer, on the path every
// request takes.
type RequestBuf struct{ d decodedRequest }

// Request returns the request buf holds, for a host that builds requests
// itself (from another protocol) in the room it keeps for them.
func (b *RequestBuf) Request() *Request { return &b.d.req }

// SetValue makes the held request's Value v, kept in buf.
func (b *RequestBuf) SetValue(v string) {
	b.d.value = v
	b.d.req.Value = &b.d.value
}

// DecodeRequestInto is DecodeRequest, which keeps the request in buf when
// it can: the request it returns is in buf or in an allocation of its own.
// buf must be unused (zero), and belongs to the request from then on.
func DecodeRequestInto(line []byte, buf *RequestBuf) (*Request, *Response) {
	return Codec{}.DecodeRequestInto(line, buf)
}

// Codec is the protocol codec as a host configures it: the zero Codec is
// the package's DecodeRequest and AppendResponse. BulkEntriesMax is for
// servers; Mutation, a planted bug, for the simulator's tests only (its
// wire runs every request and response through it).
type Codec struct {
	// BulkEntriesMax, when above 0, refuses a bulk_set's items or a
	// bulk_get's or bulk_delete's keys past it as they are decoded, with
	// too_large: the node's Validate refuses them anyway
	// (Limits.BulkEntriesMax), but only after every one of them was
	// decoded and allocated (a 16 MiB line of 4-byte keys is 4 million
	// strings: hundreds of MB, and seconds of the host's loop). 0 decodes
	// any number and leaves the refusal to Validate.
	BulkEntriesMax int
	Mutation       Mutation
}

// DecodeRequest is the package's DecodeRequest, with c's limit and
// mutation.
func (c Codec) DecodeRequest(line []byte) (*Request, *Response) {
	// A planted bug lives in the general decoder only.
	if c.Mutation == MutNone {
		if d, ok := decodeFast(line, nil, c.BulkEntriesMax); ok {
			return &d.req, nil
		}
	}
	return c.decodeGeneral(line)
}

// DecodeRequestInto is the package's DecodeRequestInto, with c's limit
// and mutation.
func (c Codec) DecodeRequestInto(line []byte, buf *RequestBuf) (*Request, *Response) {
	if c.Mutation == MutNone {
		if _, ok := decodeFast(line, &buf.d, c.BulkEntriesMax); ok {
			return &buf.d.req, nil
		}
	}
	return c.decodeGeneral(line)
}

// decodeGeneral decodes any line, and explains what is wrong with a bad one.
func (c Codec) decodeGeneral(line []byte) (*Request, *Response) {
	d := &decodedRequest{mutation: c.Mutation, bulkEntriesMax: c.BulkEntriesMax}
	req := &d.req
	err := json.Unmarshal(line, d, decodeOptions)
	if err == nil {
		return req, nil
	}
	code := CodeBadRequest
	var tl *tooManyEntriesError
	if errors.As(err, &tl) {
		code = CodeTooLarge
	}
	resp := ErrorResponse(code, "%s", describeDecodeError(err))
	// Echo the id if the line is at least an object with a readable id, so
	// a pipelining client can match the error to its request. After a
	// syntax error the id the decoder took may be the start of a broken
	// token ({"id":01,…} decoded an id of 0, which may well be another
	// request's), so scanID, which checks what follows it, decides.
	var syn *jsontext.SyntacticError
	if !errors.As(err, &syn) {
		resp.ID = req.ID
	}
	if resp.ID == nil {
		resp.ID = scanID(line)
	}
	return nil, &resp
}

// decodedRequest is a request and the string its Value points to, so that
// the two are one allocation.
type decodedRequest struct {
	req      Request
	value    string
	mutation Mutation
	// bulkEntriesMax is Codec.BulkEntriesMax: 0, or the most items or
	// keys the request may hold.
	bulkEntriesMax int
}

// requestField is one member of a request object, as a bit of a set.
type requestField uint32

const (
	fieldID requestField = 1 << iota
	fieldOp
	fieldKey
	fieldValue
	fieldItems
	fieldDebugSimulateFail
	fieldClientID
	fieldSeq
	fieldAcked
	fieldAfter
	fieldQuorum
	fieldQuery
	fieldMode
	fieldLimit
	fieldTopK
	fieldKeys
	fieldPassword
	fieldPrefix
	fieldStartAfter
	fieldKeysOnly
	fieldIfAbsent
	fieldIfExists
	fieldIfValue
	fieldConsistent
	fieldView
	fieldTTLMs
	fieldDelta
	fieldClose

	condFields    = fieldIfAbsent | fieldIfExists | fieldIfValue
	meshFields    = fieldAfter | fieldQuorum
	sessionFields = fieldClientID | fieldSeq | fieldAcked
)

// fieldNames are the JSON names of the requestField bits, in bit order.
var fieldNames = [...]string{"id", "op", "key", "value", "items", "debug_simulate_fail", "client_id", "seq", "acked", "after", "quorum", "query", "mode", "limit", "top_k", "keys", "password", "prefix", "start_after", "keys_only", "if_absent", "if_exists", "if_value", "consistent", "view", "ttl_ms", "delta", "close"}

// promiseFields ask the server to do something for this request: make it
// exactly-once (a client session) or fail its snapshot (a test hook). On
// an op that would not do it they are refused, since the client would
// believe in a promise that is not kept (a read has nothing to
// deduplicate). A data field the op does not use (a key on bulk_set, a
// value on get) is ignored, as it always was: clients send such leftovers
// (this repository's own tests did), and nothing is promised by them. A
// password is refused on any op but auth: a client that sends one with a
// request believes it is checked there. So is a condition on any op but
// set and delete: the write would not be conditional. And a scan's
// consistent and view elsewhere, a ttl_ms but on set and expire (the
// key would not expire), a delta but on incr (nothing would be added),
// and a search's mode and top_k but on search and search_similar (the
// words would not combine so, the hits would not be so many).
const promiseFields = fieldDebugSimulateFail | sessionFields | meshFields | fieldPassword | condFields | fieldConsistent | fieldView | fieldTTLMs | fieldDelta | fieldMode | fieldTopK | fieldClose

// opFields are the fields that op uses besides id and op; known is false
// for an op this server does not know (Validate answers those).
func opFields(op string) (fields requestField, known bool) {
	switch op {
	case OpSet:
		return fieldKey | fieldValue | fieldDebugSimulateFail | sessionFields | meshFields | condFields | fieldTTLMs, true
	case OpDelete:
		return fieldKey | sessionFields | meshFields | fieldIfValue, true
	case OpBulkSet:
		return fieldItems | fieldDebugSimulateFail | sessionFields | meshFields, true
	case OpBulkDelete:
		return fieldKeys | sessionFields | meshFields, true
	case OpGet, OpTTL:
		return fieldKey, true
	case OpExpire:
		return fieldKey | fieldTTLMs | sessionFields, true
	case OpPersist:
		return fieldKey | sessionFields, true
	case OpIncr:
		return fieldKey | fieldDelta | sessionFields, true
	case OpBulkGet:
		return fieldKeys, true
	case OpPing, OpStatus:
		return 0, true
	case OpAuth:
		return fieldPassword, true
	case OpSearch:
		return fieldQuery | fieldMode | fieldLimit, true
	case OpSearchSimilar:
		return fieldQuery | fieldTopK, true
	case OpScan:
		return fieldPrefix | fieldStartAfter | fieldLimit | fieldKeysOnly | fieldConsistent | fieldView | fieldClose, true
	}
	return 0, false
}

// requestError is a request that is JSON but not a valid request; its
// message is the whole explanation.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

// tooManyEntriesError is a bulk request over Codec.BulkEntriesMax: too_large,
// not bad_request.
type tooManyEntriesError struct{ msg string }

func (e *tooManyEntriesError) Error() string { return e.msg }

// tooManyEntries refuses the entry past entriesMax of a request's "items"
// or "keys" (what), in the words of Limits.Validate's refusal, which counts
// them all: here the rest is not read. The op is named if it came before
// the array. An array this long is refused on any op, even one that would
// ignore it (items left on a set): it would be decoded all the same.
func tooManyEntries(op, what string, entriesMax int) error {
	if op == "" {
		op = "the request"
	}
	return &tooManyEntriesError{op + " has more than " + itoa(entriesMax) + " " + what + "; the limit is " + itoa(entriesMax)}
}

// fieldPath names a field in messages: a top-level field, or a field of
// bulk_set item number item (when item >= 0). It is a value, so that the
// hot path builds no string until there is an error to report.
type fieldPath struct {
	name string
	item int
}

func topField(name string) fieldPath { return fieldPath{name: name, item: -1} }

func (p fieldPath) String() string {
	if p.item < 0 {
		return p.name
	}
	if p.name == "" {
		return "items/" + itoa(p.item)
	}
	return "items/" + itoa(p.item) + "/" + p.name
}

func mistyped(p fieldPath, want string, got jsontext.Kind) error {
	return &requestError{"field " + quote(p.String()) + " must be " + want + ", not " + jsonKindName(got)}
}

// expect checks that the next value is of kind want (described as what),
// without reading it.
func expect(dec *jsontext.Decoder, p fieldPath, want jsontext.Kind, what string) error {
	k := dec.PeekKind()
	if k == want || (want == 't' && k == 'f') {
		return nil
	}
	// PeekKind looks at one byte only: read the value, so that a syntax
	// error is reported as one rather than as the wrong type.
	if err := dec.SkipValue(); err != nil {
		return err
	}
	return mistyped(p, what, k)
}

// memberName reads an object member's name and returns it unquoted. The
// result may alias the decoder's buffer: use it before the next read.
func memberName(dec *jsontext.Decoder) ([]byte, error) {
	raw, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	return jsontext.AppendUnquote(nil, raw)
}

func readString(dec *jsontext.Decoder, p fieldPath) (string, error) {
	if err := expect(dec, p, '"', "a string"); err != nil {
		return "", err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	return tok.String(), nil
}

// readOp reads the op, sharing the constant for a known one.
func readOp(dec *jsontext.Decoder) (string, error) {
	if err := expect(dec, topField("op"), '"', "a string"); err != nil {
		return "", err
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return "", err
	}
	switch string(raw) {
	case `"` + OpSet + `"`:
		return OpSet, nil
	case `"` + OpGet + `"`:
		return OpGet, nil
	case `"` + OpDelete + `"`:
		return OpDelete, nil
	case `"` + OpBulkSet + `"`:
		return OpBulkSet, nil
	case `"` + OpBulkGet + `"`:
		return OpBulkGet, nil
	case `"` + OpBulkDelete + `"`:
		return OpBulkDelete, nil
	case `"` + OpPing + `"`:
		return OpPing, nil
	case `"` + OpStatus + `"`:
		return OpStatus, nil
	case `"` + OpAuth + `"`:
		return OpAuth, nil
	case `"` + OpSearch + `"`:
		return OpSearch, nil
	case `"` + OpSearchSimilar + `"`:
		return OpSearchSimilar, nil
	case `"` + OpScan + `"`:
		return OpScan, nil
	}
	op, err := jsontext.AppendUnquote(nil, raw)
	return string(op), err
}

// readUint reads a non-negative integer: digits only, as a JSON number
// without sign, fraction or exponent.
func readUint(dec *jsontext.Decoder, p fieldPath) (uint64, error) {
	const what = "a non-negative integer"
	if err := expect(dec, p, '0', what); err != nil {
		return 0, err
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, &requestError{"field " + quote(p.String()) + " must be " + what + ", not " + string(raw)}
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, &requestError{"field " + quote(p.String()) + " is out of range: " + string(raw)}
		}
		n = n*10 + d
	}
	return n, nil
}

// readInt reads a signed 64-bit integer: digits, a minus sign before them
// or not, no fraction and no exponent.
func readInt(dec *jsontext.Decoder, p fieldPath) (int64, error) {
	const what = "an integer"
	if err := expect(dec, p, '0', what); err != nil {
		return 0, err
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return 0, err
	}
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, &requestError{"field " + quote(p.String()) + " must be " + what + ", not " + string(raw)}
		}
	}
	n, perr := strconv.ParseInt(string(raw), 10, 64)
	if perr != nil {
		return 0, &requestError{"field " + quote(p.String()) + " is out of the int64 range: " + string(raw)}
	}
	return n, nil
}

// readCount reads a count that must be at least 1 when sent: the zero
// value means "the default" in Request, so a 0 sent on the wire cannot be
// told from an absent field there, and is refused here instead.
func readCount(dec *jsontext.Decoder, p fieldPath) (uint64, error) {
	n, err := readUint(dec, p)
	if err == nil && n == 0 {
		err = &requestError{"field " + quote(p.String()) + " must be at least 1"}
	}
	return n, err
}

func readBool(dec *jsontext.Decoder, p fieldPath) (bool, error) {
	if err := expect(dec, p, 't', "a boolean"); err != nil {
		return false, err
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return false, err
	}
	return tok.Bool(), nil
}

// decodeRequest reads one request object into d.
func decodeRequest(dec *jsontext.Decoder, d *decodedRequest) error {
	req := &d.req
	if k := dec.PeekKind(); k != '{' {
		if err := dec.SkipValue(); err != nil {
			return err
		}
		return &requestError{"malformed request: a request is a JSON object, not " + jsonKindName(k)}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var seen requestField
	for dec.PeekKind() != '}' {
		name, err := memberName(dec)
		if err != nil {
			return err
		}
		var f requestField
		switch string(name) {
		case "id":
			f = fieldID
			var v jsontext.Value
			if v, err = dec.ReadValue(); err == nil {
				if req.ID = oneLineID(v); req.ID == nil {
					err = &requestError{"malformed request: the id holds a newline; a request is one line"}
				}
				if d.mutation == MutRequestIDAliasesLine && req.ID != nil {
					req.ID = v
				}
			}
		case "op":
			f = fieldOp
			req.Op, err = readOp(dec)
		case "key":
			f = fieldKey
			req.Key, err = readString(dec, topField("key"))
		case "value":
			f = fieldValue
			if d.value, err = readString(dec, topField("value")); err == nil {
				req.Value = &d.value
			}
		case "items":
			f = fieldItems
			req.Items, err = readItems(dec, req.Op, d.bulkEntriesMax)
		case "keys":
			f = fieldKeys
			req.Keys, err = readKeys(dec, req.Op, d.bulkEntriesMax)
		case "debug_simulate_fail":
			f = fieldDebugSimulateFail
			req.DebugSimulateFail, err = readBool(dec, topField("debug_simulate_fail"))
		case "client_id":
			f = fieldClientID
			req.ClientID, err = readUint(dec, topField("client_id"))
			if err == nil && (req.ClientID == 0 || req.ClientID > ClientIDMax) {
				err = &requestError{"client_id must be in 1.." + itoa(ClientIDMax) + ", not " + uitoa(req.ClientID)}
			}
		case "seq":
			f = fieldSeq
			req.Seq, err = readUint(dec, topField("seq"))
		case "acked":
			f = fieldAcked
			req.Acked, err = readUint(dec, topField("acked"))
		case "after":
			f = fieldAfter
			req.After, err = readString(dec, topField("after"))
		case "quorum":
			f = fieldQuorum
			req.Quorum, err = readUint(dec, topField("quorum"))
		case "query":
			f = fieldQuery
			req.Query, err = readString(dec, topField("query"))
		case "mode":
			f = fieldMode
			req.Mode, err = readString(dec, topField("mode"))
		case "limit":
			f = fieldLimit
			req.Limit, err = readCount(dec, topField("limit"))
		case "top_k":
			f = fieldTopK
			req.TopK, err = readCount(dec, topField("top_k"))
		case "password":
			f = fieldPassword
			req.Password, err = readString(dec, topField("password"))
		case "prefix":
			f = fieldPrefix
			req.Prefix, err = readString(dec, topField("prefix"))
		case "start_after":
			f = fieldStartAfter
			req.StartAfter, err = readString(dec, topField("start_after"))
		case "keys_only":
			f = fieldKeysOnly
			req.KeysOnly, err = readBool(dec, topField("keys_only"))
		case "consistent":
			f = fieldConsistent
			req.Consistent, err = readBool(dec, topField("consistent"))
		case "view":
			f = fieldView
			req.View, err = readString(dec, topField("view"))
		case "close":
			f = fieldClose
			req.Close, err = readBool(dec, topField("close"))
		case "ttl_ms":
			f = fieldTTLMs
			req.TTLMs, err = readCount(dec, topField("ttl_ms"))
		case "delta":
			f = fieldDelta
			var n int64
			if n, err = readInt(dec, topField("delta")); err == nil {
				req.Delta = &n
			}
		case "if_absent":
			f = fieldIfAbsent
			req.IfAbsent, err = readBool(dec, topField("if_absent"))
		case "if_exists":
			f = fieldIfExists
			req.IfExists, err = readBool(dec, topField("if_exists"))
		case "if_value":
			f = fieldIfValue
			var v string
			if v, err = readString(dec, topField("if_value")); err == nil {
				req.IfValue = &v
			}
		default:
			return &requestError{"unknown field " + quote(string(name))}
		}
		if err != nil {
			return err
		}
		// The decoder refuses a duplicate name itself.
		seen |= f
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	return checkFields(req.Op, seen)
}

// checkFields refuses a promise field that op does not use, and the
// fields whose mere presence is wrong (Validate cannot tell a zero from an
// absence).
func checkFields(op string, seen requestField) error {
	allowed, known := opFields(op)
	if !known {
		return nil
	}
	// The two search ops name their count of hits differently, and a
	// client that sends the other's would be answered the default count.
	switch {
	case op == OpSearch && seen&fieldTopK != 0:
		return &requestError{"search counts its hits in \"limit\", not \"top_k\""}
	case op == OpSearchSimilar && seen&fieldLimit != 0:
		return &requestError{"search_similar counts its hits in \"top_k\", not \"limit\""}
	}
	if extra := seen & promiseFields &^ allowed; extra != 0 {
		for i, name := range fieldNames {
			if extra&(1<<i) != 0 {
				return &requestError{"field " + quote(name) + " is not used by op " + quote(op)}
			}
		}
	}
	if seen&(fieldSeq|fieldAcked) != 0 && seen&fieldClientID == 0 {
		return &requestError{"seq and acked belong to a client session: they need client_id"}
	}
	if op == OpIncr && seen&fieldValue != 0 {
		// Not a leftover: a client that sends it means the amount, which
		// would be ignored and 1 added.
		return &requestError{"incr adds \"delta\" (default 1), not \"value\""}
	}
	return nil
}

// readItems reads bulk_set's array of {"key","value"} objects; both fields
// are required in every item. With entriesMax above 0, an item past it is
// refused before it is read: what a line may make the host allocate is
// bounded by the limit, not by the line.
func readItems(dec *jsontext.Decoder, op string, entriesMax int) ([]KV, error) {
	if err := expect(dec, topField("items"), '[', "an array"); err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	items := []KV{}
	for i := 0; dec.PeekKind() != ']'; i++ {
		if i == entriesMax && entriesMax > 0 {
			return nil, tooManyEntries(op, "items", entriesMax)
		}
		if err := expect(dec, fieldPath{item: i}, '{', "an object"); err != nil {
			return nil, err
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		var kv KV
		var haveKey, haveValue bool
		for dec.PeekKind() != '}' {
			name, err := memberName(dec)
			if err != nil {
				return nil, err
			}
			switch string(name) {
			case "key":
				kv.Key, err = readString(dec, fieldPath{name: "key", item: i})
				haveKey = true
			case "value":
				kv.Value, err = readString(dec, fieldPath{name: "value", item: i})
				haveValue = true
			case "ttl_ms":
				return nil, &requestError{quote(fieldPath{name: string(name), item: i}.String()) + ": " + bulkSetTTLRefused}
			default:
				return nil, &requestError{"unknown field " + quote(fieldPath{name: string(name), item: i}.String())}
			}
			if err != nil {
				return nil, err
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
		switch {
		case !haveKey:
			return nil, &requestError{"items[" + itoa(i) + "] needs a string field \"key\""}
		case !haveValue:
			return nil, &requestError{"items[" + itoa(i) + "] needs a string field \"value\""}
		}
		items = append(items, kv)
	}
	_, err := dec.ReadToken()
	return items, err
}

// readKeys reads bulk_get's and bulk_delete's array of key strings; with
// entriesMax above 0, a key past it is refused before it is read, as readItems
// refuses an item.
func readKeys(dec *jsontext.Decoder, op string, entriesMax int) ([]string, error) {
	if err := expect(dec, topField("keys"), '[', "an array"); err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	keys := []string{}
	for i := 0; dec.PeekKind() != ']'; i++ {
		if i == entriesMax && entriesMax > 0 {
			return nil, tooManyEntries(op, "keys", entriesMax)
		}
		k, err := readString(dec, fieldPath{name: "keys/" + itoa(i), item: -1})
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	_, err := dec.ReadToken()
	return keys, err
}

// scanID finds the id of a line that failed to decode, reading the object's
// members up to it and the token after it. It gives up at the first thing
// it cannot read, so an id after a syntax error, or followed by one (01 is
// 0 and then a stray 1), is not found. Only the error path runs it.
func scanID(line []byte) jsontext.Value {
	dec := jsontext.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil
	}
	for {
		tok, err := dec.ReadToken()
		if err != nil || tok.Kind() != '"' {
			return nil
		}
		if tok.String() == "id" {
			v, err := dec.ReadValue()
			if err != nil {
				return nil
			}
			id := oneLineID(v) // v is the decoder's, until its next read
			if _, err := dec.ReadToken(); err != nil {
				return nil
			}
			return id
		}
		if dec.SkipValue() != nil {
			return nil
		}
	}
}

// oneLineID copies an id, which must not hold a newline: it is echoed in a
// response line. A server's lines never hold one (they are split at it), but
// DecodeRequest may be handed anything.
func oneLineID(v jsontext.Value) jsontext.Value {
	if bytes.IndexByte(v, '\n') >= 0 {
		return nil
	}
	return bytes.Clone(v)
}

func describeDecodeError(err error) string {
	var re *requestError
	if errors.As(err, &re) {
		return re.msg
	}
	var tl *tooManyEntriesError
	if errors.As(err, &tl) {
		return tl.msg
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return "malformed JSON: " + syn.Err.Error() + " at byte " + itoa(int(syn.ByteOffset))
	}
	return "malformed request: " + err.Error()
}

func quote(s string) string { return "\"" + s + "\"" }

func jsonKindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "something else"
}

func itoa(n int) string {
	if n < 0 {
		return "-" + uitoa(uint64(-n))
	}
	return uitoa(uint64(n))
}

func uitoa(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// AppendResponse encodes resp as one JSON line, newline included, onto dst.
//
// It writes the fields by hand, as json.Marshal would (a test holds the two
// equal), for two reasons: the id goes out as the bytes it came in as,
// where the encoder would reformat it (drop its spaces, rewrite its
// escapes) or omit an empty one; and every response passes here, so it
// costs no allocation. Status, rare and nested, is left to json.Marshal.
func AppendResponse(dst []byte, resp *Response) []byte { return Codec{}.AppendResponse(dst, resp) }

// AppendResponse is the package's AppendResponse, with c's mutation.
func (c Codec) AppendResponse(dst []byte, resp *Response) []byte {
	dst = append(dst, '{')
	idBytesMin := 1
	if c.Mutation == MutResponseIDOffByOne {
		idBytesMin = 2
	}
	if len(resp.ID) >= idBytesMin {
		// An id that is not one valid JSON value on one line would break
		// the stream for every later response; DecodeRequest only makes
		// good ones.
		assert(resp.ID.IsValid() && bytes.IndexByte(resp.ID, '\n') < 0, "response id must be one JSON value on one line")
		dst = append(dst, `"id":`...)
		dst = append(dst, resp.ID...)
		dst = append(dst, ',')
	}
	if resp.OK {
		dst = append(dst, `"ok":true`...)
	} else {
		dst = append(dst, `"ok":false`...)
	}
	if resp.Value != nil {
		dst = append(dst, `,"value":`...)
		dst = appendString(dst, *resp.Value)
	}
	if resp.Stamp != "" {
		dst = append(dst, `,"stamp":`...)
		dst = appendString(dst, resp.Stamp)
	}
	if resp.Hits != nil {
		dst = append(dst, `,"hits":[`...)
		for i, h := range resp.Hits {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"key":`...)
			dst = appendString(dst, h.Key)
			dst = append(dst, `,"score":`...)
			dst = appendScore(dst, h.Score)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if resp.Values != nil {
		dst = append(dst, `,"values":[`...)
		for i, v := range resp.Values {
			if i > 0 {
				dst = append(dst, ',')
			}
			if v == nil {
				dst = append(dst, "null"...)
			} else {
				dst = appendString(dst, *v)
			}
		}
		dst = append(dst, ']')
	}
	if resp.Items != nil {
		dst = append(dst, `,"items":[`...)
		for i, kv := range resp.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"key":`...)
			dst = appendString(dst, kv.Key)
			dst = append(dst, `,"value":`...)
			dst = appendString(dst, kv.Value)
			if kv.TTLMs != nil {
				dst = append(dst, `,"ttl_ms":`...)
				dst = strconv.AppendUint(dst, *kv.TTLMs, 10)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if resp.Keys != nil {
		dst = append(dst, `,"keys":[`...)
		for i, k := range resp.Keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
		}
		dst = append(dst, ']')
	}
	if resp.More != nil {
		dst = append(dst, `,"more":`...)
		dst = strconv.AppendBool(dst, *resp.More)
	}
	if resp.View != "" {
		dst = append(dst, `,"view":`...)
		dst = appendString(dst, resp.View)
	}
	if resp.TTLMs != nil {
		dst = append(dst, `,"ttl_ms":`...)
		dst = strconv.AppendUint(dst, *resp.TTLMs, 10)
	}
	if resp.Deleted != nil {
		dst = append(dst, `,"deleted":`...)
		dst = strconv.AppendUint(dst, *resp.Deleted, 10)
	}
	if resp.Status != nil {
		b, err := json.Marshal(resp.Status)
		assert(err == nil, "status must always encode")
		dst = append(dst, `,"status":`...)
		dst = append(dst, b...)
	}
	if e := resp.Error; e != nil {
		dst = append(dst, `,"error":{"code":`...)
		code := e.Code
		if c.Mutation == MutErrorCodeIsMessage {
			code = e.Message
		}
		dst = appendString(dst, code)
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, e.Message)
		if e.Leader != "" {
			dst = append(dst, `,"leader":`...)
			dst = appendString(dst, e.Leader)
		}
		dst = append(dst, '}')
	}
	return append(dst, "}\n"...)
}

// appendScore writes a score as json.Marshal would: the shortest decimal
// that reads back as the same float64. A score is never NaN or infinite.
func appendScore(dst []byte, f float64) []byte {
	assert(!math.IsNaN(f) && !math.IsInf(f, 0), "a search score must be finite")
	b, err := json.Marshal(f)
	assert(err == nil, "a finite float must encode")
	return append(dst, b...)
}

// appendString writes s as a JSON string, byte for byte as
// jsontext.AppendQuote does. A string of printable ASCII without a quote or
// a backslash (most values) needs no escape and is copied whole: the
// profile of pipelined GETs had AppendQuote's walk over a 100-byte value at
// 9% of the server's CPU.
func appendString(dst []byte, s string) []byte {
	if plainJSON(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst, err := jsontext.AppendQuote(dst, s)
	assert(err == nil, "response strings must be valid UTF-8")
	return dst
}

// QuotedBytesMax is the most bytes s takes as a JSON string, quotes
// included: what a limit on an encoded line must count, since a control
// byte takes six (\u0001) and a quote two. Bytes past ASCII count two,
// enough for the escapes of U+2028 and U+2029 (three bytes, six escaped).
func QuotedBytesMax(s string) int {
	if plainJSON(s) {
		return len(s) + 2
	}
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20:
			n += 6
		case c == '"' || c == '\\' || c >= 0x80:
			n += 2
		default:
			n++
		}
	}
	return n
}

// plainJSON reports whether s is printable ASCII with no '"' and no '\\',
// which a JSON string holds as it is; it tests eight bytes at a time.
func plainJSON(s string) bool {
	for i := plainWords(s, 0); i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// AppendRequest encodes req as one JSON line, newline included, onto dst.
func AppendRequest(dst []byte, req *Request) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return dst, err
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}

// DecodeResponse parses one response line. The id keeps its bytes as sent.
func DecodeResponse(line []byte) (*Response, error) {
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
