#!/usr/bin/env python3
"""Set throughput of the Python client from one process, pipelined and
not, against a single node it starts with --unsafe-no-fsync (so the figure
is the client's and the protocol's, not the disk's).

    python3 clients/python/bench.py                 # 3 s each, 100-byte values
    python3 clients/python/bench.py --seconds 5 --batch 1000 --value-bytes 100

It builds cmd/node from this checkout (or uses --bin), runs it on a free
loopback port with its data in a temporary directory, and kills it after.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "tests"))

import nodeproc  # noqa: E402

from dkv import KVClient  # noqa: E402


def unpipelined(c, seconds, value):
    n = 0
    began = time.perf_counter()
    end = began + seconds
    while True:
        for _ in range(100):
            c.Set("u%d" % n, value)
            n += 1
        now = time.perf_counter()
        if now >= end:
            return n, now - began


def pipelined(c, seconds, value, batch):
    n = 0
    began = time.perf_counter()
    end = began + seconds
    while True:
        p = c.pipeline()
        for i in range(n, n + batch):
            p.Set("p%d" % i, value)
        p.execute()
        n += batch
        now = time.perf_counter()
        if now >= end:
            return n, now - began


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each measurement")
    ap.add_argument("--batch", type=int, default=1000, help="Sets per pipeline")
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--bin", help="a built cmd/node (default: go build it)")
    args = ap.parse_args()
    if args.bin:
        os.environ["DKV_NODE_BIN"] = args.bin
    d = tempfile.mkdtemp(prefix="dkv-pybench-")
    node = None
    try:
        node = nodeproc.SingleNode(d, "--unsafe-no-fsync").start()
        value = "x" * args.value_bytes
        with KVClient(port=node.port, timeout=60) as c:
            # Warm up: the connection, the server's first allocations.
            pipelined(c, 0.2, value, args.batch)
            n, took = unpipelined(c, args.seconds, value)
            print("unpipelined: %8.0f Sets/s  (%d Sets in %.2f s, one round trip each)" % (n / took, n, took))
            n, took = pipelined(c, args.seconds, value, args.batch)
            print("pipelined:   %8.0f Sets/s  (%d Sets in %.2f s, batches of %d)" % (n / took, n, took, args.batch))
        print("python %s, %d-byte values, server --unsafe-no-fsync on 127.0.0.1" % (sys.version.split()[0], args.value_bytes))
    finally:
        if node is not None:
            node.kill()
        shutil.rmtree(d, True)


if __name__ == "__main__":
    main()
