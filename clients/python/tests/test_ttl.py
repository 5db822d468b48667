"""Keys that expire: Set(..., ttl_ms=N), the lease calls SetIfAbsent,
SetIfExists and CompareAndSwap with ttl_ms, and TTL(key) (seconds left,
None without a deadline, NotFound for a missing key), against a real
single node (KVClient, a pipeline), a real 3-node cluster
(ClusterKVClient) and a real mesh (which refuses both); the arguments'
checks, and what goes over the wire, against fake servers."""

import shutil
import tempfile
import time
import unittest

import nodeproc  # noqa: F401  (puts the client on sys.path)
from fakeserver import FakeServer, echo_handler, error_for, ok_for, reply
from nodeproc import Cluster, Mesh, SingleNodeTestCase

import dkv
from dkv import ClusterKVClient, KVClient


def wait_gone(test, c, key, within=5.0):
    """Polls until Get(key) is None; returns the seconds that took."""
    began = time.monotonic()
    while True:
        v = c.Get(key)
        if v is None:
            return time.monotonic() - began
        if time.monotonic() - began > within:
            test.fail("%s is still there (%r) %ss on" % (key, v, within))
        time.sleep(0.005)


def check_ttl(test, c):
    """Set with ttl_ms, TTL and the lease calls on c, a client of an empty
    store of a real server."""
    # A key that expires: seen until its deadline, gone after.
    began = time.monotonic()
    test.assertIsNone(c.Set("short", "v", ttl_ms=50))
    left = c.TTL("short")
    test.assertIsInstance(left, float)
    test.assertTrue(0.0 <= left <= 0.05, left)
    wait_gone(test, c, "short")
    # The server counts whole milliseconds: it may delete one early.
    test.assertGreaterEqual(time.monotonic() - began, 0.049)
    with test.assertRaises(dkv.NotFound):
        c.TTL("short")

    # Without a deadline: None; a missing key: NotFound.
    c.Set("plain", "v")
    test.assertIsNone(c.TTL("plain"))
    with test.assertRaises(dkv.NotFound) as cm:
        c.TTL("missing")
    test.assertEqual(cm.exception.code, "not_found")

    # A long ttl counts down; a plain Set, a BulkSet and a Delete replace
    # the deadline.
    c.Set("long", "v", ttl_ms=3600 * 1000)
    test.assertTrue(3540 < c.TTL("long") <= 3600, c.TTL("long"))
    c.Set("long", "w")
    test.assertIsNone(c.TTL("long"))
    c.Set("long", "v", ttl_ms=3600 * 1000)
    c.BulkSet([("long", "x")])
    test.assertIsNone(c.TTL("long"))
    c.Set("long", "v", ttl_ms=30)
    c.Delete("long")
    c.Set("long", "again")
    time.sleep(0.06)
    test.assertEqual(c.Get("long"), "again")
    test.assertIsNone(c.TTL("long"))
    # The longest ttl passes.
    c.Set("decade", "v", ttl_ms=dkv.TTL_MS_MAX)
    test.assertTrue(dkv.TTL_MS_MAX / 1000.0 - 60 < c.TTL("decade") <= dkv.TTL_MS_MAX / 1000.0)

    # A lease: taken by one, refused to another while it lasts, renewed
    # only by its holder, free once it expires.
    test.assertIs(c.SetIfAbsent("lease", "a", ttl_ms=2000), True)
    test.assertTrue(0 < c.TTL("lease") <= 2.0)
    test.assertIs(c.SetIfAbsent("lease", "b", ttl_ms=3600 * 1000), False)
    test.assertIs(c.CompareAndSwap("lease", "b", "b", ttl_ms=3600 * 1000), False)
    test.assertTrue(c.TTL("lease") <= 2.0)  # the refusals left the deadline alone
    test.assertIs(c.CompareAndSwap("lease", "a", "a", ttl_ms=3600 * 1000), True)
    test.assertTrue(3540 < c.TTL("lease") <= 3600)
    test.assertIs(c.SetIfExists("lease", "a", ttl_ms=50), True)
    wait_gone(test, c, "lease")
    test.assertIs(c.SetIfExists("lease", "a", ttl_ms=50), False)
    test.assertIs(c.set_if_absent("lease", "b", ttl_ms=3600 * 1000), True)
    test.assertIs(c.CompareAndDelete("lease", "b"), True)

    # The snake_case names are the same calls.
    c.set("snake", "v", ttl_ms=3600 * 1000)
    test.assertTrue(3540 < c.ttl("snake") <= 3600)
    test.assertIs(c.compare_and_swap("snake", "v", "w", ttl_ms=60 * 1000), True)
    test.assertTrue(c.ttl("snake") <= 60)


class TTLOnSingleNodeTest(SingleNodeTestCase):

    def test_expiry_ttl_and_leases(self):
        check_ttl(self, self.client())

    def test_cluster_client_on_a_single_node(self):
        with ClusterKVClient(kv_ports=[self.node.port], timeout=20) as c:
            check_ttl(self, c)

    def test_in_a_pipeline(self):
        c = self.client()
        p = c.pipeline()
        p.Set("a", "1", ttl_ms=3600 * 1000).TTL("a").Set("b", "2").TTL("b").TTL("nope")
        p.SetIfAbsent("a", "x", ttl_ms=10).SetIfAbsent("c", "3", ttl_ms=3600 * 1000)
        out = p.execute(raise_on_error=False)
        self.assertIsNone(out[0])
        self.assertTrue(3540 < out[1] <= 3600, out[1])
        self.assertEqual(out[2:4], [None, None])
        self.assertIsInstance(out[4], dkv.NotFound)
        self.assertEqual(out[5:], [False, True])

    def test_the_server_refuses_a_bad_raw_ttl(self):
        # The client's checks stand in front of the server's; a raw
        # request reaches the server, which refuses it the same way.
        c = self.client()
        for ttl_ms in (0, dkv.TTL_MS_MAX + 1):
            with self.subTest(ttl_ms=ttl_ms), self.assertRaises(dkv.BadRequest):
                c.request({"op": "set", "key": "k", "value": "v", "ttl_ms": ttl_ms})
        with self.assertRaises(dkv.BadRequest):
            c.request({"op": "delete", "key": "k", "ttl_ms": 5})
        self.assertIsNone(c.Get("k"))
        self.assertEqual(c.request({"op": "set", "key": "k", "value": "v", "ttl_ms": 60000})["ok"], True)
        resp = c.request({"op": "ttl", "key": "k"})
        self.assertTrue(59000 < resp["ttl_ms"] <= 60000, resp)


class TTLOnClusterTest(unittest.TestCase):
    """ClusterKVClient on a real 3-node cluster, found through a follower's
    redirect: the leader's clock decides."""

    def setUp(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-ttl-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        self.cluster = Cluster(d)
        self.addCleanup(self.cluster.kill_all)
        self.cluster.start_all()
        leader, _ = self.cluster.wait_leader()
        follower = (leader + 1) % 3
        self.ports = [self.cluster.kv_ports[follower]] + [p for i, p in enumerate(self.cluster.kv_ports) if i != follower]

    def test_expiry_ttl_and_leases(self):
        with ClusterKVClient(kv_ports=self.ports, timeout=20) as c:
            check_ttl(self, c)


class TTLRefusedByAMeshTest(unittest.TestCase):
    """A real 2-node mesh refuses ttl_ms and ttl with not_implemented:
    raised, never False, and nothing written."""

    def test_refused(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-ttl-mesh-")
        self.addCleanup(shutil.rmtree, d, True)
        mesh = Mesh(d)
        self.addCleanup(mesh.kill_all)
        mesh.start_all()
        with KVClient(port=mesh.kv_ports[0], timeout=20) as c:
            for name, call in [
                ("Set", lambda: c.Set("k", "v", ttl_ms=1000)),
                ("SetIfAbsent", lambda: c.SetIfAbsent("k", "v", ttl_ms=1000)),
                ("CompareAndSwap", lambda: c.CompareAndSwap("k", "v", "w", ttl_ms=1000)),
            ]:
                with self.subTest(name):
                    with self.assertRaises(dkv.NotImplementedByServer) as cm:
                        call()
                    self.assertEqual(cm.exception.code, "not_implemented")
            self.assertIsNone(c.Get("k"))
            c.Set("k", "v")
            with self.assertRaises(dkv.NotImplementedByServer):
                c.TTL("k")
            self.assertEqual(c.Get("k"), "v")


def ttl_server(server, n, sock, rfile):
    """Answers ttl of "k" with 1500 ms left, of "plain" with no ttl_ms, of
    "due" with 0, of "bad" with a ttl_ms that is not a count, of anything
    else not_found; every other request ok."""
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        if req["op"] != "ttl":
            reply(sock, ok_for(req))
        elif req["key"] == "k":
            reply(sock, ok_for(req, ttl_ms=1500))
        elif req["key"] == "plain":
            reply(sock, ok_for(req))
        elif req["key"] == "due":
            reply(sock, ok_for(req, ttl_ms=0))
        elif req["key"] == "bad":
            reply(sock, ok_for(req, ttl_ms="soon"))
        else:
            reply(sock, error_for(req, "not_found"))


class TTLWireTest(unittest.TestCase):
    def test_arguments_are_checked_before_sending(self):
        with FakeServer(echo_handler) as fake, KVClient(port=fake.port, timeout=5) as c:
            for bad in (0, -1, dkv.TTL_MS_MAX + 1):
                for call in (
                    lambda: c.Set("k", "v", ttl_ms=bad),
                    lambda: c.SetIfAbsent("k", "v", ttl_ms=bad),
                    lambda: c.SetIfExists("k", "v", ttl_ms=bad),
                    lambda: c.CompareAndSwap("k", "v", "w", ttl_ms=bad),
                ):
                    with self.subTest(ttl_ms=bad):
                        self.assertRaises(ValueError, call)
            for bad in (1.5, "10", True, b"10"):
                with self.subTest(ttl_ms=bad):
                    self.assertRaises(TypeError, c.Set, "k", "v", ttl_ms=bad)
                    self.assertRaises(TypeError, c.SetIfAbsent, "k", "v", ttl_ms=bad)
            self.assertRaises(TypeError, c.TTL, b"k")
            self.assertRaises(ValueError, c.pipeline().Set, "k", "v", ttl_ms=0)
            self.assertEqual(fake.requests, [])

    def test_what_is_sent(self):
        with FakeServer(echo_handler) as fake, KVClient(port=fake.port, timeout=5) as c:
            c.Set("k", "v", ttl_ms=1)
            c.Set("k", "v", ttl_ms=dkv.TTL_MS_MAX)
            c.Set("k", "v")
            c.Set("k", "v", ttl_ms=None)
            c.SetIfAbsent("lease", "me", ttl_ms=30000)
            c.SetIfExists("lease", "me", ttl_ms=5)
            c.CompareAndSwap("lease", "me", "me", ttl_ms=60000)
            c.SetIfAbsent("lock", "me")
            got = [{k: v for k, v in r.items() if k != "id"} for r in fake.requests]
        self.assertEqual(
            got,
            [
                {"op": "set", "key": "k", "value": "v", "ttl_ms": 1},
                {"op": "set", "key": "k", "value": "v", "ttl_ms": dkv.TTL_MS_MAX},
                {"op": "set", "key": "k", "value": "v"},
                {"op": "set", "key": "k", "value": "v"},
                {"op": "set", "key": "lease", "value": "me", "ttl_ms": 30000, "if_absent": True},
                {"op": "set", "key": "lease", "value": "me", "ttl_ms": 5, "if_exists": True},
                {"op": "set", "key": "lease", "value": "me", "ttl_ms": 60000, "if_value": "me"},
                {"op": "set", "key": "lock", "value": "me", "if_absent": True},
            ],
        )

    def test_answers(self):
        with FakeServer(ttl_server) as fake, KVClient(port=fake.port, timeout=5) as c:
            self.assertEqual(c.TTL("k"), 1.5)
            self.assertIsNone(c.TTL("plain"))
            self.assertEqual(c.TTL("due"), 0.0)
            with self.assertRaises(dkv.NotFound):
                c.TTL("nope")
            with self.assertRaises(dkv.ProtocolError):
                c.TTL("bad")
            self.assertEqual(fake.requests[0], {"id": fake.requests[0]["id"], "op": "ttl", "key": "k"})

    def test_ttl_is_a_read_retried_once(self):
        # The first connection drops the ttl unanswered; a read goes again
        # on a new connection.
        def drops_first(server, n, sock, rfile):
            if n == 0:
                server.read_request(rfile)
                return
            ttl_server(server, n, sock, rfile)

        with FakeServer(drops_first) as fake, KVClient(port=fake.port, timeout=5) as c:
            self.assertEqual(c.TTL("k"), 1.5)
            self.assertEqual(fake.ops(), ["ttl", "ttl"])

    def test_cluster_ttl_is_a_read_and_set_a_write_of_the_session(self):
        with FakeServer(ttl_server) as leader:
            def follower(server, n, sock, rfile):
                while True:
                    req = server.read_request(rfile)
                    if req is None:
                        return
                    reply(sock, error_for(req, "not_leader", leader="127.0.0.1:%d" % leader.port))

            with FakeServer(follower) as f, ClusterKVClient(kv_ports=[f.port, leader.port], timeout=5) as c:
                c.Set("k", "v", ttl_ms=90000)
                self.assertIs(c.SetIfAbsent("lease", "me", ttl_ms=1000), True)
                self.assertEqual(c.TTL("k"), 1.5)
                with self.assertRaises(dkv.NotFound) as cm:
                    c.TTL("nope")
                self.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)
            sets = [r for r in leader.requests if r["op"] == "set"]
            self.assertEqual([(r["seq"], r["ttl_ms"]) for r in sets], [(1, 90000), (2, 1000)])
            self.assertTrue(all(r["client_id"] == sets[0]["client_id"] for r in sets))
            for r in leader.requests:
                if r["op"] == "ttl":
                    self.assertFalse({"client_id", "seq", "acked"} & set(r), r)


if __name__ == "__main__":
    unittest.main()
