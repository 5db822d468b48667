"""dkv: the Python client of dkv, a durable replicated key-value store.

    from dkv import KVClient
    with KVClient(port=9999) as c:
        c.Set("hello", "world")
        print(c.Get("hello"))        # world; None for a missing key

KVClient talks to one server (a single node, or any node of a mesh);
ClusterKVClient to a Raft cluster, following its leader, with exactly-once
writes. Both speak TLS to a server started with --tls-cert when given
``ssl_context=ssl.create_default_context(cafile="certs/ca.pem")``. The
exceptions are in dkv.errors and exported here. The wire
protocol is docs/PROTOCOL.md in the dkv repository. Standard library only.
"""

from .client import KVClient, Pipeline
from .protocol import INT64_MAX, INT64_MIN, TTL_MS_MAX, ScanPage
from .cluster import ClusterKVClient
from .errors import (
    AuthFailed,
    AuthRequired,
    BadRequest,
    ClientClosed,
    ConditionFailed,
    ConditionRefusedEarlier,
    ConnectionFailed,
    ConnectionLost,
    DiskFull,
    StoreFull,
    DKVError,
    IndexesDisabled,
    Internal,
    NotFound,
    NotImplementedByServer,
    NotInteger,
    NotLeader,
    OutcomeUnknown,
    Overflow,
    ProtocolError,
    RequestTimeout,
    ResponseTooLarge,
    ScanExpired,
    ServerError,
    ServerIOError,
    ServerTimeout,
    SessionExpired,
    TLSError,
    TLSRequired,
    TooLarge,
    TooManyConnections,
    Unavailable,
    UnknownOp,
    UnknownOutcome,
)

__version__ = "0.1.0"

__all__ = [
    "KVClient",
    "ClusterKVClient",
    "Pipeline",
    "ScanPage",
    "TTL_MS_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "AuthFailed",
    "AuthRequired",
    "BadRequest",
    "ClientClosed",
    "ConditionFailed",
    "ConditionRefusedEarlier",
    "ConnectionFailed",
    "ConnectionLost",
    "DiskFull",
    "StoreFull",
    "DKVError",
    "IndexesDisabled",
    "Internal",
    "NotFound",
    "NotImplementedByServer",
    "NotInteger",
    "NotLeader",
    "OutcomeUnknown",
    "Overflow",
    "ProtocolError",
    "RequestTimeout",
    "ResponseTooLarge",
    "ScanExpired",
    "ServerError",
    "ServerIOError",
    "ServerTimeout",
    "SessionExpired",
    "TLSError",
    "TLSRequired",
    "TooLarge",
    "TooManyConnections",
    "Unavailable",
    "UnknownOp",
    "UnknownOutcome",
]
