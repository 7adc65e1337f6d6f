"""A router's ``ShardChannel`` to an in-process ``ShardServer`` over a real socket, for tests
that script the shard's side."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from temporay.actors.transport import (
    COLLECT,
    RUN_BATCH,
    Endpoint,
    ShardServer,
    SocketTransport,
)
from temporay.cluster.routing import ShardChannel, ShardMember

SECRET = b"c" * 32


@contextmanager
def channel_to(
    run_batch: Callable[[bytes], bytes],
    collect: Callable[[bytes], bytes],
    *,
    name: str,
    max_inflight: int,
    max_batch: int,
) -> Iterator[ShardChannel]:
    """The channel, closed afterwards; fails if it reported its shard unreachable, timed out
    or stuck (no test here expects any of those)."""
    server = ShardServer("127.0.0.1", SECRET, {RUN_BATCH: run_batch, COLLECT: collect})
    host, port = server.address
    transport = SocketTransport(Endpoint(host, port, SECRET, server.local_name))
    failures: list[object] = []
    channel = ShardChannel(
        ShardMember(name=name, handle=None),
        transport,
        max_inflight=max_inflight,
        max_batch=max_batch,
        on_unreachable=lambda member, err: failures.append(err),
        on_timeout=lambda member: failures.append("timeout"),
        on_stuck=lambda member, n: failures.append(n),
    )
    try:
        yield channel
    finally:
        transport.close()
        server.close()
    assert failures == []
