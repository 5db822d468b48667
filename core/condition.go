package core

import "strconv"

// CondKind is what a conditional write requires of its key's state at the
// instant it applies.
type CondKind uint8

const (
	// CondNone: an unconditional write.
	CondNone CondKind = iota
	// CondAbsent: the key does not exist (Request.IfAbsent).
	CondAbsent
	// CondExists: the key exists (Request.IfExists).
	CondExists
	// CondValue: the key exists and holds Condition.Value
	// (Request.IfValue).
	CondValue
)

// Condition is a write's condition on its key. A conditional write applies
// in full or not at all: its condition is checked at the instant the write
// would apply, in the one order of writes that a single node or a
// cluster's log gives. A mesh has no such order (last writer wins by
// stamp) and refuses conditions.
type Condition struct {
	Kind  CondKind
	Value string // CondValue's value
}

// Holds reports whether the condition holds for a key whose state is
// (value, found).
func (c Condition) Holds(value string, found bool) bool {
	switch c.Kind {
	case CondAbsent:
		return !found
	case CondExists:
		return found
	case CondValue:
		return found && value == c.Value
	}
	return true
}

// String describes the condition for messages and histories.
func (c Condition) String() string {
	switch c.Kind {
	case CondAbsent:
		return "if_absent"
	case CondExists:
		return "if_exists"
	case CondValue:
		return "if_value=" + strconv.Quote(c.Value)
	}
	return "unconditional"
}

// Condition is the request's condition; Validate has checked that it has
// at most one.
func (r *Request) Condition() Condition {
	switch {
	case r.IfAbsent:
		return Condition{Kind: CondAbsent}
	case r.IfExists:
		return Condition{Kind: CondExists}
	case r.IfValue != nil:
		return Condition{Kind: CondValue, Value: *r.IfValue}
	}
	return Condition{}
}

// ConditionFailedResponse answers a conditional write whose condition did
// not hold: nothing was written, and the answer carries the key's value at
// that instant (none when the key did not exist), so that a client's
// compare-and-set loop needs no read of its own.
func ConditionFailedResponse(key string, c Condition, value string, found bool) Response {
	state := "does not exist"
	if found {
		state = "exists"
		if c.Kind == CondValue {
			state = "holds another value"
		}
	}
	r := Response{Error: &Error{Code: CodeConditionFailed, Message: c.String() + " did not hold: key " + strconv.Quote(key) + " " + state + "; nothing was written"}}
	if found {
		r.Value = &value
	}
	return r
}

// validateCondition checks a request's condition fields: at most one, on a
// set (any) or a delete (if_value: a delete of a key that does not exist
// already succeeds, so if_exists would promise nothing), with an if_value
// within the value limit.
func (l Limits) validateCondition(req *Request) *Response {
	n := 0
	for _, set := range []bool{req.IfAbsent, req.IfExists, req.IfValue != nil} {
		if set {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	bad := func(code, format string, args ...any) *Response {
		r := ErrorResponse(code, format, args...)
		return &r
	}
	switch {
	case req.Op != OpSet && req.Op != OpDelete:
		return bad(CodeBadRequest, "if_absent, if_exists and if_value are for set and delete, not %q", req.Op)
	case n > 1:
		return bad(CodeBadRequest, "a write takes at most one of if_absent, if_exists and if_value")
	case req.Op == OpDelete && req.IfValue == nil:
		return bad(CodeBadRequest, "a delete takes if_value only: deleting a key that does not exist already succeeds")
	case req.IfValue != nil && len(*req.IfValue) > l.ValueBytesMax:
		return bad(CodeTooLarge, "if_value is %d bytes; a value is at most %d", len(*req.IfValue), l.ValueBytesMax)
	}
	return nil
}
