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
"""

import select
import socket
import time
from typing import Optional

from . import protocol
from .errors import ConnectionFailed, ConnectionLost, ProtocolError, RequestTimeout, ResponseTooLarge, server_error

# How much one recv asks for: a batch of answers arrives in few calls.
_RECV_BYTES = 256 << 10

# How much of an idle connection's unexpected input is looked at: a refusal
# such as too_many_connections fits easily.
_PEEK_BYTES = 512

_POLL = hasattr(select, "poll")


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
            data = self.sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as e:
            return ConnectionLost("connection to %s lost: %s" % (self.addr, e))
        if not data:
            return ConnectionLost("connection to %s was closed by the server" % self.addr)
        return _unsolicited(data)

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
        poller = None
        try:
            while True:
                if sent < total and send_err is None:
                    try:
                        sent += sock.send(view[sent:])
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError as e:
                        send_err = e
                if self.buf:
                    done = self._deliver(calls, done, starts, sent)
                    if done == n:
                        return
                if send_err is not None and (done == n or starts[done] >= sent):
                    raise _Broken("sending to %s failed: %s" % (self.addr, send_err))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _TimedOut()
                want_write = sent < total and send_err is None
                if _POLL:
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
                        data = sock.recv(_RECV_BYTES)
                    except (BlockingIOError, InterruptedError):
                        continue
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


def dial(host, port, deadline, connect_timeout, response_bytes_max):
    """Opens a connection, within the deadline. Raises ConnectionFailed, or
    RequestTimeout when the deadline passed."""
    addr = protocol.join_addr(host, port)
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise RequestTimeout("no time left to connect to %s" % addr)
    try:
        sock = socket.create_connection((host, port), timeout=min(connect_timeout, remaining))
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
    return Connection(sock, addr, response_bytes_max)
