"""TLS, against real cmd/node processes started with --tls-cert/--tls-key
(and --tls-client-ca), with certificates made by cmd/certs: a client with
``ssl_context`` writes and reads, reconnects, pipelines; a certificate
refused on either side, a server without TLS and a client without it fail
at once with typed errors, KVClient and ClusterKVClient alike."""

import os
import shutil
import ssl
import tempfile
import time
import unittest

import nodeproc  # noqa: F401  (puts the client on sys.path)
from fakeserver import FakeServer, assert_close_ends_a_call
from nodeproc import Cluster, SingleNode, make_certs

import dkv
from dkv import ClusterKVClient, KVClient

# A failure that is not retried takes milliseconds; one that is retried, or
# waits for a timeout, takes seconds.
QUICK = 2.0


def tls_context(ca, cert=None, key=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


class TLSTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dkv-pytest-tls-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # The nodes' authority and certificate, and a stranger's authority.
        self.ca, self.cert, self.key = make_certs(os.path.join(self.dir, "certs"))
        self.other_ca, self.other_cert, self.other_key = make_certs(os.path.join(self.dir, "other"))

    def assertQuick(self, began, what):
        took = time.monotonic() - began
        self.assertLess(took, QUICK, "%s took %.2fs: it was retried or waited" % (what, took))


class SingleNodeTLSTest(TLSTestCase):
    def start(self, *extra):
        s = SingleNode(os.path.join(self.dir, "data"), "--tls-cert", self.cert, "--tls-key", self.key, *extra).start()
        self.addCleanup(s.kill)
        return s

    def client(self, s, **kw):
        kw.setdefault("timeout", 20)
        c = KVClient(port=s.port, **kw)
        self.addCleanup(c.close)
        return c

    def test_tls(self):
        s = self.start()
        c = self.client(s, ssl_context=tls_context(self.ca))
        c.Set("k", "v")
        self.assertEqual(c.Get("k"), "v")
        self.assertEqual(c.status()["mode"], "single")
        # A reconnect runs a new handshake.
        c._drop()
        self.assertEqual(c.Get("k"), "v")
        # A batch larger than the socket buffers, and than TLS records:
        # sending and reading interleave over TLS too.
        v = "x" * 20000
        p = c.pipeline()
        for i in range(600):
            p.Set("big%d" % i, v)
        for i in range(0, 600, 7):
            p.Get("big%d" % i)
        r = p.execute()
        self.assertEqual(r[:600], [None] * 600)
        self.assertEqual(r[600:], [v] * len(range(0, 600, 7)))
        # The server restarted: the dead connection is noticed, and the read
        # goes out on a new one.
        s.kill()
        s.start()
        self.assertEqual(c.Get("k"), "v")
        # The certificate checked against another name than the address.
        named = self.client(s, ssl_context=tls_context(self.ca), server_hostname="localhost")
        self.assertEqual(named.Get("k"), "v")

        # A client that trusts another authority: TLSError, at once, not
        # after its dial retries.
        began = time.monotonic()
        with self.assertRaises(dkv.TLSError) as cm:
            KVClient(port=s.port, timeout=20, dial_retries=5, ssl_context=tls_context(self.other_ca))
        self.assertQuick(began, "a refused certificate")
        e = cm.exception
        self.assertEqual(e.reason, "CERTIFICATE_VERIFY_FAILED")
        self.assertEqual(e.addr, "127.0.0.1:%d" % s.port)
        self.assertIsInstance(e.__cause__, ssl.SSLCertVerificationError)
        self.assertNotIsInstance(e, ConnectionError)
        self.assertIn("did not verify", str(e))
        # A name the certificate lacks.
        with self.assertRaises(dkv.TLSError) as cm:
            KVClient(port=s.port, timeout=20, ssl_context=tls_context(self.ca), server_hostname="dkv.example.com")
        self.assertEqual(cm.exception.reason, "CERTIFICATE_VERIFY_FAILED")
        self.assertIn("dkv.example.com", str(cm.exception))
        # A client without TLS is told what the port wants, typed.
        plain = self.client(s)
        with self.assertRaises(dkv.TLSRequired) as cm:
            plain.Set("k", "plain")
        self.assertEqual(cm.exception.code, "tls_required")
        self.assertIsInstance(cm.exception, dkv.TLSError)
        self.assertIsInstance(cm.exception, dkv.ServerError)
        with self.assertRaises(dkv.TLSRequired):
            plain.Get("k")
        began = time.monotonic()
        with self.assertRaises(dkv.TLSRequired):
            with ClusterKVClient(kv_ports=[s.port], timeout=20) as cc:
                cc.Set("k", "plain")
        self.assertQuick(began, "a cluster client without TLS")
        self.assertEqual(c.Get("k"), "v")

    def test_tls_client_of_a_plain_server(self):
        s = SingleNode(os.path.join(self.dir, "data")).start()
        self.addCleanup(s.kill)
        began = time.monotonic()
        with self.assertRaises(dkv.TLSError) as cm:
            KVClient(port=s.port, timeout=20, dial_retries=5, ssl_context=tls_context(self.ca))
        self.assertQuick(began, "TLS to a plain server")
        self.assertIn("does the server speak TLS?", str(cm.exception))

    def test_client_certificate(self):
        s = self.start("--tls-client-ca", self.ca)
        _, client_cert, client_key = make_certs(os.path.join(self.dir, "certs"), "client")
        c = self.client(s, ssl_context=tls_context(self.ca, client_cert, client_key))
        c.Set("k", "v")
        self.assertEqual(c.Get("k"), "v")
        c._drop()
        self.assertEqual(c.Get("k"), "v")
        # TLS 1.3 tells a client of the refusal of its certificate after
        # its handshake: the first call fails, with TLSError, and a write
        # is known not to have been applied (the server read nothing).
        for name, ctx in [
            ("no certificate", tls_context(self.ca)),
            ("another authority's certificate", tls_context(self.ca, self.other_cert, self.other_key)),
        ]:
            with self.subTest(name):
                anon = self.client(s, ssl_context=ctx, dial_retries=5)
                began = time.monotonic()
                with self.assertRaises(dkv.TLSError) as cm:
                    anon.Set("k", "anonymous")
                self.assertQuick(began, "a refused client certificate")
                self.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)
                self.assertIn("certificate", str(cm.exception))
                self.assertIn("--tls-client-ca", str(cm.exception))
                with self.assertRaises(dkv.TLSError):
                    anon.Get("k")
                # A cluster client gives up at once too.
                began = time.monotonic()
                with self.assertRaises(dkv.TLSError):
                    with ClusterKVClient(kv_ports=[s.port], timeout=20, ssl_context=ctx) as cc:
                        cc.Set("k", "anonymous")
                self.assertQuick(began, "a cluster client's refused certificate")
        self.assertEqual(c.Get("k"), "v")


class TLSFakeServerTest(TLSTestCase):
    """A TLS server in the test process that completes the handshake and
    never answers."""

    def silent_tls_server(self):
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(self.cert, self.key)

        def handler(server, n, sock, rfile):
            tls = sctx.wrap_socket(sock, server_side=True)
            while tls.recv(4096):
                pass

        fake = FakeServer(handler)
        self.addCleanup(fake.close)
        return fake

    def test_timeout_and_close_over_tls(self):
        fake = self.silent_tls_server()
        c = KVClient(port=fake.port, timeout=0.3, ssl_context=tls_context(self.ca))
        began = time.monotonic()
        with self.assertRaises(dkv.UnknownOutcome) as cm:
            c.Set("k", "v")
        self.assertTrue(cm.exception.timed_out)
        with self.assertRaises(dkv.RequestTimeout):
            c.Get("k")
        self.assertLess(time.monotonic() - began, 0.6 + 1.0)
        c.close()
        # close() from another thread ends a call in progress.
        assert_close_ends_a_call(self, KVClient(port=fake.port, timeout=10, ssl_context=tls_context(self.ca)))


class ClusterTLSTest(TLSTestCase):
    """A 3-node cluster whose client ports and peer connections speak TLS."""

    def test_cluster_tls(self):
        ctx = tls_context(self.ca)
        cl = Cluster(
            os.path.join(self.dir, "data"),
            3,
            "--tls-cert", self.cert, "--tls-key", self.key,
            "--peer-tls-cert", self.cert, "--peer-tls-key", self.key, "--peer-tls-ca", self.ca,
            ssl_context=ctx,
        )
        self.addCleanup(cl.kill_all)
        cl.start_all()
        leader, _ = cl.wait_leader()
        # Start from a follower: the redirect is followed over TLS.
        follower = (leader + 1) % 3
        ports = [cl.kv_ports[follower]] + [p for i, p in enumerate(cl.kv_ports) if i != follower]
        c = ClusterKVClient(kv_ports=ports, timeout=20, ssl_context=ctx)
        self.addCleanup(c.close)
        c.Set("hello", "world")
        self.assertEqual(c.Get("hello"), "world")
        self.assertEqual(c.leader(), "127.0.0.1:%d" % cl.kv_ports[leader])
        c.BulkSet([("a", "1"), ("b", "2")])
        self.assertEqual([c.Get(k) for k in ("a", "b")], ["1", "2"])

        # Another authority: refused at the first node, at once, rather
        # than tried at every node for the whole timeout.
        began = time.monotonic()
        with self.assertRaises(dkv.TLSError) as cm:
            ClusterKVClient(kv_ports=cl.kv_ports, timeout=20, ssl_context=tls_context(self.other_ca)).close()
        self.assertQuick(began, "a cluster client trusting another authority")
        self.assertEqual(cm.exception.reason, "CERTIFICATE_VERIFY_FAILED")
        late = ClusterKVClient(kv_ports=cl.kv_ports, timeout=20, connect=False, ssl_context=tls_context(self.other_ca))
        self.addCleanup(late.close)
        began = time.monotonic()
        with self.assertRaises(dkv.TLSError):
            late.Set("hello", "stranger")
        self.assertQuick(began, "a call of a cluster client trusting another authority")
        # Without TLS: the nodes say so.
        plain = ClusterKVClient(kv_ports=cl.kv_ports, timeout=20)
        self.addCleanup(plain.close)
        began = time.monotonic()
        with self.assertRaises(dkv.TLSRequired):
            plain.Set("hello", "plain")
        self.assertQuick(began, "a cluster client without TLS")
        self.assertEqual(c.Get("hello"), "world")


class _OneBadCertCluster(Cluster):
    """A Cluster whose node ``bad`` (None: none) serves clients a
    certificate made for another name; its peer TLS is the others'."""

    bad = None
    bad_cert = bad_key = None

    def args(self, i):
        a = Cluster.args(self, i)
        if i == self.bad:
            j = a.index("--tls-cert")
            a[j + 1], a[j + 3] = self.bad_cert, self.bad_key
        return a


class ClusterOneBadCertificateTest(TLSTestCase):
    def test_a_node_whose_certificate_is_refused_is_passed_over(self):
        # One follower's client certificate does not verify (made for
        # another name, as one expired or not yet rotated would fail):
        # ClusterKVClient, given that node first, goes on to the others,
        # as the Go client does, rather than refusing to start and ending
        # every call that tries it first with TLSError.
        _, bad_cert, bad_key = make_certs(os.path.join(self.dir, "certs"), name="elsewhere", hosts="elsewhere.invalid")
        ctx = tls_context(self.ca)
        cl = _OneBadCertCluster(
            os.path.join(self.dir, "data"),
            3,
            "--tls-cert", self.cert, "--tls-key", self.key,
            "--peer-tls-cert", self.cert, "--peer-tls-key", self.key, "--peer-tls-ca", self.ca,
            ssl_context=ctx,
        )
        cl.bad_cert, cl.bad_key = bad_cert, bad_key
        self.addCleanup(cl.kill_all)
        cl.start_all()
        leader, _ = cl.wait_leader()
        # The follower restarts with the refused certificate (a leader
        # with one could not be reached at all).
        bad = (leader + 1) % 3
        cl.bad = bad
        cl.kill(bad)
        cl.launch(bad).ready()
        with self.assertRaises(dkv.TLSError):
            KVClient(port=cl.kv_ports[bad], timeout=20, ssl_context=ctx)
        ports = [cl.kv_ports[bad]] + [p for i, p in enumerate(cl.kv_ports) if i != bad]
        with ClusterKVClient(kv_ports=ports, timeout=20, ssl_context=ctx) as c:
            c.Set("hello", "world")
            self.assertEqual(c.Get("hello"), "world")
        with ClusterKVClient(kv_ports=ports, timeout=20, ssl_context=ctx, connect=False) as c:
            c.Set("hello", "again")
            self.assertEqual(c.Get("hello"), "again")
        # Refused at every node, it is the client's TLS: at once still.
        began = time.monotonic()
        with self.assertRaises(dkv.TLSError):
            ClusterKVClient(kv_ports=ports, timeout=20, ssl_context=tls_context(self.other_ca)).close()
        self.assertQuick(began, "a cluster client trusting another authority")


if __name__ == "__main__":
    unittest.main()
