"""A client made before os.fork() (multiprocessing, a pre-forking server)
in the child: the child's copy has a connection of its own, and a
ClusterKVClient's copy a session of its own. Sharing the parent's made the
two processes read each other's answers, and a cluster took the second
process's write as a retry of the first's with the same client_id and seq:
answered ok, never applied."""

import os
import shutil
import tempfile
import unittest

import nodeproc  # (also puts the client on sys.path)
from nodeproc import Cluster, SingleNode, SingleNodeTestCase

import dkv
from dkv import ClusterKVClient, KVClient


def in_child(fn):
    """Runs fn in a forked child and returns its exit status: 0 when fn
    returned True, 1 when False, 2 when it raised."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            code = 0 if fn() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@unittest.skipUnless(hasattr(os, "fork"), "no os.fork")
class ForkedKVClientTest(SingleNodeTestCase):
    def test_child_and_parent_each_read_their_own_answers(self):
        c = self.client()
        c.Set("parent", "P")
        c.Set("child", "C")
        n = 3000

        def reads(key, want):
            for _ in range(5):
                p = c.pipeline()
                for _ in range(n):
                    p.Get(key)
                if p.execute() != [want] * n:
                    return False
            return True

        # Both start once the child runs, so that their reads overlap.
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 2
            try:
                os.close(r)
                os.write(w, b"r")
                code = 0 if reads("child", "C") else 1
            finally:
                os._exit(code)
        os.close(w)
        try:
            os.read(r, 1)
            self.assertTrue(reads("parent", "P"))
        finally:
            os.close(r)
            _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, "the child read answers not its own")
        self.assertEqual(c.Get("parent"), "P")


@unittest.skipUnless(hasattr(os, "fork"), "no os.fork")
class ForkedKVClientConnectionTest(unittest.TestCase):
    def test_child_dials_a_connection_of_its_own(self):
        # A node that takes one connection: the parent's. The child's call
        # goes out on a connection of its own, which the node refuses; on
        # the parent's, it went through.
        d = tempfile.mkdtemp(prefix="python-fork-")
        self.addCleanup(shutil.rmtree, d, True)
        s = SingleNode(os.path.join(d, "data"), "--max-conns", "1").start()
        self.addCleanup(s.kill)
        c = KVClient(port=s.port, timeout=nodeproc.WAIT_MAX, dial_retries=0)
        self.addCleanup(c.close)
        c.Set("k", "v")

        def child():
            try:
                c.Get("k")
            except dkv.TooManyConnections:
                return True
            return False

        self.assertEqual(in_child(child), 0, "the child used the parent's connection")
        self.assertEqual(c.Get("k"), "v")


@unittest.skipUnless(hasattr(os, "fork"), "no os.fork")
class ForkedClusterKVClientTest(unittest.TestCase):
    def setUp(self):
        d = tempfile.mkdtemp(prefix="python-fork-")
        self.addCleanup(shutil.rmtree, d, True)
        self.cluster = Cluster(d, 3)
        self.addCleanup(self.cluster.kill_all)
        self.cluster.start_all()
        self.cluster.wait_leader()

    def test_child_writes_in_a_session_of_its_own(self):
        c = ClusterKVClient(kv_ports=self.cluster.kv_ports, timeout=nodeproc.WAIT_MAX)
        self.addCleanup(c.close)
        c.Set("k", "parent 1")

        def child():
            return c.Incr("n") == 1 and c.Get("n") == "1"

        self.assertEqual(in_child(child), 0)
        # The parent's next write has the seq the child's had: under one
        # client_id it was the child's write retried, answered with the
        # child's answer (1) and not applied.
        self.assertEqual(c.Incr("n"), 2)
        c.Set("k", "parent 2")
        self.assertEqual(c.Get("k"), "parent 2")
        self.assertEqual(c.Get("n"), "2")


if __name__ == "__main__":
    unittest.main()
