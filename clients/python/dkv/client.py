"""KVClient: a client of one dkv server, over one pipelined TCP connection."""

import itertools
import os
import random
import socket
import ssl
import threading
import time
import weakref

from . import protocol
from .connection import Call, DialInterrupted, dial
from .errors import (
    ClientClosed,
    ConditionFailed,
    ConnectionFailed,
    ConnectionLost,
    DKVError,
    ProtocolError,
    RequestTimeout,
    ScanExpired,
    ServerError,
    TLSError,
    UnknownOutcome,
    response_error,
    server_error,
)

# The views of consistent walks left early whose close waits for the call
# in progress on their thread (see _Walks._scan_all): at most this many,
# the server keeps 64.
_VIEW_CLOSES_MAX = 64

# A call whose connection broke under a read, or before its request left,
# gets one more try on a new connection; a write that left gets none.
_ATTEMPTS_MAX = 2

# Backoff between dial attempts: doubling from the base up to the max, each
# wait drawn from its upper half, so that the clients of a restarted server
# do not redial in lockstep.
_DIAL_BACKOFF_BASE = 0.05
_DIAL_BACKOFF_MAX = 1.0


# The clients of this process, for the child of a fork: its copies of them
# must not use their parent's connections (the two processes would send on
# one stream and read each other's answers) nor, for a ClusterKVClient, its
# session (the cluster would take the child's writes and the parent's for
# retries of one another's, answer one with the other's outcome and apply
# only the first). Found by review: a ClusterKVClient made before a fork
# (multiprocessing, a pre-forking server) lost the parent's next write.
_clients = weakref.WeakSet()


def _after_fork_in_child():
    for c in list(_clients):
        c._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_timeout(what, t):
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (what, type(t).__name__))
    if not t > 0:
        raise ValueError("%s must be positive, not %r" % (what, t))
    return float(t)


def _unknown(op, err):
    """The UnknownOutcome of a write of op that was sent and got err
    instead of an answer."""
    e = UnknownOutcome(
        "%s: outcome unknown, the write may or may not have been applied (it is not retried): %s" % (op, err)
    )
    e.op = op
    e.timed_out = isinstance(err, RequestTimeout)
    e.__cause__ = err
    return e


# PASSWORD_BYTES_MAX is the longest password a server takes (its
# --auth-file's line, core.AuthSecretBytesMax): a longer one can never be
# right, and is refused when the client is made.
PASSWORD_BYTES_MAX = 512


def _check_credentials(password, ssl_context, server_hostname):
    """Checks the password and TLS arguments that KVClient and
    ClusterKVClient share."""
    if password is not None and (not isinstance(password, str) or not password):
        raise TypeError("password must be a non-empty str or None, not %r" % (password,))
    if password is not None and len(password.encode("utf-8")) > PASSWORD_BYTES_MAX:
        raise ValueError(
            "password is %d bytes in UTF-8; a server's is at most %d (its --auth-file line)"
            % (len(password.encode("utf-8")), PASSWORD_BYTES_MAX)
        )
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError("ssl_context must be an ssl.SSLContext or None, not %s" % type(ssl_context).__name__)
    if server_hostname is not None:
        if not isinstance(server_hostname, str) or not server_hostname:
            raise TypeError("server_hostname must be a non-empty str or None, not %r" % (server_hostname,))
        if ssl_context is None:
            raise ValueError("server_hostname is for TLS: give ssl_context too")


def _none(resp):
    return None


def _true(resp):
    return True


def _get_value(resp):
    return protocol.value_of(resp)


class _Calls(object):
    """The seed's calls, shared by KVClient, Pipeline and ClusterKVClient:
    each builds its op and hands it to the class's _submit (send and wait,
    queue, or send to the leader with a session)."""

    def Set(self, key, value, ttl_ms=None):
        """Stores value under key. Returns once the write is durable (on a
        cluster node: committed on a majority).

        With ttl_ms (an int, 1..ten years of milliseconds), the key
        expires: the server (a cluster's leader) deletes it once ttl_ms
        have passed on its calendar clock; reads see it until then. A Set
        without ttl_ms, a BulkSet or a Delete replaces the deadline. A
        mesh refuses ttl_ms (NotImplementedByServer)."""
        return self._submit(_set(key, value, ttl_ms))

    def Get(self, key):
        """The value of key, or None if it is missing.

        None rather than an exception: the seed's quick start prints
        ``c.Get('hello')`` with no try around it, and the protocol calls
        not_found an answer, not a failure. An empty value is "", never
        None.
        """
        return self._submit(_get(key))

    def Delete(self, key):
        """Removes key. Deleting a missing key succeeds."""
        return self._submit(_delete(key))

    def TTL(self, key):
        """The seconds key has left before the server deletes it (a float;
        0.0 once its deadline passed, until the server has deleted it), or
        None for a key without a deadline. A missing key raises NotFound;
        a mesh refuses it (NotImplementedByServer)."""
        return self._submit(_ttl(key))

    def Expire(self, key, ttl_ms):
        """Gives key, which must exist, a deadline ttl_ms from now (an int,
        1..ten years of milliseconds, as Set's), in place of any it had;
        its value stays. Returns True, or None if the key is missing (as
        Get: not_found is an answer), and then nothing is written. A
        write: never sent twice by a KVClient, retried in its session by a
        ClusterKVClient. A mesh refuses it (NotImplementedByServer)."""
        return self._submit(_expire(key, ttl_ms))

    def Persist(self, key):
        """Takes key's deadline away, so that it stays until written or
        deleted. Returns True if it had one, False if not, None if the key
        is missing (as Get), and then nothing is written. A write, as
        Expire. A cluster's answer to the retry of a persist that had
        already applied cannot say (the deadline it took away is gone):
        False then. A mesh refuses it (NotImplementedByServer)."""
        return self._submit(_persist(key))

    def Incr(self, key, delta=1):
        """Adds delta (an int in the 64-bit signed range; negative to
        subtract, 0 allowed) to the integer key holds, a missing key
        counting as 0, and returns the new value, an int; the key keeps its
        deadline. A key holding anything but an integer as an incr writes
        it raises NotInteger, a sum outside the 64-bit range Overflow, and
        nothing is written then.

        Not idempotent: a KVClient never sends it twice (UnknownOutcome
        when the answer is lost: the counter may or may not have moved),
        and a ClusterKVClient retries it in its session, which the cluster
        applies once, answering a retry with the first attempt's value or
        refusal. A single node keeps no sessions: use KVClient there. A
        mesh refuses it (NotImplementedByServer)."""
        return self._submit(_incr(key, delta))

    def SetIfAbsent(self, key, value, ttl_ms=None):
        """Stores value under key only if key does not exist. Returns True
        if it did, False if the key existed (nothing was written). The
        check and the write are one step: of many clients racing to create
        a key, exactly one gets True. A single node and a cluster take it;
        a mesh refuses it (NotImplementedByServer).

        With ttl_ms (as Set's), the key expires: a lease that frees
        itself. Renew it with CompareAndSwap(key, value, value,
        ttl_ms=...), release it with CompareAndDelete(key, value)."""
        return self._submit(_conditional(protocol.set_if_absent_request(key, value, ttl_ms)))

    def SetIfExists(self, key, value, ttl_ms=None):
        """Stores value under key only if key exists. Returns True if it
        did, False if the key did not exist (nothing was written). With
        ttl_ms, as Set's, the key then expires."""
        return self._submit(_conditional(protocol.set_if_exists_request(key, value, ttl_ms)))

    def CompareAndSwap(self, key, old, new, ttl_ms=None):
        """Stores new under key only if key holds old. Returns True if it
        did, False if the key held another value or did not exist (nothing
        was written). With ttl_ms, as Set's, the key then expires: the
        renewal of a lease taken with SetIfAbsent, which must not extend
        one that expired and was taken by another."""
        return self._submit(_conditional(protocol.compare_and_swap_request(key, old, new, ttl_ms)))

    def CompareAndDelete(self, key, old):
        """Deletes key only if it holds old. Returns True if it did, False
        if the key held another value or did not exist: the release of a
        lock taken with SetIfAbsent, which must not delete a lock that
        another has taken since."""
        return self._submit(_conditional(protocol.compare_and_delete_request(key, old)))

    def BulkSet(self, items):
        """Stores every (key, value) pair (or every item of a dict)
        atomically: after any crash the server has all of them or none."""
        return self._submit(_bulk_set(items))

    def BulkGet(self, keys):
        """The values of keys, read at one instant, as a list in the same
        order: None for a missing key."""
        return self._submit(_bulk_get(keys))

    def BulkDelete(self, keys):
        """Deletes every key atomically; returns how many existed (a key
        named twice counts once), or None when a cluster no longer knows
        (the retry of a delete that had already applied)."""
        return self._submit(_bulk_delete(keys))

    def Search(self, query, mode="all", limit=10):
        """Full-text search over values: up to limit (key, score) tuples,
        best first; mode "all" wants every word, "any" one of them. Raises
        IndexesDisabled on a server without --enable-indexes."""
        return self._submit(_search(query, mode, limit))

    def SearchSimilar(self, word, top_k=5):
        """The top_k keys whose values hold words most like word, as (key,
        score) tuples, best first. Raises IndexesDisabled on a server
        without --enable-indexes."""
        return self._submit(_search_similar(word, top_k))

    def Scan(self, prefix="", start_after="", limit=None, keys_only=False):
        """One page of the keys that start with prefix ("" for every key)
        and come after start_after ("" for the first page), in key order
        (the byte order of their UTF-8), read at one instant.

        Returns a ScanPage(items, more): items, a list of (key, value)
        tuples, or of keys with keys_only=True; more, whether keys are left
        after the page's last key, which the next page's start_after is.
        limit caps the page (None: the server's default, 100; at most its
        --max-bulk-entries, or TooLarge); a page may hold fewer where its
        bytes would pass the server's --max-request-bytes, but holds a key
        whenever one is left. A page over the client's response_bytes_max
        raises ResponseTooLarge: ask for a smaller limit. ScanAll walks
        every page."""
        return self._submit(_scan(prefix, start_after, limit, keys_only))

    def ping(self):
        """Checks that the server answers."""
        return self._submit(_ping())

    def status(self):
        """The server's description of itself, a dict (PROTOCOL.md, status)."""
        return self._submit(_status())

    set = Set
    get = Get
    delete = Delete
    ttl = TTL
    expire = Expire
    persist = Persist
    incr = Incr
    set_if_absent = SetIfAbsent
    set_if_exists = SetIfExists
    compare_and_swap = CompareAndSwap
    compare_and_delete = CompareAndDelete
    bulk_set = BulkSet
    bulk_get = BulkGet
    bulk_delete = BulkDelete
    search = Search
    search_similar = SearchSimilar
    scan = Scan
    Ping = ping
    Status = status


class _Walks(object):
    """Calls made of many calls, one after another: KVClient's and
    ClusterKVClient's, not a Pipeline's (whose calls are all queued before
    any answer)."""

    def ScanAll(self, prefix="", page_size=None, consistent=False):
        """Every (key, value) whose key starts with prefix, in key order: a
        generator that reads a page of page_size keys (None: the server's
        default, 100) whenever it runs out, each after the last key of the
        one before, until a page says no more are left.

        Each page is read at its own instant: a key written or deleted
        during the walk may be seen or not, but one that exists throughout
        is seen exactly once. With consistent=True every page is read at
        the first page's instant, a point-in-time copy however the keys
        change meanwhile: the first page asks the server to pin a view of
        its store, and the next pages read that view. A view lasts while
        pages keep coming; one the server no longer keeps (a minute
        unused, ten minutes open, more than 64 of them, a restart, a new
        cluster leader) ends the walk with ScanExpired: start it again.

        An error (the server's, the connection's) ends the walk at the page
        that met it, raised from the generator; a page that says more but
        holds no keys, or does not go past the last, or a consistent page
        that says more and names no view, is a ProtocolError rather than a
        walk without end or of many instants. The arguments are checked at
        the call, before anything is sent."""
        protocol.scan_request(prefix, "", page_size, consistent=consistent)  # TypeError, ValueError now
        return self._scan_all(prefix, page_size, consistent)

    def _scan_all(self, prefix, page_size, consistent):
        after = ""
        view = ""  # a consistent walk's, named by its first page
        first = True
        try:
            while True:
                try:
                    page, view = self._submit(_walk_page(prefix, after, page_size, consistent and first, view))
                except ScanExpired:
                    view = ""  # gone: nothing to close
                    raise
                first = False
                for kv in page.items:
                    yield kv
                if not page.more:
                    view = ""  # the last page dropped it
                    return
                if not page.items:
                    raise ProtocolError("scan of prefix %r after %r: an empty page that says more" % (prefix, after))
                last = page.items[-1][0]
                if last <= after:
                    # Not past the previous page: the walk would not end.
                    raise ProtocolError("scan of prefix %r after %r: a page that ends at %r, not past it" % (prefix, after, last))
                after = last
        finally:
            if view:
                # The walk ended before its last page (the caller broke
                # out, an error): the server drops the view now rather
                # than keep it a minute, one of the 64 it keeps (as the
                # Go client; found by review). Best effort. Unless a call
                # of this very thread holds the client: a garbage
                # collection, which may run at any allocation, collected
                # the walk inside that call. The close would wait for the
                # call, and the call for the close, for the whole timeout
                # (found by review); it goes out once the call is done.
                if self._lock.locked() and self._owner == threading.get_ident():
                    if len(self._view_closes) < _VIEW_CLOSES_MAX:
                        self._view_closes.append(view)
                else:
                    self._close_view(view)

    def _close_view(self, view):
        try:
            self._submit(_Op({"op": "scan", "view": view, "close": True}, lambda resp: None))
        except (DKVError, OSError):
            pass

    def _close_views(self):
        """Closes the views whose walks ended inside a call (above), after
        it, with the client's lock no longer held."""
        while self._view_closes:
            try:
                view = self._view_closes.pop()
            except IndexError:  # another thread took the last
                return
            self._close_view(view)

    scan_all = ScanAll


class _Op(object):
    """How a request's successful response becomes the caller's result."""

    __slots__ = ("req", "read", "stamped", "result", "missing_ok", "conditional")

    def __init__(self, req, result, missing_ok=False, conditional=False):
        self.req = req
        self.read = req["op"] in protocol.READ_OPS
        # A write a mesh takes: it carries the client's stamp as "after".
        self.stamped = not self.read and req["op"] not in protocol.UNSTAMPED_WRITE_OPS
        self.result = result
        # A get, an expire, a persist: not_found is an answer (None), not
        # a failure.
        self.missing_ok = missing_ok
        # A conditional write of SetIfAbsent and its kin: condition_failed
        # is an answer (False), not a failure.
        self.conditional = conditional


def _set(key, value, ttl_ms=None):
    return _Op(protocol.set_request(key, value, ttl_ms), _none)


def _ttl(key):
    return _Op(protocol.ttl_request(key), protocol.ttl_of)


def _expire(key, ttl_ms):
    return _Op(protocol.expire_request(key, ttl_ms), _true, missing_ok=True)


def _persist(key):
    return _Op(protocol.persist_request(key), protocol.persist_of, missing_ok=True)


def _incr(key, delta):
    return _Op(protocol.incr_request(key, delta), protocol.incr_of)


def _conditional(req):
    """SetIfAbsent, SetIfExists, CompareAndSwap, CompareAndDelete: True
    when the write applied, False when its condition did not hold."""
    return _Op(req, _true, conditional=True)


def _get(key):
    return _Op(protocol.get_request(key), _get_value, missing_ok=True)


def _delete(key):
    return _Op(protocol.delete_request(key), _none)


def _bulk_set(items):
    return _Op(protocol.bulk_set_request(items), _none)


def _bulk_get(keys):
    req = protocol.keys_request("bulk_get", keys)
    n = len(req["keys"])
    return _Op(req, lambda resp: protocol.values_of(resp, n))


def _bulk_delete(keys):
    return _Op(protocol.keys_request("bulk_delete", keys), protocol.deleted_of)


def _ping():
    return _Op({"op": "ping"}, _none)


def _status():
    return _Op({"op": "status"}, protocol.status_of)


def _search(query, mode, limit):
    return _Op(protocol.search_request(query, mode, limit), protocol.hits_of)


def _search_similar(word, top_k):
    return _Op(protocol.search_similar_request(word, top_k), protocol.hits_of)


def _scan(prefix, start_after, limit, keys_only):
    return _Op(protocol.scan_request(prefix, start_after, limit, keys_only), lambda resp: protocol.scan_page_of(resp, keys_only))


def _walk_page(prefix, start_after, limit, consistent, view):
    """A page of ScanAll's walk: its ScanPage, and the view its next page
    sends ("" unless the walk is consistent and keys are left)."""
    req = protocol.scan_request(prefix, start_after, limit, consistent=consistent, view=view)

    def result(resp):
        page = protocol.scan_page_of(resp, False)
        return page, protocol.scan_view_of(resp, req, page.more)

    return _Op(req, result)


def _finish(op, resp):
    """The caller's result of a response to op, or raises its error."""
    if resp["ok"]:
        return op.result(resp)
    err = response_error(resp, op.req["op"])
    if op.missing_ok and err.code == "not_found":
        return None
    if op.conditional and isinstance(err, ConditionFailed):
        return False
    if err.code == "internal" and not op.read:
        # A bug in the server, which may have struck after the write
        # applied (PROTOCOL.md): unknown, as ClusterKVClient reports it
        # (found by review).
        raise _unknown(op.req["op"], err)
    raise err


class KVClient(_Calls, _Walks):
    """A client of one dkv server (a single node, or one node of a mesh).

    ``KVClient(host="127.0.0.1", port=9999, timeout=10.0)`` connects at
    once (retrying the dial ``dial_retries`` times with backoff), so a wrong
    address fails here; ``connect=False`` defers that to the first call.
    ``password`` is the server's (its --auth-file), sent first on every
    connection; a wrong one raises AuthFailed.

    ``ssl_context`` (an ssl.SSLContext; None: plain TCP) makes every
    connection TLS, for a server started with --tls-cert, e.g.
    ``ssl.create_default_context(cafile="certs/ca.pem")``, plus
    ``load_cert_chain(cert, key)`` for one with --tls-client-ca. The
    server's certificate is checked against ``host``, or against
    ``server_hostname`` when given (also sent as SNI).
    ``connect_timeout`` bounds each attempt to open a connection, all of
    it: the TCP connect (over every address of the host), the TLS
    handshake and the password's answer. A certificate refused on either side,
    or a server without TLS, raises TLSError at once, without retries; a
    client without TLS at a TLS port gets TLSRequired.

    Calls: ``Set(key, value, ttl_ms=None)`` (with ttl_ms, the key
    expires), ``Get(key)`` (None for a missing key), ``TTL(key)``
    (seconds left, None without a deadline), ``Expire(key, ttl_ms)``
    (True; None for a missing key) and ``Persist(key)`` (whether a
    deadline was taken away; None for a missing key), ``Incr(key,
    delta=1)`` (the counter's new value, an int), ``Delete(key)``, the
    conditional writes ``SetIfAbsent(key, value, ttl_ms=None)``,
    ``SetIfExists(key, value, ttl_ms=None)``, ``CompareAndSwap(key, old,
    new, ttl_ms=None)`` and ``CompareAndDelete(key, old)`` (True if
    applied, False if the condition did not hold), ``BulkSet([(key,
    value), ...])`` (atomic),
    ``Search(query, mode="all", limit=10)`` and ``SearchSimilar(word,
    top_k=5)`` (lists of (key, score), best first), ``Scan(prefix="",
    start_after="", limit=None, keys_only=False)`` (a ScanPage: one page
    of keys in order) and ``ScanAll(prefix="", page_size=None,
    consistent=False)`` (every (key, value) with the prefix, page by page;
    consistent=True: all of one instant), ``ping()``,
    ``status()`` (a dict), ``request(dict)`` (a raw request), and
    ``pipeline()`` for a batch sent back to back. The snake_case names
    (``set``, ``get``, ``bulk_set``, ...) are the same methods.

    ``timeout`` bounds every call from start to end: waiting for another
    thread's call, connecting, sending and reading. No call takes longer,
    whatever the server does. A pipeline's batch gets one timeout.

    Errors (see dkv.errors): a ServerError subclass carrying the server's
    code; UnknownOutcome for a write that was sent without an answer
    (never sent again by this client); ConnectionFailed or RequestTimeout
    when nothing was applied or the call was a read. A read whose
    connection broke, and a write that surely never left, are tried once
    more on a new connection.

    A KVClient may be shared by threads; their calls take turns on the one
    connection. In the child of a fork, its copy dials a connection of its
    own. Use it as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        host="127.0.0.1",
        port=9999,
        timeout=10.0,
        connect=True,
        connect_timeout=5.0,
        dial_retries=3,
        request_bytes_max=protocol.REQUEST_BYTES_MAX_DEFAULT,
        response_bytes_max=protocol.RESPONSE_BYTES_MAX_DEFAULT,
        password=None,
        ssl_context=None,
        server_hostname=None,
    ):
        if not isinstance(host, str) or not host:
            raise TypeError("host must be a non-empty str, not %r" % (host,))
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("port must be an int in 1..65535, not %r" % (port,))
        if isinstance(dial_retries, bool) or not isinstance(dial_retries, int) or dial_retries < 0:
            raise ValueError("dial_retries must be an int >= 0, not %r" % (dial_retries,))
        self.host = host
        self.port = port
        self.addr = protocol.join_addr(host, port)
        self.timeout = _check_timeout("timeout", timeout)
        self.connect_timeout = _check_timeout("connect_timeout", connect_timeout)
        self.dial_retries = dial_retries
        self.request_bytes_max = protocol.check_positive_int("request_bytes_max", request_bytes_max)
        self.response_bytes_max = protocol.check_positive_int("response_bytes_max", response_bytes_max)
        _check_credentials(password, ssl_context, server_hostname)
        self.password = password
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        # Ids are unique for the client's life, across reconnects, so a
        # stale echo can never look current.
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._conn = None
        self._dial_wake = None  # a dial's socket that close() wakes it with
        self._owner = None  # the thread that last took _lock
        self._view_closes = []  # see _Walks._scan_all
        self._closed = False
        # The highest mesh stamp answered to this client: its writes carry
        # it as "after", so each wins over every write it saw (PROTOCOL.md,
        # "Mesh writes"). None until a mesh node answers.
        self._stamp = None
        self._stamp_text = ""
        _clients.add(self)
        if connect:
            deadline = time.monotonic() + self.timeout
            self._acquire(deadline)
            try:
                self._connection(deadline)
            finally:
                self._lock.release()

    # The seed's API is _Calls'; each call goes to _do.

    def _submit(self, op):
        return self._do(op)

    def request(self, req):
        """Sends a raw request (a dict without "id"; the client adds its
        own) and returns the response dict; an ok:false response raises its
        ServerError (a conditional write's condition_failed: ConditionFailed,
        with the key's value as ``current``). Only get, bulk_get, ttl, ping,
        status, the searches and scan count as reads for retrying; any other
        op is a write, never sent twice."""
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            raise TypeError("request takes a dict with a str \"op\"")
        req = dict(req)
        req.pop("id", None)
        op = _Op(req, lambda resp: resp)
        return self._do(op)

    def pipeline(self):
        """A Pipeline: queue calls, then ``execute()`` sends them back to
        back and returns their results in order."""
        return Pipeline(self)

    # Mesh stamps.

    def stamp(self):
        """The highest stamp a mesh node answered this client ("" before
        any): pass it to another client's observe_stamp so that its writes
        win over what this one saw."""
        return self._stamp_text

    def observe_stamp(self, stamp):
        """Makes this client's later writes win over the write that stamp
        (another client's stamp(), or a response's) belongs to."""
        st = protocol.parse_stamp(stamp)
        if st is None:
            raise ValueError("%r is not a stamp (\"wall.logical.node\")" % (stamp,))
        self._observe(st, stamp)

    def _observe(self, st, text):
        if self._stamp is None or st > self._stamp:
            self._stamp, self._stamp_text = st, text

    def _observe_resp(self, resp):
        text = resp.get("stamp")
        if text:
            st = protocol.parse_stamp(text)
            if st is not None:
                self._observe(st, text)

    # Lifetime.

    def close(self):
        """Closes the connection. A call in progress in another thread ends
        (its write, if sent, with UnknownOutcome; else with ClientClosed,
        and nothing of it goes out after close() returns), and later calls
        raise ClientClosed."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            self._owner = threading.get_ident()
            try:
                self._drop()
            finally:
                self._lock.release()
        else:
            # Another thread's call holds the connection, or is dialling
            # one: wake it, and it drops the connection itself.
            w = self._dial_wake
            if w is not None:
                try:
                    w.send(b"x")
                except OSError:
                    pass  # the dial ended meanwhile
            c = self._conn
            if c is not None:
                try:
                    # socket.socket's own shutdown, also for a TLS socket:
                    # SSLSocket.shutdown would drop its SSL object under
                    # the other thread's read.
                    socket.socket.shutdown(c.sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "KVClient(%s)" % self.addr

    # Internals.

    def _after_fork(self):
        """In the child of a fork: a lock of its own (another thread of the
        parent may have held this one, which no thread of the child would
        release), and the next call dials a connection of its own. The
        parent's is closed only here, in the child: closing a descriptor
        leaves the parent's open, and sends nothing, TLS's close_notify
        included."""
        self._lock = threading.Lock()
        self._dial_wake = None  # the parent's dial's: its thread is not here
        self._view_closes = []  # the parent's to close
        c = self._conn
        self._conn = None
        if c is not None:
            c.close()

    def _acquire(self, deadline):
        if self._closed:
            raise ClientClosed("the client of %s is closed" % self.addr)
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise RequestTimeout("the timeout passed while another call on %s was in progress" % self.addr)
        self._owner = threading.get_ident()
        if self._closed:
            self._lock.release()
            raise ClientClosed("the client of %s is closed" % self.addr)

    def _release(self):
        """Ends a call: releases the lock, and closes the connection if
        close() came during the call. close() from another thread can only
        shut a held connection down, so that the call ends; it was left
        open, its descriptor kept until the client was collected, when the
        call ended well (found by review)."""
        if self._closed:
            self._drop()
        self._lock.release()

    def _drop(self):
        c = self._conn
        self._conn = None
        if c is not None:
            c.close()

    def _connection(self, deadline):
        """A usable connection, redialled if the last broke. Called with the
        lock held; raises ConnectionFailed, RequestTimeout, TLSError or the
        server's refusal (too_many_connections), none of which sent
        anything."""
        if self._closed:
            # close() from another thread broke this call's connection:
            # the call ends, rather than dialling again for a client that
            # is closed (a read's retry, or a write's that had not left,
            # went out on a new connection, left open).
            self._drop()
            raise ClientClosed("the client of %s is closed" % self.addr)
        c = self._conn
        if c is not None:
            err = c.idle_error()
            if err is None:
                return c
            self._drop()
            if isinstance(err, (ServerError, TLSError)):
                raise err
        backoff = _DIAL_BACKOFF_BASE
        last = None
        for attempt in range(self.dial_retries + 1):
            if attempt > 0:
                wait = backoff / 2 + random.random() * backoff / 2
                backoff = min(2 * backoff, _DIAL_BACKOFF_MAX)
                if time.monotonic() + wait >= deadline:
                    raise RequestTimeout("the timeout passed while redialling %s (last error: %s)" % (self.addr, last))
                time.sleep(wait)
            # A socket that close() from another thread makes readable, to
            # end the dial at once (the connect or the handshake), as the
            # Go client's Close ends its dial: the call waited out its
            # connect_timeout (found by review). Set before _closed is
            # looked at, which close() sets before it looks at this.
            wake_r, wake_w = socket.socketpair()
            self._dial_wake = wake_w
            try:
                if self._closed:
                    raise ClientClosed("the client of %s is closed" % self.addr)
                conn, ddeadline = dial(
                    self.host,
                    self.port,
                    deadline,
                    self.connect_timeout,
                    self.response_bytes_max,
                    self.ssl_context,
                    self.server_hostname,
                    wake_r,
                )
            except ConnectionFailed as e:
                last = e
                continue
            except DialInterrupted:
                raise ClientClosed("the client of %s is closed" % self.addr) from None
            finally:
                self._dial_wake = None
                wake_r.close()
                wake_w.close()
            # Held before the password goes out, so that close() from
            # another thread can break it; and closed here if close() came
            # meanwhile, which found no connection to break: the call's
            # request must not go out after close() returned (found by
            # review: a Set went out and applied once its dial was done).
            self._conn = conn
            if self._closed:
                # close() came as the dial ended, with neither it nor the
                # connection to wake: no password goes out either.
                self._drop()
                raise ClientClosed("the client of %s is closed" % self.addr)
            try:
                self._authenticate(conn, deadline, ddeadline)
            except DKVError as e:
                self._drop()
                if self._closed:
                    raise ClientClosed("the client of %s is closed" % self.addr) from None
                if isinstance(e, ConnectionFailed):
                    # Unanswered within the dial's connect_timeout, or the
                    # connection broke: a failed dial, tried again as one.
                    last = e
                    continue
                raise
            if self._closed:
                self._drop()
                raise ClientClosed("the client of %s is closed" % self.addr)
            return conn
        raise ConnectionFailed("%s (%d attempts)" % (last, self.dial_retries + 1))

    def _authenticate(self, conn, deadline, ddeadline):
        """Sends the password, if any, on conn, a new connection; closes it
        and raises the server's refusal (AuthFailed) or the connection's
        failure. Its answer is part of the dial, bounded by the dial's
        connect_timeout (ddeadline, within the call's deadline), as the Go
        client bounds it by its dial timeout: a server that takes
        connections and answers nothing (a stopped process, whose kernel
        still accepts them) held a dial for the call's whole timeout,
        without a redial (found by review). No answer in time is
        ConnectionFailed, or RequestTimeout once the deadline passed."""
        if self.password is None:
            return
        call = self._encode({"op": "auth", "password": self.password})
        conn.exchange([call], ddeadline)
        err = call.err
        if isinstance(err, RequestTimeout) and time.monotonic() < deadline:
            err = ConnectionFailed(
                "no answer to the password from %s within the connect timeout of %.3gs" % (self.addr, self.connect_timeout)
            )
        if err is None and not call.resp.get("ok"):
            err = server_error(call.resp.get("error"), op="auth")
        if err is not None:
            conn.close()
            raise err

    def _encode(self, req):
        id_ = next(self._ids)
        req["id"] = id_
        return Call(req["op"], id_, protocol.encode(req, self.request_bytes_max))

    def _attempt(self, req, deadline):
        """One try at req: (response, None) or (None, error), and whether
        the request may have reached the server. Called with the lock
        held."""
        call = self._encode(req)
        try:
            conn = self._connection(deadline)
        except DKVError as e:
            return None, e, False
        conn.exchange([call], deadline)
        if conn.closed:
            self._drop()
        if call.err is not None:
            return None, call.err, call.sent
        self._observe_resp(call.resp)
        return call.resp, None, True

    def _do(self, op):
        deadline = time.monotonic() + self.timeout
        req = op.req
        if op.stamped and self._stamp is not None and "after" not in req:
            req["after"] = self._stamp_text
        self._acquire(deadline)
        try:
            for attempt in range(1, _ATTEMPTS_MAX + 1):
                resp, err, sent = self._attempt(req, deadline)
                if err is None:
                    break
                if isinstance(err, ConnectionLost) and (op.read or not sent) and attempt < _ATTEMPTS_MAX:
                    continue
                if sent and not op.read:
                    raise _unknown(req["op"], err)
                raise err
        finally:
            self._release()
            if self._view_closes:
                self._close_views()
        return _finish(op, resp)

    def _execute(self, ops, calls):
        """Sends the calls of ops back to back on one connection and
        returns one result or exception per op, in order. Nothing is
        retried: a read whose answer was lost gets its ConnectionLost, a
        write that was sent UnknownOutcome."""
        if not ops:
            return []
        deadline = time.monotonic() + self.timeout
        self._acquire(deadline)
        try:
            try:
                conn = self._connection(deadline)
            except DKVError as e:
                return [e] * len(ops)
            conn.exchange(calls, deadline)
            if conn.closed:
                self._drop()
        finally:
            self._release()
            if self._view_closes:
                self._close_views()
        out = []
        for op, call in zip(ops, calls):
            if call.err is not None:
                if call.sent and not op.read:
                    out.append(_unknown(op.req["op"], call.err))
                else:
                    out.append(call.err)
                continue
            self._observe_resp(call.resp)
            try:
                out.append(_finish(op, call.resp))
            except DKVError as e:
                out.append(e)
        return out


class Pipeline(_Calls):
    """A batch of calls sent back to back on one connection, without waiting
    for each answer: many calls per round trip.

        p = client.pipeline()
        p.Set("a", "1").Set("b", "2")
        p.Get("a")
        results = p.execute()          # [None, None, "1"]

    or, executing on a clean exit of the block::

        with client.pipeline() as p:
            p.Set("a", "1")
            p.Get("a")
        p.results                      # [None, "1"]

    Arguments are checked (and requests encoded) as calls are queued, so a
    TypeError names the call that caused it. ``execute()`` returns each
    call's result in order, as the single calls would (Get: the value or
    None). With ``raise_on_error=True`` (the default) it raises the first
    failure once every answer is in; ``raise_on_error=False`` puts each
    failure, an exception instance, in its place in the list instead, and
    ``results`` always holds that list. On one connection requests take
    effect in the order they were queued. Nothing in a pipeline is retried:
    a write whose answer was lost is UnknownOutcome, a read ConnectionLost.
    The client's timeout bounds the whole batch.
    """

    def __init__(self, client):
        self._client = client
        self._ops = []
        self._calls = []
        self.results = None

    def _add(self, op):
        if op.stamped and self._client._stamp is not None and "after" not in op.req:
            op.req["after"] = self._client._stamp_text
        # Encode now, so that a bad string fails at its call.
        self._calls.append(self._client._encode(op.req))
        self._ops.append(op)
        return self

    _submit = _add

    def __len__(self):
        return len(self._ops)

    def execute(self, raise_on_error=True):
        ops, calls = self._ops, self._calls
        self._ops, self._calls = [], []
        self.results = self._client._execute(ops, calls)
        if raise_on_error:
            for r in self.results:
                if isinstance(r, BaseException):
                    raise r
        return self.results

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self._ops:
            self.execute()
        return False
