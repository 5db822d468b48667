"""Requests and responses of the dkv wire protocol (docs/PROTOCOL.md):
one JSON object per line each way, answered in order on a connection.

This module builds request objects from a caller's arguments, checking
their types before anything is sent, and encodes them into lines.
"""

import collections
import json
import re
from typing import Dict, List, Tuple

from .errors import ProtocolError

# Ops that only read. They are safe to send again after a broken
# connection; every other op is a write and is never sent twice by a
# KVClient (a ClusterKVClient resends writes under its session only).
READ_OPS = frozenset(("get", "bulk_get", "ttl", "ping", "status", "search", "search_similar", "scan"))

# Ops any cluster node answers itself; the others only the leader serves.
ANY_NODE_OPS = frozenset(("ping", "status"))

# Writes that carry no mesh stamp ("after"): the protocol gives it to set,
# delete, bulk_set and bulk_delete, the writes a mesh takes, and a server
# refuses a field an op does not use. A mesh refuses these, and a client
# that had met one would have them refused for their "after" rather than
# answered not_implemented.
UNSTAMPED_WRITE_OPS = frozenset(("expire", "persist", "incr"))

# The server's default --max-request-bytes: a longer line is refused here,
# before sending, rather than by a too_large round trip.
REQUEST_BYTES_MAX_DEFAULT = 16 << 20

# Generous: a status or a get of a 1 MiB value is far below it, and a
# search answer may be long.
RESPONSE_BYTES_MAX_DEFAULT = 64 << 20

# A client session's id is an integer in 1..2^53-1 (docs/PROTOCOL.md).
CLIENT_ID_MAX = (1 << 53) - 1

SEARCH_MODES = ("all", "any")

# The longest ttl_ms a set may carry: ten years (core.TTLMsMax).
TTL_MS_MAX = 10 * 365 * 24 * 3600 * 1000

# An incr's counter and delta: a 64-bit signed integer.
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# An incr's answer as Go's strconv.ParseInt reads it (ASCII digits only:
# int() would take " 5", "5_0" and other scripts' digits too).
_INT_RE = re.compile(r"[+-]?[0-9]+")

# A mesh stamp, "wall.logical.node": three counts of ASCII digits, each at
# most a uint64's 20. str.isdigit() takes other scripts' digits ("³"),
# which int() refuses with a ValueError, and int() refuses more than 4,300
# digits too: a server's stamp must be checked before int() sees it.
_STAMP_RE = re.compile(r"([0-9]{1,20})\.([0-9]{1,20})\.([0-9]{1,20})")

# An address's port: 1 to 5 ASCII digits, for the same reason (a leader a
# server names in not_leader).
_PORT_RE = re.compile(r"[0-9]{1,5}")

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def check_str(what, x):
    """Raises TypeError unless x is a str: the protocol's keys and values
    are strings, and silently sending str(x) would store something else
    than the caller holds."""
    if not isinstance(x, str):
        if isinstance(x, (bytes, bytearray, memoryview)):
            raise TypeError("%s must be a str, not %s (decode it first)" % (what, type(x).__name__))
        raise TypeError("%s must be a str, not %s" % (what, type(x).__name__))
    return x


def check_positive_int(what, x):
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError("%s must be an int, not %s" % (what, type(x).__name__))
    if x < 1:
        raise ValueError("%s must be at least 1, not %d" % (what, x))
    return x


def check_ttl_ms(ttl_ms, optional=True):
    """A set's ttl_ms: None (the key stays until written again), or an int
    of milliseconds in 1..TTL_MS_MAX (ten years). An expire's is not
    optional: None is no deadline to give."""
    if ttl_ms is None and optional:
        return None
    if isinstance(ttl_ms, bool) or not isinstance(ttl_ms, int):
        raise TypeError("ttl_ms must be an int of milliseconds%s, not %s" % (" or None" if optional else "", type(ttl_ms).__name__))
    if not 1 <= ttl_ms <= TTL_MS_MAX:
        raise ValueError("ttl_ms must be in 1..%d (ten years), not %d" % (TTL_MS_MAX, ttl_ms))
    return ttl_ms


def set_request(key, value, ttl_ms=None):
    """A set; with ttl_ms, of a key the server deletes once ttl_ms
    milliseconds have passed."""
    req = {"op": "set", "key": check_str("key", key), "value": check_str("value", value)}
    if check_ttl_ms(ttl_ms) is not None:
        req["ttl_ms"] = ttl_ms
    return req


def set_if_absent_request(key, value, ttl_ms=None):
    """A set that applies only if key does not exist."""
    req = set_request(key, value, ttl_ms)
    req["if_absent"] = True
    return req


def set_if_exists_request(key, value, ttl_ms=None):
    """A set that applies only if key exists."""
    req = set_request(key, value, ttl_ms)
    req["if_exists"] = True
    return req


def compare_and_swap_request(key, old, new, ttl_ms=None):
    """A set of new that applies only if key holds old."""
    req = set_request(key, new, ttl_ms)
    req["if_value"] = check_str("old", old)
    return req


def ttl_request(key):
    return {"op": "ttl", "key": check_str("key", key)}


def expire_request(key, ttl_ms):
    """An expire: a deadline ttl_ms from now for key, which must exist."""
    return {"op": "expire", "key": check_str("key", key), "ttl_ms": check_ttl_ms(ttl_ms, optional=False)}


def persist_request(key):
    """A persist: takes key's deadline away."""
    return {"op": "persist", "key": check_str("key", key)}


def persist_of(resp):
    """A persist's answer: whether the key had a deadline, which the answer
    says by what it had left (ttl_ms), checked as a ttl's."""
    return ttl_of(resp) is not None


def incr_request(key, delta):
    """An incr: delta (an int in the 64-bit signed range, 0 and negatives
    included) added to the integer key holds. It is always sent, though
    the server takes its absence as 1, so that what was asked is plain on
    the wire."""
    check_str("key", key)
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError("delta must be an int, not %s" % type(delta).__name__)
    if not INT64_MIN <= delta <= INT64_MAX:
        raise ValueError("delta must be in %d..%d (64-bit signed), not %d" % (INT64_MIN, INT64_MAX, delta))
    return {"op": "incr", "key": key, "delta": delta}


def incr_of(resp):
    """An incr's answer: the counter's new value, an int. The incr applied
    whatever the value says, so one that is no 64-bit integer is a
    ProtocolError, not a refusal."""
    v = resp.get("value")
    # Its length first: int() refuses, with a ValueError, a string of more
    # digits than Python's limit (4300), which the pattern would pass.
    if not isinstance(v, str) or len(v) > 20 or not _INT_RE.fullmatch(v) or not INT64_MIN <= int(v) <= INT64_MAX:
        raise ProtocolError("incr answered a value that is not a 64-bit integer: %.200r" % (v,))
    return int(v)


def ttl_of(resp):
    """A ttl's answer: the seconds the key has left (a float; 0.0 once its
    deadline passed, until the server deletes it), or None for a key
    without a deadline."""
    if "ttl_ms" not in resp:
        return None
    ms = resp["ttl_ms"]
    # At most an int64's (the server's Go int64): a longer int would not
    # convert to a float (OverflowError) after a persist had applied.
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= INT64_MAX:
        raise ProtocolError("ttl response has a ttl_ms that is not a count of milliseconds: %.200r" % (resp,))
    return ms / 1000.0


def compare_and_delete_request(key, old):
    """A delete that applies only if key holds old."""
    req = delete_request(key)
    req["if_value"] = check_str("old", old)
    return req


def get_request(key):
    return {"op": "get", "key": check_str("key", key)}


def delete_request(key):
    return {"op": "delete", "key": check_str("key", key)}


def keys_request(op, keys):
    """A bulk_get or bulk_delete of keys (a list or tuple of strings)."""
    if isinstance(keys, (str, bytes)):
        raise TypeError("%s takes a list of keys, not a %s" % (op, type(keys).__name__))
    keys = [check_str("key", k) for k in keys]
    if not keys:
        raise ValueError("%s needs at least one key" % op)
    return {"op": op, "keys": keys}


def values_of(resp, n):
    """A bulk_get's values: a list of n strings and Nones."""
    v = resp.get("values")
    if not isinstance(v, list) or len(v) != n or not all(x is None or isinstance(x, str) for x in v):
        raise ProtocolError("bulk_get of %d keys answered %.200r" % (n, resp))
    return v


def deleted_of(resp):
    """A bulk_delete's count, or None when the server no longer knows it."""
    d = resp.get("deleted")
    if d is None:
        return None
    if not isinstance(d, int) or isinstance(d, bool) or d < 0:
        raise ProtocolError("bulk_delete answered a bad count: %.200r" % (resp,))
    return d


def bulk_set_request(items):
    """items: (key, value) pairs, or a mapping of keys to values."""
    if isinstance(items, (str, bytes)):
        raise TypeError("BulkSet takes (key, value) pairs, not a %s" % type(items).__name__)
    if hasattr(items, "items") and callable(items.items):
        pairs = items.items()
    else:
        pairs = items
    try:
        iterator = iter(pairs)
    except TypeError:
        raise TypeError("BulkSet takes an iterable of (key, value) pairs, not %s" % type(items).__name__) from None
    out = []  # type: List[Dict[str, str]]
    for i, pair in enumerate(iterator):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError("BulkSet item %d must be a (key, value) pair, not %r" % (i, pair))
        out.append({"key": check_str("key of item %d" % i, pair[0]), "value": check_str("value of item %d" % i, pair[1])})
    return {"op": "bulk_set", "items": out}


def search_request(query, mode="all", limit=10):
    check_str("query", query)
    check_str("mode", mode)
    if mode not in SEARCH_MODES:
        raise ValueError("mode must be one of %s, not %r" % (", ".join(SEARCH_MODES), mode))
    return {"op": "search", "query": query, "mode": mode, "limit": check_positive_int("limit", limit)}


def search_similar_request(word, top_k=5):
    return {"op": "search_similar", "query": check_str("word", word), "top_k": check_positive_int("top_k", top_k)}


class ScanPage(collections.namedtuple("ScanPage", ("items", "more"))):
    """One page of a scan: ``items``, a list in key order of (key, value)
    tuples, or of keys (str) for a scan with ``keys_only``, empty when no
    key is left; ``more``, whether keys with the prefix are left after the
    page's last key (the next page's ``start_after``)."""

    __slots__ = ()


def check_bool(what, x):
    if not isinstance(x, bool):
        raise TypeError("%s must be a bool, not %s" % (what, type(x).__name__))
    return x


def scan_request(prefix="", start_after="", limit=None, keys_only=False, consistent=False, view=""):
    """A scan: prefix "" for every key, start_after "" for the first page,
    limit None for the server's default (100). consistent asks the first
    page of a walk to pin a view of the store for the next pages, which
    send the view it named (never both). The fields at their defaults are
    left out, as the server takes their absence."""
    req = {"op": "scan"}
    if check_str("prefix", prefix):
        req["prefix"] = prefix
    if check_str("start_after", start_after):
        req["start_after"] = start_after
    if limit is not None:
        req["limit"] = check_positive_int("limit", limit)
    if check_bool("keys_only", keys_only):
        req["keys_only"] = True
    if check_bool("consistent", consistent):
        req["consistent"] = True
    if check_str("view", view):
        if consistent:
            raise ValueError("a scan asks for consistent on its first page, or sends the view it named on the next ones, not both")
        req["view"] = view
    return req


def scan_page_of(resp, keys_only):
    """A scan's answer as a ScanPage."""
    more = resp.get("more")
    if not isinstance(more, bool):
        raise ProtocolError("scan response has no boolean \"more\": %.200r" % (resp,))
    if keys_only:
        keys = resp.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ProtocolError("scan response has no list of keys: %.200r" % (resp,))
        return ScanPage(keys, more)
    items = resp.get("items")
    if not isinstance(items, list):
        raise ProtocolError("scan response has no list of items: %.200r" % (resp,))
    out = []  # type: List[Tuple[str, str]]
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("key"), str) or not isinstance(it.get("value"), str):
            raise ProtocolError("scan item is not {\"key\",\"value\"}: %.200r" % (it,))
        out.append((it["key"], it["value"]))
    return ScanPage(out, more)


def scan_view_of(resp, req, more):
    """The view a consistent walk's next page sends, after a page (resp, an
    answer to req) that says more: the view the answer names, which a page
    of a view must name again. "" for a walk that is not consistent, and
    once no keys are left (the last page names none). A consistent page
    that leaves keys and names no view (or another) would break the walk's
    promise of one instant: a ProtocolError."""
    if not more or not (req.get("consistent") or req.get("view")):
        return ""
    view = resp.get("view")
    if not isinstance(view, str) or not view:
        raise ProtocolError("a consistent scan's page with keys left names no view: %.200r" % (resp,))
    sent = req.get("view")
    if sent and view != sent:
        raise ProtocolError("a page of the consistent scan's view %r names view %r" % (sent, view))
    return view


def encode(req, request_bytes_max):
    """Returns req as one request line, newline included.

    Raises ValueError for a string that cannot be UTF-8 (a lone surrogate),
    which the server would refuse, and for a line over request_bytes_max.
    """
    try:
        line = _encoder.encode(req).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("%s request: a string is not valid UTF-8 (%s)" % (req.get("op"), e.reason)) from None
    if len(line) > request_bytes_max:
        raise ValueError(
            "%s request is %d bytes, over the client's request_bytes_max of %d (the server's --max-request-bytes)"
            % (req.get("op"), len(line), request_bytes_max)
        )
    return line + b"\n"


def decode(line):
    """Returns the response object of one line, or raises ProtocolError."""
    try:
        resp = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError("undecodable response %.200r: %s" % (bytes(line), e)) from None
    except RecursionError:
        # Arrays or objects nested deeper than Python's stack: no server
        # answers so, and a bare RecursionError would escape a write that
        # was sent (its outcome unknown) and skip dropping the connection.
        raise ProtocolError("undecodable response %.200r: nested too deep" % (bytes(line),)) from None
    if not isinstance(resp, dict) or not isinstance(resp.get("ok"), bool):
        raise ProtocolError("response is not an object with a boolean \"ok\": %.200r" % (bytes(line),))
    return resp


def value_of(resp):
    """The value of a get that found its key."""
    v = resp.get("value")
    if not isinstance(v, str):
        raise ProtocolError("get response has no string value: %.200r" % (resp,))
    return v


def status_of(resp):
    st = resp.get("status")
    if not isinstance(st, dict):
        raise ProtocolError("status response has no status object: %.200r" % (resp,))
    return st


def hits_of(resp):
    """The hits of a search answer, best first, as (key, score) tuples."""
    hits = resp.get("hits")
    if not isinstance(hits, list):
        raise ProtocolError("search response has no list of hits: %.200r" % (resp,))
    out = []  # type: List[Tuple[str, float]]
    for h in hits:
        if not isinstance(h, dict) or not isinstance(h.get("key"), str):
            raise ProtocolError("search hit is not {\"key\",\"score\"}: %.200r" % (h,))
        score = h.get("score", 0.0)
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ProtocolError("search hit has a score that is not a number: %.200r" % (h,))
        try:
            score = float(score)
        except OverflowError:
            # An int of hundreds of digits: no float holds it.
            raise ProtocolError("search hit has a score out of a float's range: %.200r" % (h,)) from None
        out.append((h["key"], score))
    return out


def parse_stamp(stamp):
    """A mesh stamp "wall.logical.node" as a tuple that orders as stamps do,
    or None if it is not one."""
    if not isinstance(stamp, str):
        return None
    m = _STAMP_RE.fullmatch(stamp)
    if m is None:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)))


def split_addr(addr):
    """"host:port" (or "[v6]:port") as (host, port), or None."""
    if not isinstance(addr, str):
        return None
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not _PORT_RE.fullmatch(port):
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    p = int(port)
    if not 0 < p < 65536:
        return None
    return host, p


def join_addr(host, port):
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)
