#!/usr/bin/env bash
# Runs the Python client's tests (unittest, standard library only) against
# real cmd/node processes, which the tests build from this checkout with
# `go build`. Exits non-zero on a failure.
#
#   bash clients/python/run_tests.sh            # python3 on PATH
#   PYTHON=python3.9 bash clients/python/run_tests.sh
#   DKV_NODE_BIN=/path/to/node bash clients/python/run_tests.sh   # a prebuilt server
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else "the dkv client needs Python 3.9 or later, this is " + sys.version)'
exec "$PYTHON" -m unittest discover -s clients/python/tests -t clients/python/tests -v
