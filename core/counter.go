package core

import (
	"math"
	"strconv"
)

// A counter is a key whose value is a signed 64-bit integer in decimal, as
// an incr reads and writes it. The form is Redis's: an optional minus
// sign, then digits without a leading zero ("0" alone excepted), no sign
// on zero, no plus, no spaces, so that every number has one spelling and
// an incr of a value a client wrote by hand answers what a get showed.
const counterBytesMax = len("-9223372036854775808")

// ParseCounter reads a counter's value; ok is false for anything else.
func ParseCounter(s string) (n int64, ok bool) {
	if len(s) == 0 || len(s) > counterBytesMax {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, false // "+1", "01", "-0", " 1": not the one spelling
	}
	return n, true
}

// Increment is what an incr by delta makes of a key that holds value
// (found: the key exists; a missing key counts as 0). It answers the new
// number, or the code of its refusal: CodeNotInteger for a value that is
// not a counter, CodeOverflow for a sum outside int64.
func Increment(value string, found bool, delta int64) (n int64, code string) {
	var old int64
	if found {
		var ok bool
		if old, ok = ParseCounter(value); !ok {
			return 0, CodeNotInteger
		}
	}
	if (delta > 0 && old > math.MaxInt64-delta) || (delta < 0 && old < math.MinInt64-delta) {
		return 0, CodeOverflow
	}
	return old + delta, ""
}

// IncrResponse answers an incr: the key's new value, or its refusal.
func IncrResponse(key string, n int64, code string) Response {
	switch code {
	case "":
		v := strconv.FormatInt(n, 10)
		return Response{OK: true, Value: &v}
	case CodeNotInteger:
		return ErrorResponse(CodeNotInteger, "key %q holds a value that is not an integer (a decimal int64, as an incr writes it): nothing was written", key)
	case CodeOverflow:
		return ErrorResponse(CodeOverflow, "the incr of key %q would take it past the int64 range: nothing was written", key)
	}
	panic("IncrResponse: code " + code)
}

// IncrDelta is an incr request's delta: Delta, or 1 when it is absent.
func (r *Request) IncrDelta() int64 {
	if r.Delta == nil {
		return 1
	}
	return *r.Delta
}

// Incr applies an incr of key by delta to the store: the counter's new
// value, written with the key's deadline kept, or the code of its refusal
// with the store unchanged (see Increment).
func (s *Store) Incr(key string, delta int64) (n int64, code string) {
	old, found := s.Get(key)
	if n, code = Increment(old, found, delta); code != "" {
		return 0, code
	}
	v := strconv.FormatInt(n, 10)
	if at, ok := s.Deadline(key); ok {
		s.SetExpiring(key, v, at)
	} else {
		s.Set(key, v)
	}
	return n, ""
}
