"""Expire(key, ttl_ms) and Persist(key): a deadline given to a key that
exists, or taken away (True, or whether there was one; None for a missing
key, as Get), against a real single node (KVClient, a pipeline,
ClusterKVClient), a real 3-node cluster and a real mesh (which refuses
both); the arguments' checks, the requests' bytes and the answers against
fake servers."""

import shutil
import tempfile
import time
import unittest

import nodeproc  # noqa: F401  (puts the client on sys.path)
from fakeserver import FakeServer, echo_handler, error_for, ok_for, reply
from nodeproc import Cluster, Mesh, SingleNodeTestCase

import dkv
from dkv import ClusterKVClient, KVClient

from test_ttl import wait_gone


def check_expire(test, c):
    """Expire and Persist on c, a client of an empty store of a real
    server."""
    # A deadline for a key that had none; its value stays.
    c.Set("k", "v")
    test.assertIs(c.Expire("k", 3600 * 1000), True)
    test.assertTrue(3540 < c.TTL("k") <= 3600, c.TTL("k"))
    test.assertEqual(c.Get("k"), "v")
    # A second one replaces the first, shorter or longer.
    test.assertIs(c.Expire("k", 60 * 1000), True)
    test.assertTrue(0 < c.TTL("k") <= 60, c.TTL("k"))
    test.assertIs(c.Expire("k", 7200 * 1000), True)
    test.assertTrue(7140 < c.TTL("k") <= 7200, c.TTL("k"))
    # Persist takes it away and says there was one; a second finds none.
    test.assertIs(c.Persist("k"), True)
    test.assertIsNone(c.TTL("k"))
    test.assertEqual(c.Get("k"), "v")
    test.assertIs(c.Persist("k"), False)
    # Of a set's own deadline too.
    c.Set("leased", "v", ttl_ms=3600 * 1000)
    test.assertIs(c.Persist("leased"), True)
    test.assertIsNone(c.TTL("leased"))

    # A missing key: None, as Get's, and neither call makes it.
    test.assertIsNone(c.Expire("missing", 3600 * 1000))
    test.assertIsNone(c.Persist("missing"))
    test.assertIsNone(c.Get("missing"))

    # The deadline is a deadline: the key goes once it passes, and then is
    # missing to both calls.
    c.Set("short", "v")
    began = time.monotonic()
    test.assertIs(c.Expire("short", 50), True)
    wait_gone(test, c, "short")
    # The server counts whole milliseconds: it may delete one early.
    test.assertGreaterEqual(time.monotonic() - began, 0.049)
    test.assertIsNone(c.Expire("short", 3600 * 1000))
    test.assertIsNone(c.Persist("short"))

    # The longest ttl passes.
    c.Set("decade", "v")
    test.assertIs(c.Expire("decade", dkv.TTL_MS_MAX), True)
    test.assertTrue(dkv.TTL_MS_MAX / 1000.0 - 60 < c.TTL("decade") <= dkv.TTL_MS_MAX / 1000.0)

    # The snake_case names are the same calls.
    test.assertIs(c.expire("decade", 60 * 1000), True)
    test.assertTrue(c.ttl("decade") <= 60)
    test.assertIs(c.persist("decade"), True)
    test.assertIs(c.persist("decade"), False)


class ExpireOnSingleNodeTest(SingleNodeTestCase):

    def test_expire_and_persist(self):
        check_expire(self, self.client())

    def test_cluster_client_on_a_single_node(self):
        with ClusterKVClient(kv_ports=[self.node.port], timeout=20) as c:
            check_expire(self, c)

    def test_in_a_pipeline(self):
        c = self.client()
        p = c.pipeline()
        p.Set("a", "1").Expire("a", 3600 * 1000).TTL("a").Persist("a").Persist("a").TTL("a")
        p.Expire("nope", 1000).Persist("nope")
        out = p.execute()
        self.assertEqual(out[:2], [None, True])
        self.assertTrue(3540 < out[2] <= 3600, out[2])
        self.assertEqual(out[3:], [True, False, None, None, None])

    def test_the_server_refuses_a_bad_raw_expire(self):
        # The client's checks stand in front of the server's; a raw
        # request reaches the server, which refuses it the same way.
        c = self.client()
        c.Set("k", "v")
        for req in (
            {"op": "expire", "key": "k"},
            {"op": "expire", "key": "k", "ttl_ms": 0},
            {"op": "expire", "key": "k", "ttl_ms": dkv.TTL_MS_MAX + 1},
            {"op": "persist", "key": "k", "ttl_ms": 5},
        ):
            with self.subTest(req=req), self.assertRaises(dkv.BadRequest):
                c.request(req)
        self.assertIsNone(c.TTL("k"))
        self.assertIs(c.request({"op": "expire", "key": "k", "ttl_ms": 60000})["ok"], True)
        resp = c.request({"op": "persist", "key": "k"})
        self.assertTrue(59000 < resp["ttl_ms"] <= 60000, resp)
        with self.assertRaises(dkv.NotFound):
            c.request({"op": "persist", "key": "nope"})


class ExpireOnClusterTest(unittest.TestCase):
    """ClusterKVClient on a real 3-node cluster, found through a follower's
    redirect: the leader's clock decides."""

    def test_expire_and_persist(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-expire-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        cluster = Cluster(d)
        self.addCleanup(cluster.kill_all)
        cluster.start_all()
        leader, _ = cluster.wait_leader()
        follower = (leader + 1) % 3
        ports = [cluster.kv_ports[follower]] + [p for i, p in enumerate(cluster.kv_ports) if i != follower]
        with ClusterKVClient(kv_ports=ports, timeout=20) as c:
            check_expire(self, c)


class ExpireRefusedByAMeshTest(unittest.TestCase):
    """A real 2-node mesh refuses expire and persist with not_implemented,
    even from a client that has met it (whose other writes carry its
    stamp), and nothing is written."""

    def test_refused(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-expire-mesh-")
        self.addCleanup(shutil.rmtree, d, True)
        mesh = Mesh(d)
        self.addCleanup(mesh.kill_all)
        mesh.start_all()
        with KVClient(port=mesh.kv_ports[0], timeout=20) as c:
            c.Set("k", "v")
            self.assertNotEqual(c.stamp(), "")
            for name, call in [("Expire", lambda: c.Expire("k", 1000)), ("Persist", lambda: c.Persist("k"))]:
                with self.subTest(name):
                    with self.assertRaises(dkv.NotImplementedByServer) as cm:
                        call()
                    self.assertEqual(cm.exception.code, "not_implemented")
            self.assertEqual(c.Get("k"), "v")


def expire_server(server, n, sock, rfile):
    """Answers expire and persist of "missing" not_found, persist of "k"
    with 1500 ms left, of "bad" with a ttl_ms that is not a count, of
    anything else with no ttl_ms; every other request ok."""
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        if req["op"] not in ("expire", "persist"):
            reply(sock, ok_for(req))
        elif req["key"] == "missing":
            reply(sock, error_for(req, "not_found"))
        elif req["op"] == "persist" and req["key"] == "k":
            reply(sock, ok_for(req, ttl_ms=1500))
        elif req["op"] == "persist" and req["key"] == "bad":
            reply(sock, ok_for(req, ttl_ms="soon"))
        else:
            reply(sock, ok_for(req))


def answers_outcome_unknown(server, n, sock, rfile):
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        reply(sock, error_for(req, "outcome_unknown", "proposed, fate unknown"))


class ExpireWireTest(unittest.TestCase):
    def test_arguments_are_checked_before_sending(self):
        with FakeServer(echo_handler) as fake, KVClient(port=fake.port, timeout=5) as c:
            for bad in (0, -1, dkv.TTL_MS_MAX + 1):
                with self.subTest(ttl_ms=bad):
                    self.assertRaises(ValueError, c.Expire, "k", bad)
            for bad in (None, 1.5, "10", True, b"10"):
                with self.subTest(ttl_ms=bad):
                    self.assertRaises(TypeError, c.Expire, "k", bad)
            self.assertRaises(TypeError, c.Expire)
            self.assertRaises(TypeError, c.Expire, "k")
            self.assertRaises(TypeError, c.Expire, b"k", 1000)
            self.assertRaises(TypeError, c.Persist, b"k")
            self.assertRaises(ValueError, c.pipeline().Expire, "k", 0)
            self.assertEqual(fake.requests, [])

    def test_what_is_sent(self):
        # A client that has met a mesh sends its stamp with the writes a
        # mesh takes, not with these two, which take none.
        with FakeServer(echo_handler) as fake, KVClient(port=fake.port, timeout=5) as c:
            c.Expire("k", 1)
            c.Expire("k", dkv.TTL_MS_MAX)
            c.Persist("k")
            c.observe_stamp("1764700000123456789.0.0")
            c.Set("k", "v")
            c.Expire("k", 30000)
            c.Persist("k")
            c.pipeline().Expire("k", 5).Persist("k").Set("k", "w").execute()
            got = [{k: v for k, v in r.items() if k != "id"} for r in fake.requests]
        stamp = "1764700000123456789.0.0"
        self.assertEqual(
            got,
            [
                {"op": "expire", "key": "k", "ttl_ms": 1},
                {"op": "expire", "key": "k", "ttl_ms": dkv.TTL_MS_MAX},
                {"op": "persist", "key": "k"},
                {"op": "set", "key": "k", "value": "v", "after": stamp},
                {"op": "expire", "key": "k", "ttl_ms": 30000},
                {"op": "persist", "key": "k"},
                {"op": "expire", "key": "k", "ttl_ms": 5},
                {"op": "persist", "key": "k"},
                {"op": "set", "key": "k", "value": "w", "after": stamp},
            ],
        )

    def test_answers(self):
        with FakeServer(expire_server) as fake, KVClient(port=fake.port, timeout=5) as c:
            self.assertIs(c.Expire("k", 1000), True)
            self.assertIsNone(c.Expire("missing", 1000))
            self.assertIs(c.Persist("k"), True)
            self.assertIs(c.Persist("plain"), False)
            self.assertIsNone(c.Persist("missing"))
            with self.assertRaises(dkv.ProtocolError):
                c.Persist("bad")
            # A raw request's not_found is the server's error.
            with self.assertRaises(dkv.NotFound):
                c.request({"op": "persist", "key": "missing"})

    def test_not_sent_twice(self):
        # The first connection drops each request unanswered: a write that
        # left is UnknownOutcome, never sent again by a KVClient.
        def drops_first(server, n, sock, rfile):
            if n == 0:
                server.read_request(rfile)
                return
            expire_server(server, n, sock, rfile)

        for name, call in [("Expire", lambda c: c.Expire("k", 1000)), ("Persist", lambda c: c.Persist("k"))]:
            with self.subTest(name):
                with FakeServer(drops_first) as fake, KVClient(port=fake.port, timeout=5) as c:
                    with self.assertRaises(dkv.UnknownOutcome):
                        call(c)
                    self.assertEqual(len(fake.requests), 1)

    def test_cluster_sends_them_as_writes_of_the_session(self):
        with FakeServer(expire_server) as leader:
            def follower(server, n, sock, rfile):
                while True:
                    req = server.read_request(rfile)
                    if req is None:
                        return
                    reply(sock, error_for(req, "not_leader", leader="127.0.0.1:%d" % leader.port))

            with FakeServer(follower) as f, ClusterKVClient(kv_ports=[f.port, leader.port], timeout=5) as c:
                self.assertIs(c.Expire("k", 90000), True)
                self.assertIs(c.Persist("k"), True)
                self.assertIs(c.Persist("plain"), False)
                self.assertIsNone(c.Expire("missing", 1000))
            got = [(r["op"], r["seq"], r.get("ttl_ms")) for r in leader.requests]
            self.assertEqual(got, [("expire", 1, 90000), ("persist", 2, None), ("persist", 3, None), ("expire", 4, 1000)])
            self.assertTrue(all(r["client_id"] == leader.requests[0]["client_id"] for r in leader.requests))
            self.assertEqual([(r["op"], r["seq"]) for r in f.requests], [("expire", 1)])

    def test_cluster_not_found_after_an_unknown_outcome_is_certain(self):
        # The first node's attempt ends of unknown outcome; the retry at the
        # next node is answered not_found, which the cluster keeps in the
        # session: None, not UnknownOutcome, and no further attempt; a raw
        # request raises the NotFound itself.
        def raw(c):
            with self.assertRaises(dkv.NotFound) as cm:
                c.request({"op": "expire", "key": "missing", "ttl_ms": 5})
            self.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)

        for name, call in [
            ("Expire", lambda c: self.assertIsNone(c.Expire("missing", 1000))),
            ("Persist", lambda c: self.assertIsNone(c.Persist("missing"))),
            ("request", raw),
        ]:
            with self.subTest(name):
                with FakeServer(answers_outcome_unknown) as a, FakeServer(expire_server) as b:
                    with ClusterKVClient(kv_ports=[a.port, b.port], timeout=5) as c:
                        call(c)
                    self.assertEqual((len(a.requests), len(b.requests)), (1, 1))
                    ra, rb = a.requests[0], b.requests[0]
                    self.assertEqual((ra["client_id"], ra["seq"]), (rb["client_id"], rb["seq"]))
                    self.assertEqual(rb["seq"], 1)

if __name__ == "__main__":
    unittest.main()
