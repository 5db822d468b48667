"""One pipelined TCP connection to a dkv server.

The server answers requests in order on a connection, so a batch of
requests goes out back to back and the n-th response line answers the n-th
request; each request carries a fresh integer id that the server echoes,
and the echo is checked, so a stream out of step is caught rather than
handing one request's answer to another.

The socket is non-blocking and every wait goes through poll (or select)
with the time left before the call's deadline, so no call outlives its
timeout, whatever the server does. Sending and reading interleave: a big
batch cannot deadlock with a server that stops reading until its answers
are read (it does at 1024 outstanding requests).

With an ssl.SSLContext the socket is wrapped in TLS, its handshake run the
same way, without blocking, within the connect timeout. TLS changes a few
things underneath: a non-blocking SSL socket says "would block" with
ssl.SSLWantReadError and SSLWantWriteError (OSErrors, so they are caught
before any OSError), it cannot peek, so an idle connection's input is read
into the buffer instead, and data OpenSSL has already decrypted is
invisible to poll, so a read takes all of that too. Sends are one TLS
record at most, so that what counts as sent is what the server may have
read.
"""

import errno
import os
import select
import socket
import ssl
import time
from typing import Optional

from . import protocol
from .errors import (
    ConnectionFailed,
    ConnectionLost,
    ProtocolError,
    RequestTimeout,
    ResponseTooLarge,
    TLSError,
    server_error,
)

# How much one recv asks for: a batch of answers arrives in few calls.
_RECV_BYTES = 256 << 10

# How much of an idle connection's unexpected input is looked at: a refusal
# such as too_many_connections fits easily.
_PEEK_BYTES = 512

# The most one send on a TLS connection hands OpenSSL: one record's worth.
# OpenSSL sends all of a write or says "would block" (Python does not ask
# for partial writes); kept to one record, a write that would block has at
# most a partial record on the wire, which the server cannot decrypt, so
# what was counted as sent is exactly what the server may have read.
_TLS_SEND_BYTES = 16 << 10

_POLL = hasattr(select, "poll")

# What a non-blocking connect returns while it is under way (Windows says
# WSAEWOULDBLOCK).
_CONNECTING = frozenset(
    c for c in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, getattr(errno, "WSAEWOULDBLOCK", None)) if c is not None
)

# Would-block on a non-blocking socket: plain, or TLS (whose two are
# OSErrors but not BlockingIOErrors).
_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Call(object):
    """One request on its way through a Connection, and what became of it:
    ``resp`` (the decoded response) or ``err``; ``sent`` says whether any
    byte of the request reached the socket, that is, whether the server may
    have seen it."""

    __slots__ = ("op", "id", "line", "resp", "err", "sent")

    def __init__(self, op, id_, line):
        self.op = op
        self.id = id_
        self.line = line
        self.resp = None
        self.err = None  # type: Optional[BaseException]
        self.sent = False


class Connection(object):
    def __init__(self, sock, addr, response_bytes_max):
        sock.setblocking(False)
        self.sock = sock
        self.tls = isinstance(sock, ssl.SSLSocket)
        # A TLS read's failure that came after data it handed over: the
        # next read raises it (poll may not show it again).
        self.tls_err = None  # type: Optional[BaseException]
        self.addr = addr
        self.response_bytes_max = response_bytes_max
        self.buf = bytearray()
        self.skipping = False  # inside a response line over response_bytes_max
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def idle_error(self):
        """Looks, without waiting, at what this connection received while
        nothing was outstanding: nothing, as it should be; the end of the
        stream (the server closed it after its idle timeout, say); or a line
        nobody asked for (a too_many_connections refusal). Looking before a
        write keeps a request off a connection that is already dead, so it
        is known not to have been sent. Returns the reason it is unusable,
        or None."""
        if self.closed:
            return ConnectionFailed("connection to %s is closed" % self.addr)
        if self.buf or self.skipping:
            return _unsolicited(bytes(self.buf))
        try:
            if self.tls:
                # An SSL socket cannot peek: what arrived is read, and kept
                # (with nothing outstanding, any of it makes the connection
                # unusable anyway). A session ticket, TLS 1.3's after its
                # handshake, is no input: the read says "would block".
                data = self._recv_tls(_PEEK_BYTES)
                self.buf += data
            else:
                data = self.sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
        except _WOULD_BLOCK:
            return None
        except ssl.SSLError as e:
            return _tls_failure(e, self.addr)
        except OSError as e:
            return ConnectionLost("connection to %s lost: %s" % (self.addr, e))
        if not data:
            return ConnectionLost("connection to %s was closed by the server" % self.addr)
        return _unsolicited(data)

    def _recv_tls(self, n):
        """Reads what the TLS connection has: as much as the socket holds, up
        to about n bytes, and past n all that OpenSSL has already decrypted,
        which poll cannot see (what is left is in the socket, where it can).
        b"" at the end of the stream (a ragged end too). Raises one of
        _WOULD_BLOCK when there is nothing, ssl.SSLError when TLS failed (an
        alert from the server)."""
        sock = self.sock
        if self.tls_err is not None:
            err, self.tls_err = self.tls_err, None
            if isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                return b""
            raise err
        try:
            data = sock.recv(n)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return b""
        if not data:
            return data
        chunks = [data]
        got = len(data)
        while True:
            if got >= n:
                left = sock.pending()
                if not left:
                    break
            else:
                left = n - got
            try:
                more = sock.recv(left)
            except _WOULD_BLOCK:
                break
            except OSError as e:
                # Left for the next read: this one hands over what did
                # arrive first.
                self.tls_err = e
                break
            if not more:
                break
            chunks.append(more)
            got += len(more)
        return b"".join(chunks)

    def _refusal(self):
        """The TLSError of a server that refused this TLS connection (an
        alert waiting to be read), or None. Sending to such a server fails
        once it has closed: the reason is in what it sent before."""
        try:
            self._recv_tls(_RECV_BYTES)
        except ssl.SSLError as e:
            err = _tls_failure(e, self.addr)
            if isinstance(err, TLSError):
                return err
        except OSError:
            pass
        return None

    def exchange(self, calls, deadline):
        """Sends every call's line and reads their responses, until all are
        answered, the connection breaks, or the deadline (time.monotonic())
        passes. Every call ends with ``resp`` or ``err`` set. After a
        timeout or a break the connection is closed: requests may be in
        flight, and the stream can no longer be matched to them.

        An exception from outside (KeyboardInterrupt) closes the connection
        too, and propagates.
        """
        n = len(calls)
        if n == 1:
            out = calls[0].line
            starts = [0]
        else:
            starts = []
            pos = 0
            for c in calls:
                starts.append(pos)
                pos += len(c.line)
            out = b"".join([c.line for c in calls])
        view = memoryview(out)
        total = len(out)
        sent = 0
        done = 0  # calls answered, in order
        # Why sending failed. The answers to what did leave may still be
        # waiting to be read (a server that answered, then closed), so
        # reading goes on until they are in or the stream ends.
        send_err = None
        sock = self.sock
        tls = self.tls
        poller = None
        try:
            while True:
                if sent < total and send_err is None:
                    try:
                        if tls:
                            sent += sock.send(view[sent : sent + _TLS_SEND_BYTES])
                        else:
                            sent += sock.send(view[sent:])
                    except _WOULD_BLOCK:
                        pass
                    except OSError as e:
                        send_err = e
                if self.buf:
                    done = self._deliver(calls, done, starts, sent)
                    if done == n:
                        return
                if send_err is not None and (done == n or starts[done] >= sent):
                    if tls:
                        refusal = self._refusal()
                        if refusal is not None:
                            raise _Refused(refusal)
                    raise _Broken("sending to %s failed: %s" % (self.addr, send_err))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _TimedOut()
                want_write = sent < total and send_err is None
                if self.tls_err is not None:
                    readable = True
                elif _POLL:
                    if poller is None:
                        poller = select.poll()
                        poller.register(sock, select.POLLIN | (select.POLLOUT if want_write else 0))
                        polled_write = want_write
                    elif polled_write != want_write:
                        poller.modify(sock, select.POLLIN | (select.POLLOUT if want_write else 0))
                        polled_write = want_write
                    # Round up: a 0 ms poll with time left would spin.
                    events = poller.poll(int(remaining * 1000) + 1)
                    readable = any(ev & (select.POLLIN | select.POLLERR | select.POLLHUP) for _, ev in events)
                else:
                    r, _, _ = select.select([sock], [sock] if want_write else [], [], remaining)
                    readable = bool(r)
                if readable:
                    try:
                        if tls:
                            data = self._recv_tls(_RECV_BYTES)
                        else:
                            data = sock.recv(_RECV_BYTES)
                    except _WOULD_BLOCK:
                        continue
                    except ssl.SSLError as e:
                        err = _tls_failure(e, self.addr)
                        if isinstance(err, TLSError):
                            raise _Refused(err)
                        raise _Broken("reading from %s failed: %s" % (self.addr, e))
                    except OSError as e:
                        raise _Broken("reading from %s failed: %s" % (self.addr, e))
                    if not data:
                        raise _Broken("the server closed the connection to %s" % self.addr)
                    self.buf += data
                    done = self._deliver(calls, done, starts, sent)
                    if done == n:
                        return
        except _Broken as e:
            self._abandon(calls, done, starts, sent, ConnectionLost("connection lost: %s" % e))
        except _TimedOut:
            self._abandon(calls, done, starts, sent, RequestTimeout("no answer from %s before the timeout" % self.addr))
        except _Unusable as e:
            self._abandon(calls, done, starts, sent, e.err)
        except _Refused as e:
            # The server refused the TLS handshake, before reading anything
            # of what was sent: nothing of it was seen.
            self._abandon(calls, done, starts, 0, e.err)
        except BaseException:
            self._abandon(calls, done, starts, sent, ConnectionLost("interrupted"))
            raise

    def _abandon(self, calls, done, starts, sent, err):
        self.close()
        for i in range(done, len(calls)):
            c = calls[i]
            if c.resp is None and c.err is None:
                c.sent = sent > starts[i]
                c.err = err

    def _deliver(self, calls, done, starts, sent):
        """Hands the whole response lines in the buffer to calls[done:], in
        order, and returns how many calls are answered now."""
        buf = self.buf
        pos = 0
        limit = self.response_bytes_max
        n = len(calls)
        try:
            while done < n:
                i = buf.find(b"\n", pos)
                if i < 0:
                    if self.skipping or len(buf) - pos > limit:
                        # Skip the rest of the line as it arrives.
                        self.skipping = True
                        pos = len(buf)
                    break
                c = calls[done]
                if sent <= starts[done]:
                    # Nothing of this request has left: this line answers
                    # nothing that was asked.
                    raise _Unusable(_unsolicited(bytes(buf[pos : i + 1])))
                if self.skipping or i - pos > limit:
                    self.skipping = False
                    c.sent = True
                    c.err = ResponseTooLarge("a response from %s is over %d bytes" % (self.addr, limit))
                    pos = i + 1
                    done += 1
                    continue
                line = buf[pos:i]
                pos = i + 1
                c.sent = True
                try:
                    resp = protocol.decode(line)
                    got = resp.get("id")
                    if not (type(got) is int and got == c.id) and not ("id" not in resp and not resp["ok"]):
                        # An error answer without an id is one the server
                        # could not read the id of: accepted.
                        raise ProtocolError("response id %r does not match request id %r" % (got, c.id))
                except ProtocolError as e:
                    c.err = e
                    done += 1
                    raise _Unusable(ConnectionLost("connection to %s dropped: %s" % (self.addr, e)))
                c.resp = resp
                done += 1
        finally:
            if pos:
                del buf[:pos]
        return done


class _Broken(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Unusable(Exception):
    def __init__(self, err):
        Exception.__init__(self, str(err))
        self.err = err


class _Refused(Exception):
    def __init__(self, err):
        Exception.__init__(self, str(err))
        self.err = err


# OpenSSL's reasons for a failure on the server's side of the handshake,
# reported by the alert it sends: with TLS 1.3 the client's handshake is over
# by then (the server checks the client's certificate last), so the alert
# comes in where the first answer was expected. The server never read a
# request on such a connection. Any other alert (bad_record_mac, say) breaks
# an established connection like a reset does.
_REFUSAL_WORDS = ("CERTIFICATE", "UNKNOWN_CA", "ACCESS_DENIED", "HANDSHAKE_FAILURE", "DECRYPT_ERROR")

# OpenSSL's reasons for a first answer that is not TLS at all.
_NOT_TLS_REASONS = frozenset(
    (
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "HTTP_REQUEST",
        "HTTPS_PROXY_REQUEST",
        "RECORD_TOO_LARGE",
        "UNEXPECTED_RECORD",
    )
)


def _tls_error(text, addr, reason, cause):
    e = TLSError(text)
    e.addr = addr
    e.reason = reason
    e.__cause__ = cause
    return e


def _tls_failure(e, addr):
    """The error of an ssl.SSLError on an established connection: a
    TLSError for the server's refusal of the handshake (of this client's
    certificate, or its lack of one), else ConnectionLost."""
    reason = getattr(e, "reason", None) or ""
    if "ALERT" in reason and any(w in reason for w in _REFUSAL_WORDS):
        text = "the TLS server %s refused the connection: %s" % (addr, _ssl_text(e))
        if "CERTIFICATE_REQUIRED" in reason:
            text += " (a server started with --tls-client-ca wants a client certificate: ssl_context.load_cert_chain(cert, key))"
        elif "HANDSHAKE_FAILURE" in reason:
            text += " (a server started with --tls-client-ca wants a client certificate, if that is what it missed)"
        elif "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
            text += " (a server started with --tls-client-ca wants a certificate signed by that authority)"
        return _tls_error(text, addr, reason, e)
    return ConnectionLost("connection to %s lost: %s" % (addr, _ssl_text(e)))


def _ssl_text(e):
    """An ssl exception's message without the position in _ssl.c."""
    text = getattr(e, "verify_message", None) or ""
    base = str(e.args[1]) if len(e.args) > 1 and isinstance(e.args[1], str) else str(e)
    i = base.find(" (_ssl.c:")
    if i > 0:
        base = base[:i]
    if text and text not in base:
        base = "%s: %s" % (base, text)
    return base


def _unsolicited(data):
    """Explains bytes that arrived with nothing outstanding. A server that
    refuses a connection (too_many_connections) says why in one error line
    without an id, and that reason beats "protocol violation"."""
    i = data.find(b"\n")
    if i >= 0:
        try:
            resp = protocol.decode(data[:i])
        except ProtocolError:
            resp = None
        if resp is not None and not resp["ok"] and "id" not in resp and isinstance(resp.get("error"), dict):
            return server_error(resp["error"])
    return ProtocolError("a response arrived with no request outstanding: %.200r" % (data,))


class DialInterrupted(Exception):
    """A dial ended by its wake socket (the client's close() from another
    thread): nothing was sent."""


def _wait(sock, want_write, until, wake):
    """Waits until sock is ready (for writing, or else for reading), until
    the time until (time.monotonic()) passes, or wake (a socket, or None)
    is readable, which raises DialInterrupted. Returns whether sock is
    ready."""
    remaining = until - time.monotonic()
    if remaining <= 0:
        return False
    if _POLL:
        p = select.poll()
        p.register(sock, select.POLLOUT if want_write else select.POLLIN)
        if wake is not None:
            p.register(wake, select.POLLIN)
        events = p.poll(int(remaining * 1000) + 1)
        fds = [fd for fd, _ in events]
    else:
        # Windows (no poll): a connect that failed shows as exceptional,
        # not writable.
        rs = [wake] if wake is not None else []
        ws = [sock] if want_write else []
        r, w, x = select.select(rs + ([] if want_write else [sock]), ws, ws, remaining)
        fds = [s.fileno() for s in r + w + x]
    if wake is not None and wake.fileno() in fds:
        raise DialInterrupted()
    return sock.fileno() in fds


def dial(host, port, deadline, connect_timeout, response_bytes_max, ssl_context=None, server_hostname=None, wake=None):
    """Opens a connection: TCP, and with ssl_context TLS over it (checking
    the server's certificate against server_hostname, else host), all
    within one connect_timeout and the deadline. Returns the Connection
    and the time its connect_timeout ends (time.monotonic()), which
    bounds the rest of opening it too (the password's answer). Raises
    ConnectionFailed, TLSError (the handshake failed for good: a
    certificate refused, a server without TLS), or RequestTimeout when
    the deadline passed. A wake socket that becomes readable ends it with
    DialInterrupted.

    One budget for the whole dial, rather than a connect_timeout for each
    step: a step that took most of it leaves the next step only what is
    left, so connect_timeout is what a dial can take (found by review: a
    TLS dial took up to twice connect_timeout, and a host of several
    addresses connect_timeout for each)."""
    addr = protocol.join_addr(host, port)
    if deadline - time.monotonic() <= 0:
        raise RequestTimeout("no time left to connect to %s" % addr)
    ddeadline = min(deadline, time.monotonic() + connect_timeout)
    try:
        sock = _connect_tcp(host, port, ddeadline, wake)
    except socket.timeout:
        if deadline - time.monotonic() <= 0:
            raise RequestTimeout("connecting to %s timed out" % addr) from None
        raise ConnectionFailed("connecting to %s timed out after %.3gs" % (addr, connect_timeout)) from None
    except OSError as e:
        raise ConnectionFailed("cannot connect to %s: %s" % (addr, e.strerror or e)) from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    if ssl_context is not None:
        sock = _handshake(sock, ssl_context, server_hostname or host, addr, deadline, ddeadline, connect_timeout, wake)
    return Connection(sock, addr, response_bytes_max), ddeadline


def _connect_tcp(host, port, ddeadline, wake=None):
    """A TCP connection to one of host's addresses, tried in turn before
    ddeadline, each given an equal share of the time left (a black hole
    first in the list does not take it all). Unlike
    socket.create_connection, whose timeout is each address's, so that a
    host of n silent addresses took n times it. Raises socket.timeout when
    the time ran out, DialInterrupted when wake woke it, else the last
    address's OSError. The connect does not block, so that wake can end
    it. Resolving the name (getaddrinfo) cannot be bounded without a
    thread: it is not."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    if not infos:
        raise OSError("no address for %s" % host)
    err = None  # type: Optional[OSError]
    for i, (family, kind, proto, _, sockaddr) in enumerate(infos):
        remaining = ddeadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(sockaddr)
            if code in _CONNECTING:
                if not _wait(sock, True, time.monotonic() + remaining / (len(infos) - i), wake):
                    raise socket.timeout("timed out")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code != 0:
                raise OSError(code, os.strerror(code))
        except OSError as e:
            sock.close()
            err = e
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert err is not None
    raise err


def _handshake(sock, ctx, server_hostname, addr, deadline, hdeadline, connect_timeout, wake=None):
    """Wraps the connected sock in TLS and runs the client's handshake
    without blocking, before hdeadline (the dial's, within the deadline).
    Returns the SSL socket; closes sock and raises otherwise."""
    try:
        sock.setblocking(False)
        ssock = ctx.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
    except ssl.SSLError as e:
        sock.close()
        raise _tls_error("TLS with %s: %s" % (addr, _ssl_text(e)), addr, getattr(e, "reason", None), e) from e
    except ValueError as e:
        # A server_hostname that is no host name, say.
        sock.close()
        raise _tls_error("TLS with %s: %s" % (addr, e), addr, None, e) from e
    except OSError as e:
        sock.close()
        raise ConnectionFailed("TLS with %s: %s" % (addr, e.strerror or e)) from None
    try:
        while True:
            try:
                ssock.do_handshake()
                return ssock
            except ssl.SSLWantReadError:
                want_write = False
            except ssl.SSLWantWriteError:
                want_write = True
            if hdeadline - time.monotonic() <= 0:
                break
            _wait(ssock, want_write, hdeadline, wake)
    except ssl.SSLCertVerificationError as e:
        ssock.close()
        raise _tls_error(
            "the TLS certificate of %s did not verify: %s" % (addr, _ssl_text(e)), addr, e.reason, e
        ) from e
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError) as e:
        # The connection ended mid-handshake: a server going away, or one
        # too busy; like a failed connect, worth another dial.
        ssock.close()
        raise ConnectionFailed("the TLS handshake with %s failed: the connection ended (%s)" % (addr, _ssl_text(e))) from None
    except ssl.SSLError as e:
        ssock.close()
        err = _tls_failure(e, addr)
        if isinstance(err, TLSError):
            # The server refused the handshake (TLS 1.2 says so here).
            raise err from e
        reason = getattr(e, "reason", None)
        text = "the TLS handshake with %s failed: %s" % (addr, _ssl_text(e))
        if reason in _NOT_TLS_REASONS:
            text += " (does the server speak TLS? It does when started with --tls-cert)"
        raise _tls_error(text, addr, reason, e) from e
    except OSError as e:
        ssock.close()
        raise ConnectionFailed("the TLS handshake with %s failed: %s" % (addr, e.strerror or e)) from None
    except BaseException:
        ssock.close()
        raise
    ssock.close()
    if deadline - time.monotonic() <= 0:
        raise RequestTimeout("the TLS handshake with %s timed out" % addr)
    raise ConnectionFailed("the TLS handshake with %s timed out after %.3gs" % (addr, connect_timeout))
