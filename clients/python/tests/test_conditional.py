"""Conditional writes: SetIfAbsent, SetIfExists, CompareAndSwap and
CompareAndDelete (True when applied, False when the condition did not
hold), ConditionFailed with the key's current value from a raw request,
against a real single node (KVClient, a pipeline, ClusterKVClient) and a
race of clients for one key; a mesh's refusal, and the cluster client's
retry of a write of unknown outcome answered condition_failed, against
fake servers."""

import shutil
import tempfile
import threading
import unittest

import nodeproc  # noqa: F401  (puts the client on sys.path)
from fakeserver import FakeServer, error_for, ok_for, reply
from nodeproc import Cluster, SingleNodeTestCase

import dkv
from dkv import ClusterKVClient, KVClient


RealNodeTestCase = SingleNodeTestCase


def race(test, make_client, threads_n, keys_n):
    """threads_n clients, each on its own connections, released at once
    onto the same keys: exactly one SetIfAbsent per key is True, and the
    key holds the winner's value."""
    clients = [make_client() for _ in range(threads_n)]
    barrier = threading.Barrier(threads_n)
    won = {}  # key -> the values whose SetIfAbsent returned True
    errors = []
    lock = threading.Lock()

    def run(i):
        try:
            for k in range(keys_n):
                key = "lock%d" % k
                barrier.wait(20)
                if clients[i].SetIfAbsent(key, "client%d" % i):
                    with lock:
                        won.setdefault(key, []).append("client%d" % i)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
            barrier.abort()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    test.assertEqual(errors, [])
    for k in range(keys_n):
        key = "lock%d" % k
        test.assertEqual(len(won.get(key, [])), 1, "%s: winners %r" % (key, won.get(key)))
        test.assertEqual(clients[0].Get(key), won[key][0])


def check_calls(test, c):
    """Every conditional call's True and False cases on c, a client of
    an empty store, and the values they leave."""
    # SetIfAbsent: only where the key does not exist.
    test.assertIs(c.SetIfAbsent("a", "1"), True)
    test.assertEqual(c.Get("a"), "1")
    test.assertIs(c.SetIfAbsent("a", "2"), False)
    test.assertEqual(c.Get("a"), "1")

    # SetIfExists: only where it does.
    test.assertIs(c.SetIfExists("b", "1"), False)
    test.assertIsNone(c.Get("b"))
    test.assertIs(c.SetIfExists("a", "3"), True)
    test.assertEqual(c.Get("a"), "3")

    # CompareAndSwap: only where the key holds old.
    test.assertIs(c.CompareAndSwap("a", "1", "4"), False)
    test.assertEqual(c.Get("a"), "3")
    test.assertIs(c.CompareAndSwap("missing", "3", "4"), False)
    test.assertIsNone(c.Get("missing"))
    test.assertIs(c.CompareAndSwap("a", "3", "4"), True)
    test.assertEqual(c.Get("a"), "4")

    # CompareAndDelete: likewise.
    test.assertIs(c.CompareAndDelete("a", "3"), False)
    test.assertEqual(c.Get("a"), "4")
    test.assertIs(c.CompareAndDelete("a", "4"), True)
    test.assertIsNone(c.Get("a"))
    test.assertIs(c.CompareAndDelete("a", "4"), False)
    test.assertIsNone(c.Get("a"))

    # An empty value is a value: it exists, and is compared as "".
    c.Set("e", "")
    test.assertIs(c.SetIfAbsent("e", "x"), False)
    test.assertIs(c.CompareAndSwap("e", "", "x"), True)
    test.assertEqual(c.Get("e"), "x")

    # The snake_case names are the same calls.
    test.assertIs(c.set_if_absent("s", "1"), True)
    test.assertIs(c.set_if_absent("s", "2"), False)
    test.assertIs(c.set_if_exists("s", "2"), True)
    test.assertIs(c.compare_and_swap("s", "2", "3"), True)
    test.assertIs(c.compare_and_delete("s", "2"), False)
    test.assertIs(c.compare_and_delete("s", "3"), True)
    test.assertIsNone(c.Get("s"))


class ConditionalOnSingleNodeTest(RealNodeTestCase):
    def test_every_call_true_and_false(self):
        check_calls(self, self.client())

    def test_cluster_client_on_a_single_node(self):
        with ClusterKVClient(kv_ports=[self.node.port], timeout=20) as c:
            check_calls(self, c)
            with self.assertRaises(dkv.ConditionFailed) as cm:
                c.request({"op": "set", "key": "e", "value": "y", "if_value": "z"})
            self.assertEqual(cm.exception.current, "x")
            self.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)

    def test_condition_failed_carries_the_current_value(self):
        c = self.client()
        c.Set("k", "held")
        with self.assertRaises(dkv.ConditionFailed) as cm:
            c.request({"op": "set", "key": "k", "value": "new", "if_absent": True})
        e = cm.exception
        self.assertIsInstance(e, dkv.ServerError)
        self.assertEqual(e.code, "condition_failed")
        self.assertEqual(e.op, "set")
        self.assertEqual(e.current, "held")
        with self.assertRaises(dkv.ConditionFailed) as cm:
            c.request({"op": "delete", "key": "k", "if_value": "other"})
        self.assertEqual(cm.exception.current, "held")
        # A key that does not exist: no value, None.
        with self.assertRaises(dkv.ConditionFailed) as cm:
            c.request({"op": "set", "key": "nokey", "value": "v", "if_exists": True})
        self.assertIsNone(cm.exception.current)
        # A stored empty value is "", not None.
        c.Set("empty", "")
        with self.assertRaises(dkv.ConditionFailed) as cm:
            c.request({"op": "set", "key": "empty", "value": "v", "if_value": "x"})
        self.assertEqual(cm.exception.current, "")
        # Nothing was written by any of them.
        self.assertEqual(c.BulkGet(["k", "nokey", "empty"]), ["held", None, ""])
        # A condition that holds: the usual answer.
        self.assertEqual(c.request({"op": "set", "key": "k", "value": "new", "if_value": "held"})["ok"], True)
        self.assertEqual(c.Get("k"), "new")
        # The server's refusals of malformed conditions are errors, not
        # False; the connection stays usable.
        with self.assertRaises(dkv.BadRequest):
            c.request({"op": "set", "key": "k", "value": "v", "if_absent": True, "if_exists": True})
        with self.assertRaises(dkv.BadRequest):
            c.request({"op": "delete", "key": "k", "if_absent": True})
        self.assertEqual(c.Get("k"), "new")

    def test_in_a_pipeline(self):
        c = self.client()
        p = c.pipeline()
        p.SetIfAbsent("p", "1").SetIfAbsent("p", "2").CompareAndSwap("p", "2", "3")
        p.CompareAndSwap("p", "1", "3").SetIfExists("q", "1").CompareAndDelete("p", "3").Get("p")
        self.assertEqual(p.execute(), [True, False, False, True, False, True, None])

    def test_arguments_are_checked_before_sending(self):
        c = self.client()
        for bad in [
            lambda: c.SetIfAbsent(b"k", "v"),
            lambda: c.SetIfExists("k", 1),
            lambda: c.CompareAndSwap("k", None, "v"),
            lambda: c.CompareAndSwap("k", "v", b"x"),
            lambda: c.CompareAndDelete("k", 7),
        ]:
            self.assertRaises(TypeError, bad)
        self.assertIsNone(c.Get("k"))

    def test_race_for_one_key_has_one_winner(self):
        race(self, self.client, threads_n=8, keys_n=10)


class ConditionalOnClusterTest(unittest.TestCase):
    """ClusterKVClient's conditional writes on a real 3-node cluster,
    found through a follower's redirect."""

    def setUp(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-cond-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        self.cluster = Cluster(d)
        self.addCleanup(self.cluster.kill_all)
        self.cluster.start_all()
        leader, _ = self.cluster.wait_leader()
        follower = (leader + 1) % 3
        self.ports = [self.cluster.kv_ports[follower]] + [p for i, p in enumerate(self.cluster.kv_ports) if i != follower]

    def client(self):
        c = ClusterKVClient(kv_ports=self.ports, timeout=20)
        self.addCleanup(c.close)
        return c

    def test_every_call_and_condition_failed(self):
        c = self.client()
        check_calls(self, c)
        c.Set("k", "held")
        with self.assertRaises(dkv.ConditionFailed) as cm:
            c.request({"op": "delete", "key": "k", "if_value": "other"})
        self.assertEqual(cm.exception.current, "held")
        with self.assertRaises(dkv.ConditionFailed) as cm:
            c.request({"op": "set", "key": "none", "value": "v", "if_exists": True})
        self.assertIsNone(cm.exception.current)
        self.assertEqual(c.Get("k"), "held")

    def test_race_for_one_key_has_one_winner(self):
        race(self, self.client, threads_n=5, keys_n=5)


def mesh_node(server, n, sock, rfile):
    """A mesh node as PROTOCOL.md has it: it takes plain writes and refuses
    a conditional one with not_implemented."""
    store = server.__dict__.setdefault("store", {})
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        if any(f in req for f in ("if_absent", "if_exists", "if_value")):
            reply(sock, error_for(req, "not_implemented", "a mesh does not take conditional writes"))
        elif req["op"] == "set":
            store[req["key"]] = req["value"]
            reply(sock, ok_for(req, stamp="100.0.1"))
        else:
            reply(sock, ok_for(req))


class MeshRefusalTest(unittest.TestCase):
    def test_refused_with_not_implemented_raised_not_false(self):
        with FakeServer(mesh_node) as fake, KVClient(port=fake.port, timeout=5) as c:
            c.Set("k", "v")
            calls = [
                ("SetIfAbsent", lambda: c.SetIfAbsent("k", "x"), {"op": "set", "key": "k", "value": "x", "if_absent": True}),
                ("SetIfExists", lambda: c.SetIfExists("k", "x"), {"op": "set", "key": "k", "value": "x", "if_exists": True}),
                ("CompareAndSwap", lambda: c.CompareAndSwap("k", "v", "x"), {"op": "set", "key": "k", "value": "x", "if_value": "v"}),
                ("CompareAndDelete", lambda: c.CompareAndDelete("k", "v"), {"op": "delete", "key": "k", "if_value": "v"}),
            ]
            for name, call, want in calls:
                with self.subTest(name):
                    with self.assertRaises(dkv.NotImplementedByServer) as cm:
                        call()
                    self.assertEqual(cm.exception.code, "not_implemented")
                    self.assertNotIsInstance(cm.exception, dkv.ConditionFailed)
                    got = dict(fake.requests[-1])
                    del got["id"]
                    # A mesh write carries the stamp seen, as any write.
                    self.assertEqual(got.pop("after"), "100.0.1")
                    self.assertEqual(got, want)
            self.assertEqual(fake.store, {"k": "v"})


def closes_mid_reply(server, n, sock, rfile):
    """Reads one request, sends half of a reply, closes."""
    req = server.read_request(rfile)
    if req is not None:
        sock.sendall(b'{"id":%d,"ok":tr' % req["id"])


def answers_outcome_unknown(server, n, sock, rfile):
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        reply(sock, error_for(req, "outcome_unknown", "proposed, fate unknown"))


def condition_fails(server, n, sock, rfile):
    """A leader whose key holds "theirs": every conditional write fails."""
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        resp = error_for(req, "condition_failed", "did not hold")
        resp["value"] = "theirs"
        reply(sock, resp)


class ClusterConditionFakeTest(unittest.TestCase):
    """The cluster client's conditional writes against fakes."""

    CALLS = [
        ("SetIfAbsent", lambda c: c.SetIfAbsent("k", "mine"), {"op": "set", "key": "k", "value": "mine", "if_absent": True}),
        ("SetIfExists", lambda c: c.SetIfExists("k", "mine"), {"op": "set", "key": "k", "value": "mine", "if_exists": True}),
        ("CompareAndSwap", lambda c: c.CompareAndSwap("k", "old", "mine"), {"op": "set", "key": "k", "value": "mine", "if_value": "old"}),
        ("CompareAndDelete", lambda c: c.CompareAndDelete("k", "old"), {"op": "delete", "key": "k", "if_value": "old"}),
    ]

    def test_condition_failed_after_an_unknown_outcome_is_false(self):
        # The first node's attempt ends of unknown outcome (its answer
        # outcome_unknown, or its connection broken mid-reply); the retry
        # at the next node is answered condition_failed, which is certain:
        # False, not UnknownOutcome, and no further attempt.
        for first_name, first in [("outcome_unknown", answers_outcome_unknown), ("broken", closes_mid_reply)]:
            for name, call, want in self.CALLS:
                with self.subTest(first=first_name, call=name):
                    with FakeServer(first) as a, FakeServer(condition_fails) as b:
                        with ClusterKVClient(kv_ports=[a.port, b.port], timeout=5) as c:
                            self.assertIs(call(c), False)
                            self.assertEqual(c.leader(), "127.0.0.1:%d" % b.port)
                        self.assertEqual((len(a.requests), len(b.requests)), (1, 1))
                        ra, rb = a.requests[0], b.requests[0]
                        # The retry is the same write: same session, same
                        # seq, same condition.
                        self.assertEqual((ra["client_id"], ra["seq"]), (rb["client_id"], rb["seq"]))
                        self.assertEqual(rb["seq"], 1)
                        for r in (ra, rb):
                            self.assertEqual({k: v for k, v in r.items() if k not in ("id", "client_id", "seq", "acked")}, want)

    def test_raw_request_raises_condition_failed_not_unknown_outcome(self):
        with FakeServer(answers_outcome_unknown) as a, FakeServer(condition_fails) as b:
            with ClusterKVClient(kv_ports=[a.port, b.port], timeout=5) as c:
                with self.assertRaises(dkv.ConditionFailed) as cm:
                    c.request({"op": "set", "key": "k", "value": "mine", "if_absent": True})
                self.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)
                self.assertEqual(cm.exception.current, "theirs")
                self.assertEqual(a.requests[0]["seq"], b.requests[0]["seq"])

    def test_refused_earlier_after_an_unknown_outcome_is_false(self):
        # The retry finds the write refused when it first applied, its
        # answer lost: certain, False, and no value.
        def refused_earlier(server, n, sock, rfile):
            while True:
                req = server.read_request(rfile)
                if req is None:
                    return
                reply(sock, error_for(req, "condition_refused_earlier", "refused when it first applied"))

        for name, call, _ in self.CALLS:
            with self.subTest(call=name):
                with FakeServer(answers_outcome_unknown) as a, FakeServer(refused_earlier) as b:
                    with ClusterKVClient(kv_ports=[a.port, b.port], timeout=5) as c:
                        self.assertIs(call(c), False)
                        with self.assertRaises(dkv.ConditionRefusedEarlier) as cm:
                            c.request({"op": "set", "key": "k", "value": "mine", "if_absent": True})
                        self.assertIsInstance(cm.exception, dkv.ConditionFailed)
                        self.assertNotIsInstance(cm.exception, dkv.UnknownOutcome)
                        self.assertIsNone(cm.exception.current)

    def test_unknown_outcome_without_an_answer_stays_unknown(self):
        # The same conditional write with no settling answer: still
        # UnknownOutcome, sent under one seq.
        with FakeServer(closes_mid_reply) as a, FakeServer(answers_outcome_unknown) as b:
            with ClusterKVClient(kv_ports=[a.port, b.port], timeout=5, max_attempts=4) as c:
                with self.assertRaises(dkv.UnknownOutcome):
                    c.SetIfAbsent("k", "mine")
            self.assertEqual({r["seq"] for r in a.requests + b.requests}, {1})
            self.assertEqual(len(a.requests + b.requests), 4)

    def test_not_leader_then_applied(self):
        # A follower's redirect, then the leader applies it: True.
        with FakeServer(lambda s, n, sock, rfile: _answer_all(s, rfile, sock, lambda req: ok_for(req))) as leader:
            def follower(server, n, sock, rfile):
                _answer_all(server, rfile, sock, lambda req: error_for(req, "not_leader", leader="127.0.0.1:%d" % leader.port))

            with FakeServer(follower) as f, ClusterKVClient(kv_ports=[f.port, leader.port], timeout=5) as c:
                self.assertIs(c.CompareAndSwap("k", "old", "new"), True)
                self.assertEqual(f.requests[0]["if_value"], "old")
                self.assertEqual(leader.requests[0]["seq"], f.requests[0]["seq"])


def _answer_all(server, rfile, sock, answer):
    while True:
        req = server.read_request(rfile)
        if req is None:
            return
        reply(sock, answer(req))


class KVClientConditionFakeTest(unittest.TestCase):
    def test_condition_failed_is_false_and_carries_the_value_raw(self):
        with FakeServer(condition_fails) as fake, KVClient(port=fake.port, timeout=5) as c:
            self.assertIs(c.SetIfAbsent("k", "v"), False)
            self.assertIs(c.CompareAndDelete("k", "v"), False)
            with self.assertRaises(dkv.ConditionFailed) as cm:
                c.request({"op": "set", "key": "k", "value": "v", "if_absent": True})
            self.assertEqual(cm.exception.current, "theirs")
            self.assertEqual(fake.connections, 1)
            self.assertEqual(len(fake.requests), 3)


if __name__ == "__main__":
    unittest.main()
