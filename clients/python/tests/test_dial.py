"""connect_timeout bounds a whole dial: the TCP connect over every address
of the host, the TLS handshake and the password's answer share it, so a
dial takes no longer than connect_timeout, whatever the server does."""

import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
import unittest
from unittest import mock

import nodeproc  # (puts the client on sys.path)
from fakeserver import FakeServer
from nodeproc import SingleNode

import dkv
from dkv import KVClient


def black_hole():
    """A loopback listener that never accepts, its backlog filled: a new
    connection to it gets no answer to its SYN, as from a host that is
    down. Returns the listener and the connections that fill it."""
    lis = socket.socket()
    lis.bind(("127.0.0.1", 0))
    lis.listen(0)
    fill = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(lis.getsockname())
        except BlockingIOError:
            pass
        fill.append(s)
    return lis, fill


def wait_stopped(port):
    """Returns once the node on port has stopped answering: a SIGSTOP
    takes a moment to stop every thread (here /proc does not tell)."""
    deadline = time.monotonic() + nodeproc.WAIT_MAX
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b'{"op":"ping"}\n')
            s.settimeout(0.5)
            try:
                if not s.recv(1):
                    raise AssertionError("the node closed the connection")
            except socket.timeout:
                return
    raise AssertionError("the node on %d still answers after SIGSTOP" % port)


class StoppedNodeTest(unittest.TestCase):
    def test_password_unanswered_is_a_failed_dial(self):
        # A real node with a password, stopped (SIGSTOP): its kernel still
        # accepts connections, and nothing answers the password. The dial
        # gives up at its connect_timeout and is tried again, dial_retries
        # times, as a connect that timed out is; it took the call's whole
        # timeout, once, ending in RequestTimeout.
        d = tempfile.mkdtemp(prefix="python-dial-")
        self.addCleanup(shutil.rmtree, d, True)
        secret = "0123456789abcdef-python"
        pass_file = os.path.join(d, "pass")
        with open(pass_file, "w") as f:
            f.write(secret + "\n")
        os.chmod(pass_file, 0o600)
        s = SingleNode(os.path.join(d, "data"), "--auth-file", pass_file).start()
        self.addCleanup(s.kill)
        KVClient(port=s.port, timeout=20, password=secret).close()
        os.kill(s.node.proc.pid, signal.SIGSTOP)
        self.addCleanup(lambda: s.node.alive() and os.kill(s.node.proc.pid, signal.SIGCONT))
        wait_stopped(s.port)
        with self.assertRaises(dkv.ConnectionFailed) as cm:
            KVClient(port=s.port, timeout=60, connect_timeout=0.3, dial_retries=1, password=secret)
        self.assertIn("no answer to the password", str(cm.exception))
        self.assertIn("2 attempts", str(cm.exception))
        # The call's timeout, when shorter, still ends it: RequestTimeout.
        with self.assertRaises(dkv.RequestTimeout):
            KVClient(port=s.port, timeout=0.3, connect_timeout=5, dial_retries=0, password=secret)


class ManyAddressesTest(unittest.TestCase):
    def test_addresses_share_the_connect_timeout(self):
        # A host of two addresses, both silent. socket.create_connection
        # gives each the whole connect_timeout, so the dial took twice it,
        # past the call's timeout of 1.9 times it (RequestTimeout); shared,
        # the dial fails at connect_timeout, with time left (a
        # ConnectionFailed that names it). The name's resolution is the
        # one thing stood in for: no name here resolves to two addresses.
        holes = [black_hole(), black_hole()]
        for lis, fill in holes:
            self.addCleanup(lis.close)
            for s in fill:
                self.addCleanup(s.close)
        infos = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", lis.getsockname()) for lis, _ in holes]
        with mock.patch.object(socket, "getaddrinfo", lambda *a, **kw: list(infos)):
            with self.assertRaises(dkv.ConnectionFailed) as cm:
                KVClient(host="twice.invalid", port=9999, timeout=1.9, connect_timeout=1.0, dial_retries=0)
        self.assertIn("timed out after 1s", str(cm.exception))

    def test_a_silent_first_address_leaves_time_for_the_next(self):
        # The first address silent, the second a real node: the first
        # takes its share of connect_timeout, not all of it, and the dial
        # reaches the node.
        d = tempfile.mkdtemp(prefix="python-dial-")
        self.addCleanup(shutil.rmtree, d, True)
        s = SingleNode(os.path.join(d, "data")).start()
        self.addCleanup(s.kill)
        lis, fill = black_hole()
        self.addCleanup(lis.close)
        for f in fill:
            self.addCleanup(f.close)
        infos = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", lis.getsockname()),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", s.port)),
        ]
        with mock.patch.object(socket, "getaddrinfo", lambda *a, **kw: list(infos)):
            c = KVClient(host="twice.invalid", port=s.port, timeout=30, connect_timeout=1.0, dial_retries=0)
        self.addCleanup(c.close)
        c.Set("k", "v")
        self.assertEqual(c.Get("k"), "v")


if __name__ == "__main__":
    unittest.main()


class CloseDuringDialTest(unittest.TestCase):
    """close() from another thread ends a call that is still dialling, as
    the Go client's Close ends its dial: the call ended only once its
    connect_timeout ran out."""

    def close_during_dial(self, **kw):
        out = []

        def call(c):
            try:
                c.Set("k", "v")
            except dkv.DKVError as e:
                out.append(e)

        c = KVClient(connect=False, timeout=60, connect_timeout=30, dial_retries=0, **kw)
        t = threading.Thread(target=call, args=(c,))
        t.start()
        time.sleep(0.3)  # in the dial by now
        c.close()
        t.join(10)
        self.assertFalse(t.is_alive(), "the call did not end within 10 s of close()")
        self.assertEqual(len(out), 1)
        self.assertIsInstance(out[0], dkv.ClientClosed)

    def test_tcp_connect(self):
        lis, fill = black_hole()
        self.addCleanup(lis.close)
        for s in fill:
            self.addCleanup(s.close)
        self.close_during_dial(port=lis.getsockname()[1])

    def test_tls_handshake(self):
        # A listener that takes the connection (its backlog does) and
        # never answers the handshake.
        lis = socket.socket()
        lis.bind(("127.0.0.1", 0))
        lis.listen(8)
        self.addCleanup(lis.close)
        self.close_during_dial(port=lis.getsockname()[1], ssl_context=ssl.create_default_context())

    def test_as_the_dial_ends(self):
        # close() just as the dial returns, before the password goes out
        # (it found neither the dial nor a connection to wake): the call
        # ends with ClientClosed, and not even the password is sent. The
        # real dial runs; close() is called as it returns.
        from dkv import client as client_module

        def silent(server, n, sock, rfile):
            while server.read_request(rfile) is not None:
                pass

        with FakeServer(silent) as fake:
            c = KVClient(port=fake.port, timeout=10, password="pw", connect=False)
            real = client_module.dial

            def dial_then_close(*a, **kw):
                out = real(*a, **kw)
                c.close()
                return out

            with mock.patch.object(client_module, "dial", dial_then_close):
                self.assertRaises(dkv.ClientClosed, c.Set, "k", "v")
            time.sleep(0.2)  # a password would have arrived by now
            self.assertEqual(fake.ops(), [])
