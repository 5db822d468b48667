"""ClusterKVClient against a real 3-node cluster (cmd/node --mode cluster,
on loopback): it finds the leader from any node, and when the leader is
SIGKILLed it finds the new one and keeps writing, losing no acknowledged
write."""

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import unittest

import nodeproc
from nodeproc import Cluster

import dkv
from dkv import ClusterKVClient


class ClusterTest(unittest.TestCase):
    def setUp(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        self.cluster = Cluster(d)
        self.addCleanup(self.cluster.kill_all)
        self.cluster.start_all()

    def fail_with_logs(self, msg):
        self.fail("%s\nnode logs:\n%s" % (msg, self.cluster.logs()))

    def client_from_a_follower(self):
        """The leader's index, and a ClusterKVClient whose first port is a
        follower's: its first call is redirected."""
        cl = self.cluster
        leader, _ = cl.wait_leader()
        follower = (leader + 1) % 3
        ports = [cl.kv_ports[follower]] + [p for i, p in enumerate(cl.kv_ports) if i != follower]
        c = ClusterKVClient(kv_ports=ports, timeout=20)
        self.addCleanup(c.close)
        return leader, c

    def test_leader_killed_client_finds_the_new_one_and_keeps_writing(self):
        cl = self.cluster
        leader, c = self.client_from_a_follower()
        c.Set("hello", "world")
        self.assertEqual(c.Get("hello"), "world")
        self.assertEqual(c.leader(), "127.0.0.1:%d" % cl.kv_ports[leader])
        c.BulkSet([("a", "1"), ("b", "2")])
        c.Delete("a")
        self.assertEqual([c.Get(k) for k in ("a", "b")], [None, "2"])
        self.assertIsNone(c.Get("never-set"))
        self.assertEqual(c.status()["mode"], "cluster")
        with self.assertRaises(dkv.IndexesDisabled):
            c.Search("hello")
        with self.assertRaises(dkv.BadRequest):
            c.Set("", "empty key")

        acked = {}  # key -> value, acknowledged
        unknown = {}  # key -> value, outcome unknown
        errors = []
        stop = threading.Event()
        after_kill = []

        def writer():
            i = 0
            while not stop.is_set():
                k, v = "k%d" % (i % 200), "v%d" % i
                try:
                    c.Set(k, v)
                    acked[k] = v
                    unknown.pop(k, None)
                    if killed.is_set():
                        after_kill.append(i)
                except dkv.UnknownOutcome:
                    unknown[k] = v
                except dkv.DKVError as e:
                    errors.append(e)
                    return
                i += 1

        killed = threading.Event()
        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(0.3)
            cl.kill(leader)
            killed.set()
            new_leader, _ = cl.wait_leader(exclude=(leader,))
            deadline = time.monotonic() + 20
            while len(after_kill) < 100 and not errors and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            t.join(30)
        self.assertFalse(t.is_alive(), "the writer hung")
        if errors:
            self.fail_with_logs("a write failed across the failover: %r" % errors)
        if len(after_kill) < 100:
            self.fail_with_logs("only %d writes acknowledged after the leader was killed" % len(after_kill))
        self.assertNotEqual(new_leader, leader)
        self.assertEqual(c.leader(), "127.0.0.1:%d" % cl.kv_ports[new_leader])
        # Every acknowledged write is there; an unknown one either way.
        for k, v in acked.items():
            got = c.Get(k)
            if got != v and unknown.get(k) != got:
                self.fail_with_logs("%s = %r, acknowledged %r" % (k, got, v))
        self.assertEqual(c.Get("hello"), "world")

        # The old leader comes back as a follower and catches up.
        cl.launch(leader).ready()
        c.Set("after-restart", "yes")
        want = cl.status(new_leader)["cluster"]["commit"]
        deadline = time.monotonic() + nodeproc.WAIT_MAX
        while True:
            st = cl.status(leader)["cluster"]
            if st["applied"] >= want:
                break
            if time.monotonic() > deadline:
                self.fail_with_logs("the restarted node applied %d, the leader committed %d" % (st["applied"], want))
            time.sleep(0.05)
        self.assertNotEqual(st["role"], "leader")

    def test_client_outlives_its_forgotten_session(self):
        # The cluster forgets a session once 16,384 other clients were
        # active since its last write, and refuses each later write of it
        # with session_expired. A long-lived client must not be left
        # unable to write: its next write, which no earlier attempt sent,
        # was certainly not applied, so it goes again in a new session.
        cl = self.cluster
        leader, _ = cl.wait_leader()
        c = ClusterKVClient(kv_ports=cl.kv_ports, timeout=20)
        self.addCleanup(c.close)
        c.Set("k", "1")
        first = c.client_id
        others = 16384 + 16
        with socket.create_connection(("127.0.0.1", cl.kv_ports[leader]), timeout=20) as sock:
            rfile = sock.makefile("rb")
            chunk = 512
            for start in range(0, others, chunk):
                n = min(chunk, others - start)
                lines = [
                    json.dumps({"id": start + i, "op": "set", "key": "other", "value": "v",
                                "client_id": 10**9 + start + i, "seq": 1, "acked": 1})
                    for i in range(n)
                ]
                sock.sendall(("\n".join(lines) + "\n").encode())
                for _ in range(n):
                    resp = json.loads(rfile.readline())
                    if not resp.get("ok"):
                        self.fail_with_logs("another client's write: %r" % (resp,))
        c.Set("k", "2")
        self.assertNotEqual(c.client_id, first, "the client still uses the session the cluster forgot")
        self.assertEqual(c.Get("k"), "2")
        self.assertEqual(c.Incr("n"), 1)
        c.Set("k", "3")
        self.assertEqual(c.Get("k"), "3")

    def test_scan_all(self):
        # Scan is a read the leader serves: from a follower, redirected.
        cl = self.cluster
        leader, c = self.client_from_a_follower()
        want = [("user:%03d" % i, "v%d" % i) for i in range(60)]
        want[5] = ("user:005", "ключ ☃")
        c.BulkSet(want[:50])
        for k, v in want[50:]:
            c.Set(k, v)
        c.BulkSet([("user", "x"), ("user;", "x"), ("a", "x")])
        c.Delete("user:010")
        del want[10]
        self.assertEqual(list(c.ScanAll("user:", page_size=25)), want)
        self.assertEqual(c.leader(), "127.0.0.1:%d" % cl.kv_ports[leader])
        self.assertEqual(c.Scan("user:", want[-3][0], keys_only=True), ([k for k, _ in want[-2:]], False))
        with self.assertRaises(dkv.TooLarge):
            c.Scan(limit=10001)


class ClusterPasswordTest(unittest.TestCase):
    """A cluster whose nodes share an --auth-file: ClusterKVClient with the
    password finds the leader and writes; without it, AuthRequired."""

    def test_password(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-cluster-auth-")
        self.addCleanup(shutil.rmtree, d, True)
        secret = "0123456789abcdef-python-cluster"
        pass_file = os.path.join(d, "dkv.pass")
        with open(pass_file, "w") as f:
            f.write(secret + "\n")
        os.chmod(pass_file, 0o600)
        cl = Cluster(os.path.join(d, "data"), 3, "--auth-file", pass_file, password=secret)
        self.addCleanup(cl.kill_all)
        cl.start_all()
        cl.wait_leader()
        c = ClusterKVClient(kv_ports=cl.kv_ports, timeout=20, password=secret)
        self.addCleanup(c.close)
        c.Set("hello", "world")
        self.assertEqual(c.Get("hello"), "world")
        # A wrong password is wrong at every node: refused at once, typed.
        with self.assertRaises(dkv.AuthFailed):
            ClusterKVClient(kv_ports=cl.kv_ports, timeout=20, password="not the password").close()
        without = ClusterKVClient(kv_ports=cl.kv_ports, timeout=5)
        self.addCleanup(without.close)
        with self.assertRaises(dkv.AuthRequired):
            without.Set("hello", "stranger")
        self.assertEqual(c.Get("hello"), "world")



class ClusterFullNodeTest(unittest.TestCase):
    """A follower at its --max-conns answers a new connection's first
    request with too_many_connections, unread: ClusterKVClient goes on to
    the other nodes, as the Go client does (it ended every call with
    TooManyConnections when the full node was the first it tried)."""

    def test_a_full_node_is_passed_over(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-cluster-full-")
        self.addCleanup(shutil.rmtree, d, True)
        cl = Cluster(d, 3, "--max-conns", "2")
        self.addCleanup(cl.kill_all)
        cl.start_all()
        leader, _ = cl.wait_leader()
        full = (leader + 1) % 3
        held = [dkv.KVClient(port=cl.kv_ports[full], timeout=20) for _ in range(2)]
        for h in held:
            self.addCleanup(h.close)
            h.ping()
        ports = [cl.kv_ports[full]] + [p for i, p in enumerate(cl.kv_ports) if i != full]
        for i in range(3):
            # A new client each time: its first call goes to the full node.
            with ClusterKVClient(kv_ports=ports, timeout=20) as c:
                c.Set("k%d" % i, "v%d" % i)
                self.assertEqual(c.Get("k%d" % i), "v%d" % i)
                self.assertEqual(c.leader(), "127.0.0.1:%d" % cl.kv_ports[leader])


if __name__ == "__main__":
    unittest.main()
