"""Consistent scans, against real cmd/node processes: ScanAll with
consistent=True yields the keys and values of its first page's instant
while another client changes keys ahead of the walk between pages, and a
plain ScanAll sees those changes; a page of a view the node does not keep
(a raw request, a node restarted mid-walk, a cluster whose leader died
mid-walk) raises ScanExpired. On a single node (KVClient, and
ClusterKVClient) and a 3-node cluster (ClusterKVClient, through a
follower's redirect)."""

import shutil
import tempfile
import unittest

import nodeproc  # noqa: F401  (puts the client on sys.path)
from nodeproc import Cluster, SingleNode

import dkv
from dkv import ClusterKVClient, KVClient

PAGE = 50
KEYS = ["k%03d" % i for i in range(300)]  # six pages of PAGE


def seed(c):
    """300 keys with the prefix "k", all "before", and keys around it."""
    c.BulkSet([(k, "before") for k in KEYS])
    c.BulkSet([("j", "outside"), ("l", "outside")])
    return [(k, "before") for k in KEYS]


def change_ahead(other, n):
    """The writes of another client while a walk of pages of PAGE has
    yielded n keys: after the first key, and after the first key of every
    later page, each to keys of pages the walk has not read yet (the keys
    at 60 and more past it): an overwrite, a delete, a new key."""
    if n == 1:
        other.Set("k250", "after")
        other.Delete("k200")
        other.Set("k150x", "new")  # between k150 and k151
        other.BulkSet([("k100", "after"), ("k299", "after")])
    elif n % PAGE == 1:
        i = n + 60
        if i < len(KEYS):
            other.Set(KEYS[i], "after %d" % n)
            other.Set(KEYS[i] + "y", "new %d" % n)
        if i + 5 < len(KEYS):
            other.Delete(KEYS[i + 5])


def walk(test, c, other, **kw):
    """ScanAll("k", page_size=PAGE, **kw) on c, with change_ahead's
    writes by other between its pages: what it yielded."""
    got = []
    for kv in c.ScanAll("k", page_size=PAGE, **kw):
        got.append(kv)
        change_ahead(other, len(got))
    test.assertGreater(len(got), 2 * PAGE)  # it did walk many pages
    return got


def check_walks(test, c, other):
    """A consistent walk yields exactly the first page's instant; a plain
    one on the same changes sees every one of them (they were all ahead of
    it); a walk after them, consistent or not, reads them all."""
    before = seed(c)
    got = walk(test, c, other, consistent=True)
    test.assertEqual(got, before)
    after = list(c.ScanAll("k", page_size=PAGE))
    test.assertNotEqual(after, before)
    test.assertEqual(dict(after)["k250"], "after")
    test.assertNotIn("k200", dict(after))
    test.assertEqual(dict(after)["k150x"], "new")
    test.assertEqual(list(c.ScanAll("k", page_size=PAGE, consistent=True)), after)
    test.assertEqual(list(c.scan_all("k", PAGE, True)), after)

    # The same changes again, on the keys as first written, for a walk
    # without a view (the default): it sees each.
    c.BulkDelete([k for k, _ in after])
    before = seed(c)
    got = walk(test, c, other)
    test.assertEqual(got, list(c.ScanAll("k", page_size=PAGE)))
    test.assertNotEqual(got, before)
    test.assertEqual(dict(got)["k250"], "after")
    test.assertNotIn("k200", dict(got))
    test.assertIn(("k150x", "new"), got)
    # A consistent walk that fits one page names no view and needs none.
    test.assertEqual(list(c.ScanAll("k", page_size=1000, consistent=True)), got)
    test.assertEqual(list(c.ScanAll("nothing-here", consistent=True)), [])


class ConsistentScanOnSingleNodeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dkv-pytest-cscan-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.node = SingleNode(self.dir).start()
        self.addCleanup(self.node.kill)

    def client(self):
        c = KVClient(port=self.node.port, timeout=20)
        self.addCleanup(c.close)
        return c

    def test_consistent_walk_reads_one_instant(self):
        check_walks(self, self.client(), self.client())

    def test_cluster_client_on_a_single_node(self):
        c = ClusterKVClient(kv_ports=[self.node.port], timeout=20)
        self.addCleanup(c.close)
        check_walks(self, c, self.client())

    def test_a_walk_stopped_early_closes_its_view(self):
        # A consistent walk left before its last page asks the node to
        # drop its view: none is kept after it, where an abandoned one
        # was kept for a minute, one of the 64 a node keeps.
        c = self.client()
        seed(c)
        walk = c.ScanAll("k", page_size=PAGE, consistent=True)
        for i, _ in enumerate(walk):
            if i == PAGE + 5:
                break
        self.assertEqual(c.Status()["scan_views"], 1)  # the generator is still open
        walk.close()
        self.assertEqual(c.Status()["scan_views"], 0)
        list(c.ScanAll("k", page_size=PAGE, consistent=True))
        self.assertEqual(c.Status()["scan_views"], 0)

    def test_a_walk_closed_inside_a_call_closes_its_view_after_it(self):
        # A walk stopped early and collected while a call of the same
        # thread holds the client (a garbage collection runs at any
        # allocation, and collects a generator caught in a reference
        # cycle): its close cannot go out then. It waited for the call's
        # lock, held by its own thread, for the whole timeout, stalling
        # the call, and was then dropped, the view kept; it goes out once
        # the call is done. The collection is stood in for by the
        # client's answer hook, run with the lock held.
        for name, c in [("KVClient", self.client()), ("ClusterKVClient", ClusterKVClient(kv_ports=[self.node.port], timeout=20))]:
            with self.subTest(name):
                self.addCleanup(c.close)
                seed(c)
                walk = c.ScanAll("k", page_size=PAGE, consistent=True)
                next(walk)
                self.assertEqual(c.Status()["scan_views"], 1)
                target = c if isinstance(c, KVClient) else c._node(c.addrs[0])
                hook = target._observe_resp

                def collect(resp):
                    target._observe_resp = hook
                    walk.close()
                    hook(resp)

                target._observe_resp = collect
                c.timeout = 3  # the stall, before
                self.assertEqual(c.Get("k000"), "before")
                c.timeout = 20
                self.assertEqual(c.Status()["scan_views"], 0)

    def test_a_view_the_node_does_not_keep_is_scan_expired(self):
        c = self.client()
        for cl in (c, ClusterKVClient(kv_ports=[self.node.port], timeout=20)):
            with self.assertRaises(dkv.ScanExpired) as cm:
                cl.request({"op": "scan", "view": "1"})
            e = cm.exception
            self.assertIsInstance(e, dkv.ServerError)
            self.assertEqual((e.code, e.op), ("scan_expired", "scan"))
            # Asking for both is the server's bad_request.
            with self.assertRaises(dkv.BadRequest):
                cl.request({"op": "scan", "consistent": True, "view": "1"})
            if cl is not c:
                cl.close()
        self.assertIsNone(c.ping())  # the connection is fine

        # A restart between pages: the new process has no view, and the
        # walk ends with ScanExpired after the first page; a new walk
        # reads every key.
        before = seed(c)
        got = []
        with self.assertRaises(dkv.ScanExpired):
            for kv in c.ScanAll("k", page_size=PAGE, consistent=True):
                got.append(kv)
                if len(got) == 1:
                    self.node.kill()
                    self.node.start()
        self.assertEqual(got, before[:PAGE])
        self.assertEqual(list(c.ScanAll("k", page_size=PAGE, consistent=True)), before)


class ConsistentScanOnClusterTest(unittest.TestCase):
    """ClusterKVClient on a real 3-node cluster, found through a
    follower's redirect; another ClusterKVClient writes."""

    def setUp(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-cscan-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        self.cluster = Cluster(d)
        self.addCleanup(self.cluster.kill_all)
        self.cluster.start_all()

    def client(self, ports):
        c = ClusterKVClient(kv_ports=ports, timeout=20)
        self.addCleanup(c.close)
        return c

    def test_consistent_walk_and_failover(self):
        cl = self.cluster
        leader, _ = cl.wait_leader()
        follower = (leader + 1) % 3
        ports = [cl.kv_ports[follower]] + [p for i, p in enumerate(cl.kv_ports) if i != follower]
        c = self.client(ports)
        check_walks(self, c, self.client(list(reversed(ports))))
        self.assertEqual(c.leader(), "127.0.0.1:%d" % cl.kv_ports[leader])

        # Straight to the nodes: the leader has no view "1", a follower
        # sends the page to the leader.
        with KVClient(port=cl.kv_ports[leader], timeout=20) as direct:
            with self.assertRaises(dkv.ScanExpired):
                direct.request({"op": "scan", "view": "1"})
        with KVClient(port=cl.kv_ports[follower], timeout=20) as direct:
            with self.assertRaises(dkv.NotLeader) as cm:
                direct.request({"op": "scan", "view": "1"})
            self.assertEqual(cm.exception.leader, "127.0.0.1:%d" % cl.kv_ports[leader])

        # The leader dies between pages: the new one has no view, and the
        # walk ends with ScanExpired; a new walk reads every key.
        every = list(c.ScanAll("k", page_size=PAGE))
        got = []
        with self.assertRaises(dkv.ScanExpired):
            for kv in c.ScanAll("k", page_size=PAGE, consistent=True):
                got.append(kv)
                if len(got) == 1:
                    cl.kill(leader)
                    cl.wait_leader(exclude=(leader,))
        self.assertEqual(got, every[:PAGE])
        self.assertEqual(list(c.ScanAll("k", page_size=PAGE, consistent=True)), every)
        self.assertNotEqual(c.leader(), "127.0.0.1:%d" % cl.kv_ports[leader])


if __name__ == "__main__":
    unittest.main()
