"""ClusterKVClient: a client of a dkv Raft cluster, with exactly-once writes."""

import random
import secrets
import threading
import time

from . import protocol
from .client import (
    KVClient,
    _clients,
    _Calls,
    _Walks,
    _check_timeout,
    _check_credentials,
    _finish,
    _unknown,
    _Op,
)
from .errors import (
    AuthFailed,
    ClientClosed,
    ConnectionFailed,
    DKVError,
    ProtocolError,
    RequestTimeout,
    ResponseTooLarge,
    ServerError,
    TLSError,
    TooManyConnections,
    UnknownOutcome,
    response_error,
)

# The pause before a retry doubles from the base to the max, each wait drawn
# from its upper half so that the clients of a failed leader do not come
# back in step. The base is short: a failover's first retry goes to another
# node.
_RETRY_BACKOFF_BASE = 0.010
_RETRY_BACKOFF_MAX = 0.250

# Leader addresses learned from redirects that are not among those given (a
# node may name itself differently): at most this many. A redirect beyond
# it is treated as naming no leader.
_LEARNED_ADDRS_MAX = 8

# The addresses given: at most this many.
_ADDRS_MAX = 64


def new_client_id():
    """A random session id in 1..2^53-1, from the operating system's
    generator: two clients started at once must not share a session."""
    while True:
        i = secrets.randbits(53)
        if i != 0:
            return i


class Session(object):
    """Numbers a client's writes 1, 2, ... and knows which are still in
    progress. Writes begin in sequence order but may end in any order; the
    lowest one in progress is sent as ``acked``: every write below it was
    answered or given up on and is never sent again, so the cluster may
    forget it."""

    def __init__(self):
        self.next = 1  # the seq of the next write to begin
        self.low = 1  # the lowest seq begun and not ended; next if none
        self.ended = set()  # seqs above low that have ended

    def begin(self):
        seq = self.next
        self.next += 1
        return seq

    def end(self, seq):
        if not self.low <= seq < self.next:
            raise AssertionError("write %d ended, but only %d..%d are in progress" % (seq, self.low, self.next - 1))
        if seq != self.low:
            if seq in self.ended:
                raise AssertionError("write %d ended twice" % seq)
            self.ended.add(seq)
            return
        self.low += 1
        while self.low in self.ended:
            self.ended.discard(self.low)
            self.low += 1

    def acked(self):
        return self.low


class ClusterKVClient(_Calls, _Walks):
    """A client of a dkv cluster: the calls of KVClient (Set, Get, TTL,
    Expire, Persist, Incr, Delete, SetIfAbsent, SetIfExists,
    CompareAndSwap, CompareAndDelete, BulkSet, BulkGet, BulkDelete, Search,
    SearchSimilar, Scan, ScanAll, ping, status, request), each sent to the
    node believed to lead (a read, such as TTL or each page of a scan, is
    linearizable there). The pages of a ScanAll with consistent=True read
    the view the leader pinned at the first page; a follower without it
    redirects to the leader, and a new leader has none: ScanExpired, start
    the walk again.

    ``ClusterKVClient(kv_ports=[P0, P1, P2])`` as the seed writes it, on
    ``host`` (127.0.0.1); or ``addrs=["host:port", ...]``. It connects to
    the first node that accepts, now (``connect=False``: at the first call).

    Finding the leader. A call goes to the last node known to lead or, when
    none is known, to the given nodes in turn. A not_leader answer naming
    the leader sends the call there at once; a leader's disk_full or
    io_error (refused before it was proposed, by a leader that hands the
    office to a healthy node) sends it to that node again after a backoff;
    one naming none, unavailable, a node that cannot be reached, refused the connection
    (too_many_connections: on connect, or as the answer to a request it
    did not read) or does not answer within
    ``attempt_timeout`` sends it to the next node after a backoff (10 ms
    doubling to 250 ms). A call makes at most ``max_attempts`` attempts,
    all within ``timeout``.

    Exactly-once writes. The client is one session of the cluster: a random
    client id, and a sequence number per write. Every attempt of a write
    carries the same id and number, so the cluster applies it at most once
    however many nodes it reached, and answers a retry with the first
    outcome. A write that gives up after an attempt whose outcome is unknown
    raises UnknownOutcome (so does session_expired after such an attempt);
    it is never resent under a new number: read the key back and decide.
    The cluster forgets a session once 16,384 other clients were active
    since its last write, and refuses its every write from then on
    (session_expired); the client then starts a new session (a new
    client_id) for later writes, and a write none of whose attempts can
    have applied is sent again in it, once. The conditional
    writes (SetIfAbsent, SetIfExists, CompareAndSwap, CompareAndDelete) are
    such writes; their condition_failed answer is certain even after an
    attempt of unknown outcome (had that attempt applied, the cluster would
    have answered the retry as its duplicate), so they return False then,
    never UnknownOutcome. So is the not_found of Expire and Persist (the
    cluster keeps their refusal in the session as it keeps a condition's):
    None, as for a missing key, never UnknownOutcome. And so are Incr's
    NotInteger and Overflow: the cluster keeps an incr's answer, its value
    or its refusal, in the session, and answers a retry with it, so an
    Incr retried after an attempt of unknown outcome counts once.

    Against a single node it works too: the node checks the session fields
    and ignores them, and every call goes to it. A single node keeps no
    sessions, though: a write retried after an attempt of unknown outcome
    may apply twice there (an Incr counts twice), and a condition_failed,
    not_found, not_integer or overflow that answers the retry is not
    certain (the first attempt may have applied, and been undone since by
    another write or an expiry). Use KVClient, which never retries a
    write, against a single node.

    ``password`` and ``ssl_context`` (with ``server_hostname``) are
    KVClient's, used on every connection to every node. A wrong password
    (AuthFailed) is wrong at every node: raised at once, not tried at the
    others. A TLS failure (TLSError) may be one node's certificate: the
    call (or the constructor) goes on to the next node, and raises it once
    every node given has refused, which takes moments, not the timeout.

    Calls take turns (a lock); no pipelining. In the child of a fork, its
    copy starts a session of its own, on connections of its own.
    """

    def __init__(
        self,
        kv_ports=None,
        host="127.0.0.1",
        addrs=None,
        timeout=10.0,
        attempt_timeout=2.0,
        max_attempts=20,
        connect=True,
        connect_timeout=2.0,
        dial_retries=3,
        request_bytes_max=protocol.REQUEST_BYTES_MAX_DEFAULT,
        response_bytes_max=protocol.RESPONSE_BYTES_MAX_DEFAULT,
        password=None,
        ssl_context=None,
        server_hostname=None,
    ):
        if (kv_ports is None) == (addrs is None):
            raise TypeError("ClusterKVClient takes kv_ports or addrs, one of them")
        if kv_ports is not None:
            if isinstance(kv_ports, (str, bytes)) or not hasattr(kv_ports, "__iter__"):
                raise TypeError("kv_ports must be a list of ports")
            for p in kv_ports:
                if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536:
                    raise ValueError("kv_ports must be ints in 1..65535, not %r" % (p,))
            addrs = [protocol.join_addr(host, p) for p in kv_ports]
        else:
            if isinstance(addrs, (str, bytes)):
                addrs = addrs.split(",")
            addrs = list(addrs)
        if not addrs:
            raise ValueError("no addresses")
        if len(addrs) > _ADDRS_MAX:
            raise ValueError("%d addresses; the limit is %d" % (len(addrs), _ADDRS_MAX))
        seen = []
        for a in addrs:
            if protocol.split_addr(a) is None:
                raise ValueError("address %r is not host:port" % (a,))
            if a not in seen:
                seen.append(a)
        self.addrs = seen
        self.timeout = _check_timeout("timeout", timeout)
        self.attempt_timeout = _check_timeout("attempt_timeout", attempt_timeout)
        self.connect_timeout = _check_timeout("connect_timeout", connect_timeout)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError("max_attempts must be an int >= 1, not %r" % (max_attempts,))
        self.max_attempts = max_attempts
        # Checked here, as KVClient checks them, rather than when the first
        # call makes a node's KVClient.
        if isinstance(dial_retries, bool) or not isinstance(dial_retries, int) or dial_retries < 0:
            raise ValueError("dial_retries must be an int >= 0, not %r" % (dial_retries,))
        self.dial_retries = dial_retries
        self.request_bytes_max = protocol.check_positive_int("request_bytes_max", request_bytes_max)
        self.response_bytes_max = protocol.check_positive_int("response_bytes_max", response_bytes_max)
        _check_credentials(password, ssl_context, server_hostname)
        self.password = password
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.client_id = new_client_id()
        self._session = Session()
        self._lock = threading.Lock()
        self._nodes = {}  # address -> KVClient, made on first use
        self._leader = None  # the node believed to lead
        self._next = 0  # index in addrs of the node to try when none is known to lead
        self._closed = False
        self._owner = None  # the thread that last took _lock
        self._view_closes = []  # see _Walks._scan_all
        _clients.add(self)
        if connect:
            self._connect_any()

    # The seed's API.

    # The seed's API is _Calls'; each call goes to the leader (_do).

    def _submit(self, op):
        return self._do(op)

    def request(self, req):
        """A raw request dict, as KVClient.request; a write gets the session
        fields."""
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            raise TypeError("request takes a dict with a str \"op\"")
        req = dict(req)
        for f in ("id", "client_id", "seq", "acked"):
            req.pop(f, None)
        return self._do(_Op(req, lambda resp: resp))

    def leader(self):
        """The address of the node last learned to lead, or None."""
        return self._leader

    def close(self):
        self._closed = True
        for n in list(self._nodes.values()):
            n.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "ClusterKVClient(%s)" % ",".join(self.addrs)

    # Internals.

    def _after_fork(self):
        """In the child of a fork: a session of its own, so that the
        cluster does not take the child's writes for retries of the
        parent's (their seqs run in step), and a lock of its own. Its
        nodes' KVClients drop their connections themselves."""
        self._lock = threading.Lock()
        self._view_closes = []  # the parent's to close
        self.client_id = new_client_id()
        self._session = Session()

    def _node(self, addr):
        n = self._nodes.get(addr)
        if n is None:
            host, port = protocol.split_addr(addr)
            n = KVClient(
                host,
                port,
                timeout=self.timeout,
                connect=False,
                connect_timeout=self.connect_timeout,
                dial_retries=0,
                request_bytes_max=self.request_bytes_max,
                response_bytes_max=self.response_bytes_max,
                password=self.password,
                ssl_context=self.ssl_context,
                server_hostname=self.server_hostname,
            )
            self._nodes[addr] = n
        return n

    def _connect_any(self):
        deadline = time.monotonic() + self.timeout
        errs = []
        backoff = 0.05
        for rnd in range(self.dial_retries + 1):
            if rnd > 0:
                self._pause(backoff, deadline)
                backoff = min(2 * backoff, 1.0)
            errs = []
            tls_errs = []  # the nodes' TLS failures in this round
            for i, addr in enumerate(self.addrs):
                n = self._node(addr)
                n._acquire(deadline)
                try:
                    n._connection(min(deadline, time.monotonic() + self.connect_timeout))
                    self._next = i
                    return
                except AuthFailed:
                    # A wrong password is wrong at every node: no other
                    # node or round will take it.
                    raise
                except TLSError as e:
                    # Each node has a certificate of its own: one expired
                    # or made for another name need not stop the others,
                    # as the Go client has it (found by review: the client
                    # could not be made while its first node's certificate
                    # was refused).
                    errs.append("%s: %s" % (addr, e))
                    tls_errs.append(e)
                except DKVError as e:
                    errs.append("%s: %s" % (addr, e))
                finally:
                    n._release()
            if len(tls_errs) == len(self.addrs):
                # Refused at every node: the client's own TLS is wrong (an
                # authority it does not trust, TLS on one side only), which
                # no round mends.
                raise tls_errs[-1]
        raise ConnectionFailed("cannot connect to any node of %s: %s" % (",".join(self.addrs), "; ".join(errs)))

    def _first(self):
        if self._leader is not None:
            return self._leader
        return self.addrs[self._next]

    def _after(self, addr):
        """The node to try once addr failed to serve a call: addr is no
        longer believed to lead, and the turn moves past it."""
        if self._leader == addr:
            self._leader = None
        if self.addrs[self._next] == addr:
            self._next = (self._next + 1) % len(self.addrs)
        return self.addrs[self._next]

    def _follow(self, leader):
        """Records that leader leads; False if the address is malformed or
        one too many learned."""
        if protocol.split_addr(leader) is None:
            return False
        if leader not in self._nodes and leader not in self.addrs and len(self._nodes) >= len(self.addrs) + _LEARNED_ADDRS_MAX:
            return False
        self._leader = leader
        return True

    def _pause(self, d, deadline):
        wait = d / 2 + random.random() * d / 2
        if time.monotonic() + wait >= deadline:
            raise RequestTimeout("the timeout passed")
        time.sleep(wait)

    def _do(self, op):
        deadline = time.monotonic() + self.timeout
        if self._closed:
            raise ClientClosed("the cluster client is closed")
        if not self._lock.acquire(timeout=self.timeout):
            raise RequestTimeout("the timeout passed while another call was in progress")
        self._owner = threading.get_ident()
        try:
            return self._do_locked(op, deadline)
        finally:
            self._lock.release()
            if self._view_closes:
                self._close_views()

    def _do_locked(self, op, deadline):
        req = op.req
        name = req["op"]
        write = not op.read
        seq = None
        sess = None  # the write's session, which a renewal replaces
        if write:
            sess = self._session
            seq = sess.begin()
            req["client_id"] = self.client_id
            req["seq"] = seq
        tls_refused = set()  # the nodes whose TLS failed in this call
        unknown = False  # an attempt of this write may have been applied
        renewed = False  # the write was moved to a new session
        last = None  # why the last attempt failed
        last_answer = None  # the last ServerError among them, said when the last is not one
        hopped = False  # the last retry followed a redirect without a pause

        def give_up(err):
            if unknown and not isinstance(err, UnknownOutcome):
                return _unknown(name, err)
            return err

        try:
            backoff = _RETRY_BACKOFF_BASE
            addr = self._first()
            attempt = 0
            while True:
                attempt += 1
                if self._closed:
                    raise give_up(ClientClosed("the cluster client is closed"))
                if write:
                    req["acked"] = sess.acked()
                late = time.monotonic() >= deadline  # the call's time was up before this attempt
                resp, err, sent = self._attempt(addr, req, deadline)
                pause = True
                if err is None and resp["ok"]:
                    if name not in protocol.ANY_NODE_OPS:
                        # Only the leader serves the other ops.
                        self._follow(addr)
                    return _finish(op, resp)
                if err is None:
                    se = response_error(resp, name)
                    code = se.code
                    if code == "not_leader":
                        if se.leader and self._follow(se.leader):
                            addr = se.leader
                            pause = hopped
                        else:
                            addr = self._after(addr)
                    elif code in ("unavailable", "too_many_connections"):
                        # Refused without effect: a node at its
                        # --max-conns answers a new connection's first
                        # request so, unread, and closes it (as the Go
                        # client, which moves on; found by review: the
                        # call ended at once when the refusal came in
                        # after the request left).
                        addr = self._after(addr)
                    elif code in ("disk_full", "io_error"):
                        # Refused without effect: a leader whose disk
                        # refuses writes refuses a write before proposing
                        # it, and hands the office to a node whose disk
                        # takes writes, if there is one. The same node is
                        # asked again after a pause: it redirects once it
                        # has handed over, and a follower would only send
                        # the call back to it (the call then ended on that
                        # redirect, not on the disk).
                        pass
                    elif code == "outcome_unknown":
                        # Proposed, but its node could not learn its fate. A
                        # retry under the same seq applies it at most once
                        # and learns the outcome.
                        unknown = unknown or write
                        addr = self._after(addr)
                    elif code == "not_found":
                        # Certain: a read's follows no attempt of unknown
                        # outcome, and an expire's or persist's is kept in
                        # the session as a condition's refusal is, and
                        # answers every retry of it.
                        self._follow(addr)
                        if op.missing_ok:
                            return None
                        raise se
                    elif code in ("not_integer", "overflow"):
                        # Certain: the session keeps an incr's refusal as
                        # it keeps its value, and answers every retry of
                        # it so; nothing was written.
                        self._follow(addr)
                        raise se
                    elif code in ("condition_failed", "condition_refused_earlier"):
                        # Certain, whatever came of earlier attempts: the
                        # session records a refused write, so no copy of
                        # it applies later, and had one applied, this one
                        # would be its duplicate (ok). So neither a retry
                        # nor an unknown outcome: False, or for a raw
                        # request the ConditionFailed itself.
                        self._follow(addr)
                        if op.conditional:
                            return False
                        raise se
                    elif code == "session_expired" and write:
                        # The cluster has forgotten the session, and
                        # refuses its every write from now on: later
                        # writes need a new one (as the Go client; found
                        # by review: a client idle while 16,384 others
                        # were active had every write refused so).
                        self._renew(sess)
                        if unknown or renewed:
                            unknown = True
                            raise give_up(se)
                        # No attempt of this write can have applied: this
                        # one was refused, the others reached no leader.
                        # So it goes again, once, as the new session's.
                        renewed = True
                        sess.end(seq)
                        sess = self._session
                        seq = sess.begin()
                        req["client_id"] = self.client_id
                        req["seq"] = seq
                        pause = False
                    elif code in ("session_expired", "internal"):
                        unknown = unknown or write
                        raise give_up(se)
                    else:
                        raise give_up(se)
                    last = last_answer = se
                else:
                    unknown = unknown or (write and sent)
                    if isinstance(err, TLSError) and not isinstance(err, ServerError):
                        # Refused before the server read anything. One
                        # node's certificate need not be another's: the
                        # call goes on, and ends once every node given
                        # refused (then it is this client's TLS).
                        tls_refused.add(addr)
                        if len(tls_refused) >= len(self.addrs) or time.monotonic() >= deadline:
                            raise give_up(err)
                    elif time.monotonic() >= deadline or not _retryable(err, sent):
                        if not late and isinstance(err, RequestTimeout):
                            # The call's timeout, shorter than the attempt
                            # timeout, ended the attempt before the node
                            # answered: the node is left for the next call,
                            # as after an attempt timeout (as the Go client;
                            # found by review: with timeouts under 2 s,
                            # every call went to a leader that had stopped
                            # answering, while the others elected another).
                            self._after(addr)
                        raise give_up(err)
                    last = err
                    addr = self._after(addr)
                if attempt >= self.max_attempts:
                    raise give_up(_exhausted(attempt, last, last_answer))
                hopped = not pause
                if pause:
                    try:
                        self._pause(backoff, deadline)
                    except RequestTimeout:
                        raise give_up(RequestTimeout("the timeout passed after %d attempts, the last: %s" % (attempt, last)))
                    backoff = min(2 * backoff, _RETRY_BACKOFF_MAX)
        finally:
            if write:
                sess.end(seq)

    def _renew(self, sess):
        """Starts a new session, with a new id, in place of sess, which the
        cluster has forgotten (unless another write renewed it already)."""
        if self._session is sess:
            self.client_id = new_client_id()
            self._session = Session()

    def _attempt(self, addr, req, deadline):
        """One try at addr, within the attempt timeout."""
        n = self._node(addr)
        adeadline = min(deadline, time.monotonic() + self.attempt_timeout)
        try:
            n._acquire(adeadline)
        except DKVError as e:
            return None, e, False
        try:
            return n._attempt(req, adeadline)
        finally:
            n._release()


def _attempts_failed(n):
    """"1 attempt failed" or "n attempts failed", for errors."""
    return "1 attempt failed" if n == 1 else "%d attempts failed" % n


def _retryable(err, sent):
    """Whether a failed attempt may be tried again at another node: it could
    not be reached, its connection broke, it did not answer in time, or it
    refused the connection before the request went out (too_many_connections,
    on connect or on an idle connection: the Go client moves on there too;
    found by review). Not a closed client, nor a response the client could
    not read."""
    if isinstance(err, (ClientClosed, ProtocolError, ResponseTooLarge)):
        return False
    if isinstance(err, TooManyConnections) and not sent:
        return True
    return isinstance(err, (ConnectionFailed, RequestTimeout))


def _exhausted(attempts, last, last_answer=None):
    """The error of a call whose attempts are spent: the last attempt's,
    saying too what the last node to answer said when the last attempt
    failed to reach its node (a new cluster's "not yet heard: node [2]"
    was hidden by the absent node's refused connection; as the Go client)."""
    if isinstance(last, ServerError):
        last.args = ("%s, the last: %s" % (_attempts_failed(attempts), last.args[0] if last.args else last),)
        return last
    said = "" if last_answer is None else "; the last node to answer said: %s" % (last_answer,)
    return ConnectionFailed("%s, the last: %s%s" % (_attempts_failed(attempts), last, said))
