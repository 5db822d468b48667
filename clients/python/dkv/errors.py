"""The exceptions of the dkv client.

Every exception the client raises on purpose is a DKVError. They fall in
three groups, and the group says what a caller may do next:

- ServerError: the server answered ok:false. ``code`` is the protocol's
  stable error code (docs/PROTOCOL.md, "Error codes"); each code has its
  own subclass, so ``except dkv.DiskFull`` works and so does
  ``e.code == "disk_full"``. An error answer to a write means it was not
  applied, except ``internal`` (treat the outcome as unknown) and the
  cluster's ``outcome_unknown`` and ``session_expired``, whose classes are
  also UnknownOutcome. ``condition_failed`` (ConditionFailed) is the answer
  of a conditional write whose condition did not hold, with the key's
  value as ``current``; the conditional calls return False for it.
  ``scan_expired`` (ScanExpired) ends a consistent ScanAll whose view
  the server no longer keeps: start the walk again. ``not_integer``
  (NotInteger) and ``overflow`` (Overflow) refuse an Incr: nothing was
  written.
- UnknownOutcome: a write was sent and no answer came back (the
  connection broke, or the timeout passed). The server may or may not have
  applied it. The client never sends such a write again by itself: read the
  key back, then decide. It is deliberately neither a ConnectionError nor a
  TimeoutError, so that code retrying on those cannot repeat such a write
  by accident; ``timed_out`` says which of the two happened, and
  ``__cause__`` holds the underlying error.
- ConnectionFailed and RequestTimeout: nothing was applied, or the call
  was a read. ConnectionFailed (also a ConnectionError): the server could
  not be reached, or the connection broke under a read or before the
  request left. RequestTimeout (also a TimeoutError): the timeout passed
  before a read was answered, or before a write could be sent.

Apart from those, TLSError says that TLS failed in a way retrying cannot
mend (a certificate refused on either side, a server without TLS or a
client without it): nothing was applied, and it is never retried.

Bad arguments raise the usual TypeError (a key or value that is not a str)
and ValueError (a str that is not valid UTF-8, a request over the line
limit) before anything is sent.
"""

from typing import Dict, Optional, Type


class DKVError(Exception):
    """The base class of every error the dkv client raises on purpose."""


class UnknownOutcome(DKVError):
    """A write whose outcome is unknown: it may or may not have been applied.

    Attributes: ``op`` (the request's op, e.g. "set"), ``timed_out`` (the
    client stopped waiting, rather than the connection breaking).
    """

    op = None  # type: Optional[str]
    timed_out = False


class ConnectionFailed(DKVError, ConnectionError):
    """The server could not be reached, or the connection broke before the
    request left or under a read. Nothing was applied; safe to retry."""


class ConnectionLost(ConnectionFailed):
    """The connection broke under a read, or before a write left (a write
    that had left is UnknownOutcome instead). Safe to retry."""


class RequestTimeout(DKVError, TimeoutError):
    """The timeout passed on a read, or before a write was sent (nothing was
    applied). A write that was sent and timed out is UnknownOutcome."""


class ProtocolError(DKVError):
    """The server broke the wire protocol (a response that is not JSON, or
    answers another request). The connection is dropped."""


class ResponseTooLarge(DKVError):
    """A response line was longer than the client's response_bytes_max.
    The line was skipped, and the connection stays usable."""


class ClientClosed(DKVError):
    """The client was closed."""


class TLSError(DKVError):
    """TLS failed in a way no retry mends: the server's certificate did not
    verify (signed by an authority the client's ssl_context does not trust,
    or not for the name dialled), the server refused this client's
    certificate or its absence (a server with --tls-client-ca), or the
    server does not speak TLS. Nothing was applied. It is never retried at
    the same node; ClusterKVClient tries each other node once (each has a
    certificate of its own) and raises it once every node has refused.

    Attributes: ``addr`` (the server, "host:port") and ``reason``
    (OpenSSL's reason, e.g. "CERTIFICATE_VERIFY_FAILED",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED", "WRONG_VERSION_NUMBER"; None when
    there is none); ``__cause__`` holds the ssl module's exception.
    TLSRequired, the server's answer to a client without TLS, is one too.
    """

    addr = None  # type: Optional[str]
    reason = None  # type: Optional[str]


class ServerError(DKVError):
    """The server answered ``{"ok": false, "error": {...}}``.

    Attributes: ``code`` (the stable error code), ``message`` (for humans;
    may change), ``leader`` (the leader's client address, with
    ``not_leader``), ``op`` (the request's op).
    """

    code = None  # type: Optional[str]

    def __init__(self, message="", code=None, leader=None, op=None):
        if code is not None:
            self.code = code
        self.message = message
        self.leader = leader
        self.op = op
        text = "server error %s: %s" % (self.code, message)
        if leader:
            text += " (leader is %s)" % leader
        if op:
            text = "%s: %s" % (op, text)
        super().__init__(text)


class BadRequest(ServerError):
    """Malformed JSON, a missing or mistyped field, an empty key. Not applied."""

    code = "bad_request"


class UnknownOp(ServerError):
    """The server does not know the op."""

    code = "unknown_op"


class TooLarge(ServerError):
    """A line, key, value or bulk_set over the server's limit. Not applied."""

    code = "too_large"


class NotFound(ServerError):
    """A get of a missing key. Get returns None instead of raising it; only
    ``request()`` with a raw get raises it."""

    code = "not_found"


class Unavailable(ServerError):
    """The node cannot serve now (no leader, a disk failure). Not applied;
    retry later or at another node."""

    code = "unavailable"


class NotLeader(ServerError):
    """A cluster follower; ``leader`` names the leader. Not applied."""

    code = "not_leader"


class OutcomeUnknown(ServerError, UnknownOutcome):
    """A cluster node took the write as leader but cannot learn its fate
    (a mesh: fewer nodes than asked confirmed a quorum write)."""

    code = "outcome_unknown"


class SessionExpired(ServerError, UnknownOutcome):
    """The cluster forgot this client's session: an earlier attempt of the
    write may have been applied. Read the key back."""

    code = "session_expired"


class TooManyConnections(ServerError):
    """The server is at --max-conns and refused the connection."""

    code = "too_many_connections"


class ServerTimeout(ServerError):
    """The server's line timeout: a partial request line stalled. Not applied."""

    code = "timeout"


class DiskFull(ServerError):
    """The write did not fit on the server's disk. Not applied."""

    code = "disk_full"


class StoreFull(ServerError):
    """The write would take the server's store past its bound
    (--max-data-bytes). Not applied; deletes and shorter values are still
    taken."""

    code = "store_full"


class ServerIOError(ServerError):
    """The write could not be persisted. Not applied."""

    code = "io_error"


class NotImplementedByServer(ServerError):
    """An op this server knows but does not serve."""

    code = "not_implemented"


class IndexesDisabled(ServerError):
    """Search and SearchSimilar on a server without --enable-indexes.

    Raised for ``indexes_disabled``, and for the answers of servers built
    before the indexes existed (``unknown_op``, ``not_implemented``), which
    mean the same to a caller; ``code`` keeps what the server said.
    """

    code = "indexes_disabled"


class AuthRequired(ServerError):
    """The server wants a password (its --auth-file) before any request:
    give the client ``password=``."""

    code = "auth_required"


class AuthFailed(ServerError):
    """The server refused the password, or has none and was sent one."""

    code = "auth_failed"


class TLSRequired(ServerError, TLSError):
    """The server's client port speaks TLS only (its --tls-cert), and the
    client connected without: give the client ``ssl_context=``. Not
    applied. Also a TLSError."""

    code = "tls_required"


class ConditionFailed(ServerError):
    """A conditional write (set with if_absent, if_exists or if_value,
    delete with if_value) whose condition did not hold: nothing was
    written. It is an answer, not a failure: SetIfAbsent, SetIfExists,
    CompareAndSwap and CompareAndDelete return False instead of raising
    it; ``request()`` with a raw conditional write raises it.

    ``current`` is the key's value when the condition was checked, or None
    when the key did not exist (a stored empty value is "", never None):
    a compare-and-set loop needs no read of its own. Certain even from a
    cluster after an attempt of unknown outcome (the cluster records a
    refused write in its session, so no copy of it applies later), so it
    is never an UnknownOutcome.
    """

    code = "condition_failed"
    current = None  # type: Optional[str]


class ConditionRefusedEarlier(ConditionFailed):
    """A cluster's answer to the retry of a conditional write that was
    refused when it first applied, whose answer was lost: nothing was
    written, and never will be, but the key has changed since, so the
    value it was refused on is not known (``current`` is None and says
    nothing). The conditional calls return False for it too; read the key
    for its value."""

    code = "condition_refused_earlier"


class ScanExpired(ServerError):
    """A page of a consistent scan (ScanAll with consistent=True) whose view
    the server no longer keeps: unused for a minute, open for ten, one of
    more than 64, or the server restarted or, in a cluster, the leader
    changed. The walk must start again from its first page; the keys it
    yielded so far are of an instant a new walk does not share."""

    code = "scan_expired"


class NotInteger(ServerError):
    """An Incr of a key whose value is not an integer as an incr writes it
    (a decimal 64-bit signed integer in its one spelling: no "+", no
    leading zero, no spaces): nothing was written. Certain even from a
    cluster after an attempt of unknown outcome (the cluster keeps an
    incr's refusal in the session and answers its retry with it), so it is
    never an UnknownOutcome."""

    code = "not_integer"


class Overflow(ServerError):
    """An Incr whose sum would leave the 64-bit signed range: nothing was
    written. Certain, as NotInteger."""

    code = "overflow"


class Internal(ServerError):
    """A bug in the server. A read may be retried; a write's outcome is
    unknown."""

    code = "internal"


_BY_CODE = {
    cls.code: cls
    for cls in (
        BadRequest,
        UnknownOp,
        TooLarge,
        NotFound,
        Unavailable,
        NotLeader,
        OutcomeUnknown,
        SessionExpired,
        TooManyConnections,
        ServerTimeout,
        DiskFull,
        StoreFull,
        ServerIOError,
        NotImplementedByServer,
        IndexesDisabled,
        AuthRequired,
        AuthFailed,
        TLSRequired,
        ConditionFailed,
        ConditionRefusedEarlier,
        ScanExpired,
        NotInteger,
        Overflow,
        Internal,
    )
}  # type: Dict[str, Type[ServerError]]

# The answers that mean "this server has no indexes" to a search op.
_NO_INDEX_CODES = frozenset(("indexes_disabled", "unknown_op", "not_implemented"))

_SEARCH_OPS = frozenset(("search", "search_similar"))


def server_error(error, op=None):
    """Returns the typed exception for a response's ``error`` object."""
    if not isinstance(error, dict):
        return Internal("response has ok:false and no error object", op=op)
    code = error.get("code")
    message = error.get("message", "")
    leader = error.get("leader")
    if not isinstance(code, str):
        return Internal("response has an error without a code: %r" % (error,), op=op)
    if not isinstance(message, str):
        message = str(message)
    if not isinstance(leader, str) or not leader:
        leader = None
    if op in _SEARCH_OPS and code in _NO_INDEX_CODES:
        cls = IndexesDisabled
    else:
        cls = _BY_CODE.get(code, ServerError)
    return cls(message, code=code, leader=leader, op=op)


def response_error(resp, op=None):
    """The typed exception of an ok:false response: server_error of its
    ``error`` object, and for a ConditionFailed the key's value the
    response carries (``current``; None when it carries none)."""
    err = server_error(resp.get("error"), op)
    if isinstance(err, ConditionFailed) and not isinstance(err, ConditionRefusedEarlier):
        v = resp.get("value")
        err.current = v if isinstance(v, str) else None
    return err
