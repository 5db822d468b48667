"""Incr(key, delta=1): the counter a key holds moved by delta and its new
value returned, against a real single node (KVClient, a pipeline,
ClusterKVClient), a real 3-node cluster and a real mesh (which refuses
it); NotInteger and Overflow; the arguments' checks, the requests' bytes,
the answers, a KVClient that never sends an incr twice and a
ClusterKVClient that retries one in its session, against fake servers."""

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

MAX = dkv.INT64_MAX
MIN = dkv.INT64_MIN


def check_incr(test, c):
    """Incr on c, a client of an empty store of a real server."""

    def refused(cls, key, delta=1):
        with test.assertRaises(cls) as cm:
            c.Incr(key, delta)
        test.assertEqual(cm.exception.code, cls.code)
        test.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)

    # A missing key counts as 0; the sum is stored in decimal, as Get
    # reads it. delta defaults to 1; 0 answers the counter.
    test.assertEqual(c.Incr("hits"), 1)
    test.assertEqual(c.Incr("hits"), 2)
    test.assertEqual(c.Get("hits"), "2")
    test.assertEqual(c.Incr("hits", -5), -3)
    test.assertEqual(c.Incr("hits", delta=0), -3)
    test.assertEqual(c.Get("hits"), "-3")
    test.assertEqual(c.Incr("down", -1), -1)
    # A counter written by hand, in the one spelling of its number.
    c.Set("n", "41")
    test.assertEqual(c.Incr("n"), 42)

    # Anything else is no counter: refused, whatever the delta, and left
    # as it was.
    for v in ("", "abc", "1.5", "+1", "01", "-0", " 1", "1 ", "1e3", "9223372036854775808"):
        c.Set("bad", v)
        refused(dkv.NotInteger, "bad")
        refused(dkv.NotInteger, "bad", 0)
        test.assertEqual(c.Get("bad"), v)

    # The ends of the 64-bit range are reached, never passed.
    test.assertEqual(c.Incr("max", MAX), MAX)
    refused(dkv.Overflow, "max")
    refused(dkv.Overflow, "max", MAX)
    test.assertEqual(c.Get("max"), str(MAX))
    test.assertEqual(c.Incr("min", MIN), MIN)
    refused(dkv.Overflow, "min", -1)
    test.assertEqual(c.Get("min"), str(MIN))
    test.assertEqual(c.Incr("min", MAX), -1)

    # The key keeps its deadline, and one without stays without.
    c.Set("leased", "7", ttl_ms=3600 * 1000)
    test.assertEqual(c.Incr("leased", 3), 10)
    test.assertTrue(3540 < c.TTL("leased") <= 3600, c.TTL("leased"))
    test.assertIsNone(c.TTL("hits"))
    # A counter that expires goes at its deadline, and counts from 0
    # again, for good.
    c.Set("short", "5", ttl_ms=300)
    n = c.Incr("short")
    if n == 1:
        return  # a machine so slow that the deadline passed first
    test.assertEqual(n, 6)
    wait_gone(test, c, "short")
    test.assertEqual(c.Incr("short"), 1)
    test.assertIsNone(c.TTL("short"))

    # The snake_case name is the same call.
    test.assertEqual(c.incr("hits", 4), 1)


class IncrOnSingleNodeTest(SingleNodeTestCase):

    def test_incr(self):
        check_incr(self, self.client())

    def test_cluster_client_on_a_single_node(self):
        with ClusterKVClient(kv_ports=[self.node.port], timeout=20) as c:
            check_incr(self, c)

    def test_in_a_pipeline(self):
        c = self.client()
        c.Set("w", "word")
        p = c.pipeline()
        p.Incr("a").Incr("a", 10).Incr("w").Get("a").Incr("a", -11)
        out = p.execute(raise_on_error=False)
        self.assertEqual(out[:2], [1, 11])
        self.assertIsInstance(out[2], dkv.NotInteger)
        self.assertEqual(out[3:], ["11", 0])

    def test_raw_incr(self):
        # The client always sends a delta; the server takes its absence as
        # 1, and refuses one of another type or out of the range, as the
        # client's own checks do before sending.
        c = self.client()
        self.assertEqual(c.request({"op": "incr", "key": "k"})["value"], "1")
        self.assertEqual(c.request({"op": "incr", "key": "k", "delta": -3})["value"], "-2")
        for req in (
            {"op": "incr", "key": "k", "delta": "5"},
            {"op": "incr", "key": "k", "delta": 1.5},
            {"op": "incr", "key": "k", "delta": None},
            {"op": "incr", "key": "k", "delta": MAX + 1},
            {"op": "incr", "key": ""},
            {"op": "set", "key": "k", "value": "1", "delta": 5},
        ):
            with self.subTest(req=req), self.assertRaises(dkv.BadRequest):
                c.request(req)
        self.assertEqual(c.Get("k"), "-2")
        c.Set("w", "word")
        with self.assertRaises(dkv.NotInteger):
            c.request({"op": "incr", "key": "w"})


class IncrOnClusterTest(unittest.TestCase):
    """ClusterKVClient on a real 3-node cluster, found through a follower's
    redirect; and the cluster's promise that ClusterKVClient's retries
    rest on: the retry of an incr in a session is answered as the first
    attempt was, and counts once."""

    def test_incr(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-incr-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        cluster = Cluster(d)
        self.addCleanup(cluster.kill_all)
        cluster.start_all()
        leader, _ = cluster.wait_leader()
        follower = (leader + 1) % 3
        ports = [cluster.kv_ports[follower]] + [p for i, p in enumerate(cluster.kv_ports) if i != follower]
        with ClusterKVClient(kv_ports=ports, timeout=20) as c:
            check_incr(self, c)
            leader_addr = c.leader()
        host, port = leader_addr.rsplit(":", 1)
        with KVClient(host, int(port), timeout=20) as k:
            session = {"client_id": 4242, "acked": 1}
            for _ in range(2):
                resp = k.request(dict(session, op="incr", key="r", delta=5, seq=1))
                self.assertEqual(resp["value"], "5")
            k.Set("w", "word")
            with self.assertRaises(dkv.NotInteger):
                k.request(dict(session, op="incr", key="w", seq=2))
            k.Set("w", "1")  # a counter now, but the retry is of the refused incr
            with self.assertRaises(dkv.NotInteger):
                k.request(dict(session, op="incr", key="w", seq=2))
            self.assertEqual((k.Get("r"), k.Get("w")), ("5", "1"))


class IncrRefusedByAMeshTest(unittest.TestCase):
    """A real 2-node mesh refuses incr with not_implemented, even from a
    client that has met it (whose other writes carry its stamp), and
    nothing is written."""

    def test_refused(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-incr-mesh-")
        self.addCleanup(shutil.rmtree, d, True)
        mesh = Mesh(d)
        self.addCleanup(mesh.kill_all)
        mesh.start_all()
        with KVClient(port=mesh.kv_ports[0], timeout=20) as c:
            c.Set("k", "1")
            self.assertNotEqual(c.stamp(), "")
            for key in ("k", "missing"):
                with self.subTest(key):
                    with self.assertRaises(dkv.NotImplementedByServer) as cm:
                        c.Incr(key)
                    self.assertEqual(cm.exception.code, "not_implemented")
            self.assertEqual(c.Get("k"), "1")
            self.assertIsNone(c.Get("missing"))


def incr_server(server, n, sock, rfile):
    """Counts incrs in a dict, as a server does; answers an incr of "word"
    not_integer, of "max" overflow, of "none" ok without a value, of
    "raw:V" ok with the value V as is; every other request ok."""
    counters = server.__dict__.setdefault("counters", {})
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        key = req.get("key", "")
        if req["op"] != "incr":
            reply(sock, ok_for(req))
        elif key == "word":
            reply(sock, error_for(req, "not_integer"))
        elif key == "max":
            reply(sock, error_for(req, "overflow"))
        elif key == "none":
            reply(sock, ok_for(req))
        elif key.startswith("raw:"):
            reply(sock, ok_for(req, value=req["key"][4:]))
        else:
            counters[key] = counters.get(key, 0) + req.get("delta", 1)
            reply(sock, ok_for(req, value=str(counters[key])))


def answers_outcome_unknown(server, n, sock, rfile):
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        reply(sock, error_for(req, "outcome_unknown", "proposed, fate unknown"))


class IncrWireTest(unittest.TestCase):
    def test_arguments_are_checked_before_sending(self):
        with FakeServer(echo_handler) as fake, KVClient(port=fake.port, timeout=5) as c:
            for bad in (MAX + 1, MIN - 1, 1 << 64):
                with self.subTest(delta=bad):
                    self.assertRaises(ValueError, c.Incr, "k", bad)
            for bad in (None, 1.0, "1", True, False, b"1"):
                with self.subTest(delta=bad):
                    self.assertRaises(TypeError, c.Incr, "k", bad)
            self.assertRaises(TypeError, c.Incr)
            self.assertRaises(TypeError, c.Incr, b"k")
            self.assertRaises(TypeError, c.Incr, None, 1)
            self.assertRaises(ValueError, c.pipeline().Incr, "k", MAX + 1)
            self.assertEqual(fake.requests, [])

    def test_what_is_sent(self):
        # The delta always, the default 1 too; no mesh stamp, which a mesh
        # would take for a field incr does not use, though a set carries
        # it.
        with FakeServer(incr_server) as fake, KVClient(port=fake.port, timeout=5) as c:
            self.assertEqual(c.Incr("k"), 1)
            self.assertEqual(c.Incr("k", 0), 1)
            self.assertEqual(c.Incr("k", MIN), MIN + 1)
            self.assertEqual(c.Incr("j", MAX), MAX)
            c.observe_stamp("1764700000123456789.0.0")
            c.Set("k", "v")
            self.assertEqual(c.Incr("j", -MAX), 0)
            self.assertEqual(c.pipeline().Incr("j", 7).execute(), [7])
            got = [{k: v for k, v in r.items() if k != "id"} for r in fake.requests]
        self.assertEqual(
            got,
            [
                {"op": "incr", "key": "k", "delta": 1},
                {"op": "incr", "key": "k", "delta": 0},
                {"op": "incr", "key": "k", "delta": MIN},
                {"op": "incr", "key": "j", "delta": MAX},
                {"op": "set", "key": "k", "value": "v", "after": "1764700000123456789.0.0"},
                {"op": "incr", "key": "j", "delta": -MAX},
                {"op": "incr", "key": "j", "delta": 7},
            ],
        )

    def test_answers(self):
        with FakeServer(incr_server) as fake, KVClient(port=fake.port, timeout=5) as c:
            self.assertEqual(c.Incr("raw:-3"), -3)
            self.assertEqual(c.Incr("raw:" + str(MAX)), MAX)
            self.assertEqual(c.Incr("raw:" + str(MIN)), MIN)
            with self.assertRaises(dkv.NotInteger) as cm:
                c.Incr("word")
            self.assertEqual((cm.exception.code, cm.exception.op), ("not_integer", "incr"))
            with self.assertRaises(dkv.Overflow) as cm:
                c.Incr("max")
            self.assertEqual(cm.exception.code, "overflow")
            # A value that is no 64-bit integer: the incr applied, but its
            # answer cannot be read.
            # (5,000 digits: past Python's int() limit, a ValueError once.)
            for key in ("none", "raw:", "raw:abc", "raw:1.5", "raw: 5", "raw:5_0", "raw:\uff15", "raw:" + str(MAX + 1), "raw:" + "1" * 5000):
                with self.subTest(key):
                    with self.assertRaises(dkv.ProtocolError) as cm:
                        c.Incr(key)
                    if key != "none":
                        self.assertIn(repr(key[4:])[:150], str(cm.exception))

    def test_not_sent_twice(self):
        # The first connection drops the incr unanswered: it may have
        # applied, so a KVClient raises UnknownOutcome rather than count
        # again; its next call goes out on a new connection.
        def drops_first(server, n, sock, rfile):
            if n == 0:
                server.read_request(rfile)
                return
            incr_server(server, n, sock, rfile)

        with FakeServer(drops_first) as fake, KVClient(port=fake.port, timeout=5) as c:
            with self.assertRaises(dkv.UnknownOutcome) as cm:
                c.Incr("k", 5)
            self.assertEqual(cm.exception.op, "incr")
            self.assertNotIsInstance(cm.exception, ConnectionError)
            self.assertEqual(len(fake.requests), 1)
            self.assertEqual(c.Incr("k", 5), 5)
            self.assertEqual([r["op"] for r in fake.requests], ["incr", "incr"])

    def test_cluster_sends_it_as_a_write_of_the_session(self):
        with FakeServer(incr_server) as leader:

            def follower(server, n, sock, rfile):
                while True:
                    req = server.read_request(rfile)
                    if req is None:
                        return
                    reply(sock, error_for(req, "not_leader", leader="127.0.0.1:%d" % leader.port))

            with FakeServer(follower) as f, ClusterKVClient(kv_ports=[f.port, leader.port], timeout=5) as c:
                self.assertEqual(c.Incr("k"), 1)
                self.assertEqual(c.Incr("k", -3), -2)
                self.assertEqual(c.incr("k", 2), 0)
            got = [(r["op"], r["seq"], r["delta"]) for r in leader.requests]
            self.assertEqual(got, [("incr", 1, 1), ("incr", 2, -3), ("incr", 3, 2)])
            self.assertTrue(all(r["client_id"] == leader.requests[0]["client_id"] for r in leader.requests))
            self.assertEqual([(r["op"], r["seq"]) for r in f.requests], [("incr", 1)])

    def test_cluster_retries_under_one_seq(self):
        # The first node breaks the connection under the incr, or answers
        # outcome_unknown; the retry at the next node is the same write
        # (one client_id, seq and delta), and its answer is the call's.
        def drops(server, n, sock, rfile):
            server.read_request(rfile)

        for name, first in [("dropped", drops), ("outcome_unknown", answers_outcome_unknown)]:
            with self.subTest(name):
                with FakeServer(first) as a, FakeServer(incr_server) as b:
                    with ClusterKVClient(kv_ports=[a.port, b.port], timeout=5) as c:
                        self.assertEqual(c.Incr("k", 7), 7)
                    self.assertEqual((len(a.requests), len(b.requests)), (1, 1))
                    ra, rb = a.requests[0], b.requests[0]
                    strip = lambda r: {k: v for k, v in r.items() if k != "id"}  # noqa: E731
                    self.assertEqual(strip(ra), strip(rb))
                    self.assertEqual((rb["seq"], rb["delta"]), (1, 7))

    def test_cluster_refusal_after_an_unknown_outcome_is_certain(self):
        # The first node's attempt ends of unknown outcome; the retry at the
        # next node is refused, a refusal the cluster keeps in the session:
        # NotInteger or Overflow, not UnknownOutcome, and no further attempt.
        for key, cls in [("word", dkv.NotInteger), ("max", dkv.Overflow)]:
            with self.subTest(key):
                with FakeServer(answers_outcome_unknown) as a, FakeServer(incr_server) as b:
                    with ClusterKVClient(kv_ports=[a.port, b.port], timeout=5) as c:
                        with self.assertRaises(cls) as cm:
                            c.Incr(key)
                        self.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)
                    self.assertEqual((len(a.requests), len(b.requests)), (1, 1))
                    self.assertEqual(a.requests[0]["seq"], b.requests[0]["seq"])

    def test_cluster_gives_up_with_unknown_outcome(self):
        with FakeServer(answers_outcome_unknown) as a:
            with ClusterKVClient(kv_ports=[a.port], timeout=5, max_attempts=3) as c:
                began = time.monotonic()
                with self.assertRaises(dkv.UnknownOutcome):
                    c.Incr("k")
                self.assertLess(time.monotonic() - began, 5)
            self.assertEqual([r["seq"] for r in a.requests], [1, 1, 1])


if __name__ == "__main__":
    unittest.main()
