package core

import (
	"unicode/utf8"
	"unsafe"

	"dkv/internal/ascii"
)

// decodeFast decodes the shapes nearly every request line has — an object
// of "op" with "id", "key", "value", a bulk_set's "items", a client
// session's "client_id", "seq" and "acked", and "debug_simulate_fail", in
// any order — by scanning its bytes, without the JSON library's tokenizer.
// It takes only what it can decode exactly as decodeRequest would and that
// decodeRequest accepts: strings without escapes, control characters or
// invalid UTF-8, an id that is a number, a plain string, true, false or
// null, an op this server knows, counts without sign, fraction or leading
// zero, items of exactly a plain "key" and "value", and fields that
// checkFields allows. For anything else it reports false and decodes
// nothing, and DecodeRequest asks decodeRequest, which gives every error
// its message. TestDecodeFastAgrees and FuzzDecodeFast hold the two to the
// same answers.
//
// The request goes into into, or a new allocation when into is nil (a
// host's slot holds one: core.RequestBuf). A set is three allocations: the
// request (none with into), the value, and the id's bytes with the key's
// after them; a bulk_set of n items is n+3: the request,
// the items, every value and the id in one, and each key on its own. (A
// key is never in a value's allocation, nor in another key's, because an
// index may keep a key long after its request; nothing keeps a request's
// value, which the store copies.)
//
// With itemsMax above 0 (Codec.BulkEntriesMax), items past it are not
// counted or allocated: the fast path gives up at the first one past it,
// and the general decoder refuses the line there too.
func decodeFast(line []byte, into *decodedRequest, itemsMax int) (*decodedRequest, bool) {
	var (
		seen                   requestField
		op                     string
		id, key, value         []byte
		clientID, seq, acked   uint64
		fail                   bool
		itemsStart, itemsCount int
		itemsValueBytes        int
		name                   []byte
		ok                     bool
		i                      = skipSpace(line, 0)
	)
	if i == len(line) || line[i] != '{' {
		return nil, false
	}
	for i = skipSpace(line, i+1); ; {
		if name, i, ok = plainString(line, i); !ok {
			return nil, false
		}
		if i = skipSpace(line, i); i == len(line) || line[i] != ':' {
			return nil, false
		}
		i = skipSpace(line, i+1)
		var f requestField
		switch string(name) {
		case "id":
			f = fieldID
			start := i
			if i, ok = plainValue(line, i); ok {
				id = line[start:i]
			}
		case "op":
			f = fieldOp
			var s []byte
			if s, i, ok = plainString(line, i); ok {
				op, ok = knownOp(s)
			}
		case "key":
			f = fieldKey
			key, i, ok = plainString(line, i)
		case "value":
			f = fieldValue
			value, i, ok = plainString(line, i)
		case "items":
			f = fieldItems
			itemsStart = i
			i, itemsCount, itemsValueBytes, ok = plainItems(line, i, itemsMax, nil)
		case "client_id":
			f = fieldClientID
			clientID, i, ok = plainUint(line, i)
			ok = ok && clientID >= 1 && clientID <= ClientIDMax
		case "seq":
			f = fieldSeq
			seq, i, ok = plainUint(line, i)
		case "acked":
			f = fieldAcked
			acked, i, ok = plainUint(line, i)
		case "debug_simulate_fail":
			f = fieldDebugSimulateFail
			if i, ok = literal(line, i, "true"); ok {
				fail = true
			} else {
				i, ok = literal(line, i, "false")
			}
		default:
			return nil, false
		}
		if !ok || seen&f != 0 {
			return nil, false
		}
		seen |= f
		if i = skipSpace(line, i); i == len(line) {
			return nil, false
		}
		if line[i] == '}' {
			i++
			break
		}
		if line[i] != ',' {
			return nil, false
		}
		i = skipSpace(line, i+1)
	}
	if skipSpace(line, i) != len(line) || seen&fieldOp == 0 || checkFields(op, seen) != nil {
		return nil, false
	}

	// The request is written only now, when the line is known to decode:
	// a line refused leaves into as it was, and costs no allocation.
	d := into
	if d == nil {
		d = new(decodedRequest)
	}
	req := &d.req
	req.Op, req.ClientID, req.Seq, req.Acked, req.DebugSimulateFail = op, clientID, seq, acked, fail
	if seen&fieldItems != 0 {
		// The values, then the id, in one allocation; every key in its own.
		b := make([]byte, 0, itemsValueBytes+len(id))
		req.Items = make([]KV, 0, itemsCount)
		plainItems(line, itemsStart, itemsMax, &itemsFill{values: b, items: &req.Items})
		if len(id) > 0 {
			b = append(b[:itemsValueBytes], id...)
			req.ID = b[itemsValueBytes:len(b):len(b)]
		}
		id = nil
	}
	if len(id)+len(key) > 0 {
		b := make([]byte, len(id)+len(key))
		copy(b, id)
		copy(b[len(id):], key)
		if len(id) > 0 {
			req.ID = b[:len(id):len(id)]
		}
		if len(key) > 0 {
			req.Key = unsafe.String(&b[len(id)], len(key))
		}
	}
	if seen&fieldValue != 0 {
		d.value = string(value)
		req.Value = &d.value
	}
	return d, true
}

// itemsFill is where plainItems's second pass puts the items: values go
// end to end into values, whose capacity the first pass measured.
type itemsFill struct {
	values []byte
	items  *[]KV
}

// plainItems reads bulk_set's items if each is an object of exactly a
// plain "key" and a plain "value", and returns the index after the array,
// the number of items and the bytes of their values. With fill, it also
// stores the items. With itemsMax above 0, it reports false at an item
// past itemsMax, before reading it.
func plainItems(line []byte, i, itemsMax int, fill *itemsFill) (end, n, valueBytes int, ok bool) {
	if i >= len(line) || line[i] != '[' {
		return i, 0, 0, false
	}
	if i = skipSpace(line, i+1); i < len(line) && line[i] == ']' {
		return i + 1, 0, 0, true
	}
	for {
		if i >= len(line) || line[i] != '{' || (itemsMax > 0 && n == itemsMax) {
			return i, 0, 0, false
		}
		var key, value []byte
		var haveKey, haveValue bool
		i = skipSpace(line, i+1)
		for m := range 2 {
			if m == 1 {
				if i >= len(line) || line[i] != ',' {
					return i, 0, 0, false
				}
				i = skipSpace(line, i+1)
			}
			var name, s []byte
			if name, i, ok = plainString(line, i); !ok {
				return i, 0, 0, false
			}
			if i = skipSpace(line, i); i == len(line) || line[i] != ':' {
				return i, 0, 0, false
			}
			if s, i, ok = plainString(line, skipSpace(line, i+1)); !ok {
				return i, 0, 0, false
			}
			switch {
			case string(name) == "key" && !haveKey:
				key, haveKey = s, true
			case string(name) == "value" && !haveValue:
				value, haveValue = s, true
			default:
				return i, 0, 0, false
			}
			i = skipSpace(line, i)
		}
		if !haveKey || !haveValue || i >= len(line) || line[i] != '}' {
			return i, 0, 0, false
		}
		n++
		valueBytes += len(value)
		if fill != nil {
			v := ""
			if len(value) > 0 {
				at := len(fill.values)
				fill.values = append(fill.values, value...)
				v = unsafe.String(&fill.values[at], len(value))
			}
			*fill.items = append(*fill.items, KV{Key: string(key), Value: v})
		}
		if i = skipSpace(line, i+1); i < len(line) && line[i] == ']' {
			return i + 1, n, valueBytes, true
		}
		if i >= len(line) || line[i] != ',' {
			return i, 0, 0, false
		}
		i = skipSpace(line, i+1)
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(line []byte, i int) int {
	for i < len(line) {
		switch line[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// plainString reads the string at line[i:] if it has no escape, no control
// character and only valid UTF-8, and returns its contents and the index
// after its closing quote.
func plainString(line []byte, i int) ([]byte, int, bool) {
	if i >= len(line) || line[i] != '"' {
		return nil, i, false
	}
	start := i + 1
	// Most of a value is plain: pass over it a word at a time, then look
	// at bytes one by one.
	j := plainWords(unsafe.String(unsafe.SliceData(line), len(line)), start)
	isASCII := true
	for ; j < len(line); j++ {
		switch c := line[j]; {
		case c == '"':
			s := line[start:j]
			if !isASCII && !utf8.Valid(s) {
				return nil, i, false
			}
			return s, j + 1, true
		case c == '\\' || c < ' ':
			return nil, i, false
		case c >= utf8.RuneSelf:
			isASCII = false
		}
	}
	return nil, i, false
}

// plainWords returns the index of the first 8-byte word of s from i that
// holds a byte a JSON string cannot hold as it is (a control byte, DEL or
// beyond ASCII, '"' or '\\'), or where fewer than eight bytes are left:
// strings of plain text are passed over a word at a time, where a loop
// over their bytes took a branch per byte.
func plainWords(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		x := ascii.Load8(s[i:])
		if !ascii.Printable8(x) || ascii.Has8(x, '"') || ascii.Has8(x, '\\') {
			break
		}
	}
	return i
}

// plainValue reads an id that is a number, a plain string (plainString),
// true, false or null, and returns the index after it.
func plainValue(line []byte, i int) (int, bool) {
	if i >= len(line) {
		return i, false
	}
	switch line[i] {
	case '"':
		_, j, ok := plainString(line, i)
		return j, ok
	case 't':
		return literal(line, i, "true")
	case 'f':
		return literal(line, i, "false")
	case 'n':
		return literal(line, i, "null")
	}
	return number(line, i)
}

func literal(line []byte, i int, lit string) (int, bool) {
	if len(line)-i < len(lit) || string(line[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// followed by a byte that cannot continue it.
func number(line []byte, i int) (int, bool) {
	digits := func(j int) int {
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			j++
		}
		return j
	}
	j := i
	if j < len(line) && line[j] == '-' {
		j++
	}
	switch {
	case j < len(line) && line[j] == '0':
		j++
	case j < len(line) && line[j] >= '1' && line[j] <= '9':
		j = digits(j)
	default:
		return i, false
	}
	if j < len(line) && line[j] == '.' {
		k := digits(j + 1)
		if k == j+1 {
			return i, false
		}
		j = k
	}
	if j < len(line) && (line[j] == 'e' || line[j] == 'E') {
		j++
		if j < len(line) && (line[j] == '+' || line[j] == '-') {
			j++
		}
		k := digits(j)
		if k == j {
			return i, false
		}
		j = k
	}
	// "01" or "1x" is not a number followed by something: leave it to
	// the tokenizer's message.
	if j < len(line) && (line[j] >= '0' && line[j] <= '9' || line[j] == '.' || line[j] == 'e' || line[j] == 'E' || line[j] == '-' || line[j] == '+') {
		return i, false
	}
	return j, true
}

// plainUint reads a count as readUint takes it: digits only, no leading
// zero (JSON has none), at most 19 digits so that it cannot overflow.
func plainUint(line []byte, i int) (uint64, int, bool) {
	j := i
	var n uint64
	for j < len(line) && line[j] >= '0' && line[j] <= '9' && j-i < 19 {
		n = n*10 + uint64(line[j]-'0')
		j++
	}
	if j == i || (line[i] == '0' && j > i+1) {
		return 0, i, false
	}
	if j < len(line) && (line[j] >= '0' && line[j] <= '9' || line[j] == '.' || line[j] == 'e' || line[j] == 'E' || line[j] == '-' || line[j] == '+') {
		return 0, i, false
	}
	return n, j, true
}

// knownOp returns the constant for an op this server knows.
func knownOp(s []byte) (string, bool) {
	switch string(s) {
	case OpSet:
		return OpSet, true
	case OpGet:
		return OpGet, true
	case OpDelete:
		return OpDelete, true
	case OpBulkSet:
		return OpBulkSet, true
	case OpPing:
		return OpPing, true
	case OpStatus:
		return OpStatus, true
	}
	return "", false
}
