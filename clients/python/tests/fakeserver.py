"""A fake dkv server in the test process: it accepts connections on a free
loopback port and runs a handler per connection, so a test can make a
server misbehave in exactly one way (close mid-reply, never answer, answer
with any error code) and count what the client sent."""

import json
import socket
import threading
import time


class FakeServer(object):
    """handler(server, conn_no, sock, rfile) runs on its own thread for each
    connection, numbered from 0; every request line read with
    ``read_request`` is recorded in ``requests``, in order."""

    def __init__(self, handler, accept=True):
        self.handler = handler
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._socks = []
        self._closed = False
        if accept:
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()

    def _serve(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                n = self.connections
                self.connections += 1
                self._socks.append(sock)
            threading.Thread(target=self._run, args=(n, sock), daemon=True).start()

    def _run(self, n, sock):
        rfile = sock.makefile("rb")
        try:
            self.handler(self, n, sock, rfile)
        except (OSError, ValueError):
            pass
        finally:
            try:
                rfile.close()
                sock.close()
            except OSError:
                pass

    def read_request(self, rfile):
        """The next request, decoded, or None at the end of the stream."""
        line = rfile.readline()
        if not line:
            return None
        req = json.loads(line)
        with self.lock:
            self.requests.append(req)
        return req

    def ops(self):
        with self.lock:
            return [r.get("op") for r in self.requests]

    def close(self):
        self._closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def answering(answer):
    """A handler that answers every request, in order, with answer(server, req)."""

    def handler(server, n, sock, rfile):
        while True:
            req = server.read_request(rfile)
            if req is None:
                return
            reply(sock, answer(server, req))

    return handler


def reply(sock, obj):
    sock.sendall(json.dumps(obj).encode() + b"\n")


def ok_for(req, **fields):
    """A success response to req: ok, its id, and for a get a value."""
    resp = {"id": req.get("id"), "ok": True}
    resp.update(fields)
    return resp


def error_for(req, code, message="fake", leader=None):
    err = {"code": code, "message": message}
    if leader:
        err["leader"] = leader
    return {"id": req.get("id"), "ok": False, "error": err}


def echo_handler(server, n, sock, rfile):
    """A well-behaved server of a dict: set, get, delete, bulk_set, ping,
    status; mesh-like if server.stamp is set."""
    store = server.__dict__.setdefault("store", {})
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        op = req.get("op")
        if op == "set":
            store[req["key"]] = req["value"]
            reply(sock, ok_for(req))
        elif op == "get":
            if req["key"] in store:
                reply(sock, ok_for(req, value=store[req["key"]]))
            else:
                reply(sock, error_for(req, "not_found"))
        elif op == "delete":
            store.pop(req["key"], None)
            reply(sock, ok_for(req))
        elif op == "bulk_set":
            for it in req["items"]:
                store[it["key"]] = it["value"]
            reply(sock, ok_for(req))
        elif op == "status":
            reply(sock, ok_for(req, status={"mode": "fake"}))
        else:
            reply(sock, ok_for(req))


def assert_close_ends_a_call(test, c):
    """Checks that c.close() from another thread ends c's call in
    progress to a server that never answers: a Set, which then raises
    UnknownOutcome, and that calls after it raise ClientClosed."""
    import dkv  # after nodeproc has put the client on sys.path

    out = []

    def call():
        try:
            c.Set("k", "v")
        except dkv.DKVError as e:
            out.append(e)

    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.2)
    began = time.monotonic()
    c.close()
    t.join(5)
    test.assertLess(time.monotonic() - began, 2)
    test.assertEqual(len(out), 1)
    test.assertIsInstance(out[0], dkv.UnknownOutcome)
    test.assertRaises(dkv.ClientClosed, c.Get, "k")
