"""Real cmd/node processes for the tests: built once per test run with
``go build`` from the repository root, started on free loopback ports with
their data in temporary directories, and killed when done.

Importing this module also puts clients/python on sys.path, so the tests
run against the source tree; with DKV_TEST_INSTALLED=1 they run against
the installed dkv package instead. DKV_NODE_BIN names a prebuilt server to
use instead of building one, DKV_CERTS_BIN a prebuilt cmd/certs (which
makes the TLS tests' certificates).
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_CLIENT_DIR = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(PYTHON_CLIENT_DIR))

if os.environ.get("DKV_TEST_INSTALLED") != "1" and PYTHON_CLIENT_DIR not in sys.path:
    sys.path.insert(0, PYTHON_CLIENT_DIR)

# Waits for things that take well under a second: generous, so that only a
# real failure trips them on a busy machine.
WAIT_MAX = 30.0

_bins = {}  # package -> its built binary
_bin_errors = {}  # package -> why its build failed
_bin_lock = threading.Lock()


def _binary(pkg, env):
    """The path of the command pkg ("./cmd/node"), built on first use (once:
    a failed build fails every later call at once), or the prebuilt one the
    environment variable env names."""
    with _bin_lock:
        if pkg in _bins:
            return _bins[pkg]
        if pkg in _bin_errors:
            raise RuntimeError(_bin_errors[pkg])
        prebuilt = os.environ.get(env)
        if prebuilt:
            _bins[pkg] = prebuilt
            return prebuilt
        if not os.path.exists(os.path.join(REPO_ROOT, "go.mod")):
            raise RuntimeError("no go.mod at %s: the tests expect to sit in clients/python/tests of the dkv repository" % REPO_ROOT)
        d = tempfile.mkdtemp(prefix="dkv-pytest-bin-")
        atexit.register(shutil.rmtree, d, True)
        path = os.path.join(d, "dkv" + os.path.basename(pkg))
        r = subprocess.run(
            ["go", "build", "-o", path, pkg],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        if r.returncode != 0:
            _bin_errors[pkg] = "go build %s failed:\n%s" % (pkg, r.stdout.decode(errors="replace"))
            raise RuntimeError(_bin_errors[pkg])
        _bins[pkg] = path
        return path


def node_binary():
    """The path of cmd/node (DKV_NODE_BIN, or built on first use)."""
    return _binary("./cmd/node", "DKV_NODE_BIN")


def make_certs(directory, name="node", hosts="127.0.0.1,localhost"):
    """Runs cmd/certs (DKV_CERTS_BIN, or built on first use): the first run
    in directory makes its authority, ca.pem, every run a certificate
    NAME.pem with its key NAME-key.pem for hosts, signed by it, good for a
    server and a client alike. Returns (ca, cert, key), their paths."""
    r = subprocess.run(
        [_binary("./cmd/certs", "DKV_CERTS_BIN"), "--dir", directory, "--name", name, "--hosts", hosts],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if r.returncode != 0:
        raise RuntimeError("cmd/certs --dir %s --name %s failed (%d):\n%s" % (directory, name, r.returncode, r.stdout.decode(errors="replace")))
    return tuple(os.path.join(directory, f) for f in ("ca.pem", name + ".pem", name + "-key.pem"))


def free_ports(n):
    """n distinct loopback ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Node(object):
    """One cmd/node process. Its stderr is kept in memory; ``ready()``
    waits for its "serving" line."""

    def __init__(self, args, name="node"):
        self.args = [node_binary()] + list(args)
        self.name = name
        self._lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            with self._lock:
                self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    def log(self):
        with self._lock:
            return "\n".join(self._lines)

    def ready(self, timeout=WAIT_MAX):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "serving" in self.log():
                return self
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise RuntimeError("%s exited (%s) before serving:\n%s" % (self.name, self.proc.returncode, self.log()))
            time.sleep(0.01)
        raise RuntimeError("%s not serving after %ss:\n%s" % (self.name, timeout, self.log()))

    def kill(self):
        """SIGKILL, and wait until it is gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr is not None and not self._reader.is_alive():
            self.proc.stderr.close()

    def stop(self, timeout=WAIT_MAX):
        """SIGTERM (a graceful exit), and its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def alive(self):
        return self.proc.poll() is None


class SingleNode(object):
    """A single node on a fixed port and data directory, so that a restart
    comes back where its clients expect it."""

    def __init__(self, data_dir, *extra):
        self.data_dir = data_dir
        self.port = free_ports(1)[0]
        self.extra = list(extra)
        self.node = None

    def start(self):
        args = ["--port", str(self.port), "--data-dir", self.data_dir] + self.extra
        self.node = Node(args, "node on %d" % self.port).ready()
        return self

    def kill(self):
        if self.node is not None:
            self.node.kill()

    def stop(self):
        return self.node.stop()

    def log(self):
        return self.node.log() if self.node else ""


class SingleNodeTestCase(unittest.TestCase):
    """A test case with a real single node of its own, started for each
    test in a fresh directory; client() dials it (KVClient, closed after
    the test)."""

    def setUp(self):
        d = tempfile.mkdtemp(prefix="dkv-pytest-")
        self.addCleanup(shutil.rmtree, d, True)
        self.node = SingleNode(d).start()
        self.addCleanup(self.node.kill)

    def client(self, **kw):
        from dkv import KVClient  # after sys.path is set, above

        kw.setdefault("timeout", 20)
        c = KVClient(port=self.node.port, **kw)
        self.addCleanup(c.close)
        return c


class Cluster(object):
    """A 3-node cluster on loopback, launched as the README's hand-written
    command lines: each node its own ports, then the others' in node-id
    order."""

    def __init__(self, base_dir, n=3, *extra, password=None, ssl_context=None):
        ports = free_ports(2 * n)
        self.kv_ports = ports[:n]
        self.repl_ports = ports[n:]
        self.base_dir = base_dir
        self.extra = list(extra)
        self.password = password  # the nodes' --auth-file password, for status
        self.ssl_context = ssl_context  # for status, when the nodes' client ports speak TLS
        self.nodes = [None] * n
        self.old_logs = [""] * n

    def args(self, i):
        others = lambda ports: [str(p) for j, p in enumerate(ports) if j != i]  # noqa: E731
        return (
            ["--node-id", str(i), "--kv-port", str(self.kv_ports[i]), "--repl-port", str(self.repl_ports[i])]
            + ["--secondary-repl-ports"] + others(self.repl_ports)
            + ["--data-dir", os.path.join(self.base_dir, "node%d" % i)]
            + ["--other-kv-ports"] + others(self.kv_ports)
            + self.extra
        )

    def launch(self, i):
        if self.nodes[i] is not None:
            self.old_logs[i] += self.nodes[i].log() + "\n"
        self.nodes[i] = Node(self.args(i), "cluster node %d" % i)
        return self.nodes[i]

    def start_all(self):
        for i in range(len(self.nodes)):
            self.launch(i)
        for n in self.nodes:
            n.ready()
        return self

    def kill(self, i):
        self.nodes[i].kill()

    def kill_all(self):
        for n in self.nodes:
            if n is not None:
                n.kill()

    def logs(self):
        return "\n".join("--- node %d\n%s%s" % (i, self.old_logs[i], n.log() if n else "") for i, n in enumerate(self.nodes))

    def status(self, i, timeout=1.0):
        from dkv import KVClient

        with KVClient(
            port=self.kv_ports[i], timeout=timeout, dial_retries=0, password=self.password, ssl_context=self.ssl_context
        ) as c:
            return c.status()

    def wait_leader(self, exclude=(), timeout=WAIT_MAX):
        """The node id of a leader that every live node agrees on (a node
        not in exclude), and its status."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for i, n in enumerate(self.nodes):
                if n is None or not n.alive() or i in exclude:
                    continue
                try:
                    st = self.status(i)
                except Exception as e:  # a node starting or stopping
                    last = e
                    continue
                cl = st.get("cluster", {})
                if cl.get("role") == "leader":
                    return i, st
            time.sleep(0.05)
        raise RuntimeError("no leader after %ss (last error %s):\n%s" % (timeout, last, self.logs()))


class Mesh(object):
    """A master-less mesh of n nodes (at least 2: a mesh node needs peers)
    on loopback, each with its own ports and the others' replication
    ports, as the README launches one."""

    def __init__(self, base_dir, n=2, *extra):
        ports = free_ports(2 * n)
        self.kv_ports = ports[:n]
        self.repl_ports = ports[n:]
        self.base_dir = base_dir
        self.extra = list(extra)
        self.nodes = []

    def args(self, i):
        return (
            ["--mode", "mesh", "--node-id", str(i), "--kv-port", str(self.kv_ports[i]), "--repl-port", str(self.repl_ports[i])]
            + ["--peer-repl-ports"] + [str(p) for j, p in enumerate(self.repl_ports) if j != i]
            + ["--data-dir", os.path.join(self.base_dir, "mesh%d" % i)]
            + self.extra
        )

    def start_all(self):
        self.nodes = [Node(self.args(i), "mesh node %d" % i) for i in range(len(self.kv_ports))]
        for n in self.nodes:
            n.ready()
        return self

    def kill_all(self):
        for n in self.nodes:
            n.kill()
