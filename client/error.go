package client

import (
	"errors"

	"dkv/core"
)

var (
	// ErrNotFound matches (through errors.Is) the ServerError of a get, a
	// ttl, an expire or a persist of a key that does not exist.
	ErrNotFound = errors.New("not found")

	// ErrIndexesDisabled matches the ServerError of a search on a server
	// started without --enable-indexes.
	ErrIndexesDisabled = errors.New("indexes are not enabled on the server")

	// ErrAuth matches the ServerError of a server that wants a password
	// the client did not give (WithPassword), or refused the one it gave.
	ErrAuth = errors.New("authentication failed")

	// ErrTLS is wrapped by the error of a dial whose TLS handshake failed
	// for a reason that retrying cannot mend (WithTLS): the server's
	// certificate is not trusted or does not name it, the server refused
	// the client's, or the server does not speak TLS.
	ErrTLS = errors.New("TLS handshake failed")

	// ErrConditionFailed matches the ServerError of a conditional write
	// (core.Request's IfAbsent, IfExists, IfValue) whose condition did not
	// hold: nothing was written. SetIfAbsent and its kin report it as
	// false rather than as an error. It matches a cluster's
	// condition_refused_earlier too: a retry of a write that was refused
	// when it first applied, whose answer (with the value) was lost.
	ErrConditionFailed = errors.New("condition failed")

	// ErrInvalidTTL is wrapped by the error of SetWithTTL and its kin, and
	// of Expire, given a ttl that no set or expire may carry: under a
	// millisecond, or over ten years (core.TTLMsMax milliseconds). Nothing
	// was sent.
	ErrInvalidTTL = errors.New("invalid ttl")

	// ErrScanExpired matches the ServerError of a consistent scan's page
	// whose view the server no longer keeps: the walk must start again.
	ErrScanExpired = errors.New("the consistent scan's view is gone")

	// ErrNotInteger matches the ServerError of an Incr of a key whose
	// value is not an integer as an incr writes it (a decimal int64, one
	// spelling for each number: see core.ParseCounter); ErrOverflow, of an
	// Incr whose sum would leave the int64 range. Nothing was written. A
	// ClusterKVClient's is certain even after an attempt of unknown
	// outcome: the cluster keeps an incr's refusal in the session and
	// answers its retry with it.
	ErrNotInteger = errors.New("the value is not an integer")
	ErrOverflow   = errors.New("the sum overflows int64")

	// ErrStoreFull matches the ServerError of a write that would take the
	// server's store past its bound (--max-data-bytes): it was not
	// applied. Deletes, and writes that shrink a value, are still taken.
	// (A ClusterKVClient's after an attempt of unknown outcome matches
	// ErrUnknownOutcome too: that attempt may still apply.)
	ErrStoreFull = errors.New("the server's store is at its bound (--max-data-bytes)")

	// ErrClosed is returned by calls on a closed client, and by calls that
	// were outstanding when it was closed.
	ErrClosed = errors.New("dkv client is closed")

	// ErrUnknownOutcome is wrapped by the error of a write that was sent but
	// whose response never arrived (the connection broke, the client was
	// closed, or the context expired) or could not be read (it was over
	// WithMaxResponseBytes), and of a write the server answered internal
	// (a bug, which may have struck after it applied; the error is the
	// *ServerError too). The server may or may not have applied
	// it; the client does not retry it, because repeating a write is the
	// caller's decision. Read it back to find out. (A ClusterKVClient does
	// resend it, as the same write of its session, which the cluster applies
	// at most once; it returns this error when it gives up, or when the
	// cluster answers session_expired after an attempt of unknown outcome.)
	// A server's outcome_unknown and session_expired answers match it too.
	ErrUnknownOutcome = errors.New("outcome unknown: the write may or may not have been applied")

	// ErrProtocol is wrapped when the server breaks the wire protocol: a
	// response that is not JSON, echoes the wrong id, or answers nothing that
	// was asked. The connection is dropped, since its stream can no longer be
	// trusted.
	ErrProtocol = errors.New("protocol violation")

	// ErrResponseTooLarge is returned when a response line is longer than the
	// client's limit (WithMaxResponseBytes). The line is skipped, so the
	// connection stays usable. A write's matches ErrUnknownOutcome too.
	ErrResponseTooLarge = errors.New("response line too large")

	// ErrRequestTooLarge is returned, without sending anything, when a request
	// line would be longer than the client's limit (WithMaxRequestBytes).
	ErrRequestTooLarge = errors.New("request line too large")
)

// ServerError is a failure response from the server: {"ok":false,"error":...}.
// Code is one of the stable core.Code* values.
type ServerError struct {
	Code    string
	Message string
	// Leader is the address of the current leader, for not_leader.
	Leader string
}

func (e *ServerError) Error() string {
	s := "server error " + e.Code + ": " + e.Message
	if e.Leader != "" {
		s += " (leader is " + e.Leader + ")"
	}
	return s
}

// Is lets errors.Is(err, ErrNotFound) see through the server's not_found,
// and errors.Is(err, ErrUnknownOutcome) through a cluster's outcome_unknown
// and session_expired, so callers need not know the code strings.
func (e *ServerError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == core.CodeNotFound
	case ErrIndexesDisabled:
		return e.Code == core.CodeIndexesDisabled
	case ErrAuth:
		return e.Code == core.CodeAuthRequired || e.Code == core.CodeAuthFailed
	case ErrUnknownOutcome:
		return e.Code == core.CodeOutcomeUnknown || e.Code == core.CodeSessionExpired
	case ErrConditionFailed:
		return e.Code == core.CodeConditionFailed || e.Code == core.CodeConditionRefusedEarlier
	case ErrScanExpired:
		return e.Code == core.CodeScanExpired
	case ErrNotInteger:
		return e.Code == core.CodeNotInteger
	case ErrOverflow:
		return e.Code == core.CodeOverflow
	case ErrStoreFull:
		return e.Code == core.CodeStoreFull
	}
	return false
}

// serverError turns a failed response into a *ServerError. A response that
// says ok:false without saying why is still a failure, not a success.
func serverError(resp *core.Response) *ServerError {
	if resp.Error == nil {
		return &ServerError{Code: core.CodeInternal, Message: "response has ok:false and no error object"}
	}
	return &ServerError{Code: resp.Error.Code, Message: resp.Error.Message, Leader: resp.Error.Leader}
}

// connError says that a connection broke and why. Calls that fail with it
// may be retried on a new connection if they are reads or were never sent.
type connError struct {
	addr string
	err  error
}

func (e *connError) Error() string { return "connection to " + e.addr + " lost: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }
