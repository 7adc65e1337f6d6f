"""A router's line to one shard (``ShardChannel``) over a real socket, with a scripted shard.

At low load each activation is its own request and its caller returns as soon as the answer is
in; under load activations queue and leave in batches led by one of their callers; items a shard
leaves pending are collected. The shard here answers from the request itself (the completion
carries the activation's bytes back), slowly enough for callers to pile up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from temporay.actors.transport import (
    COLLECT,
    RUN_BATCH,
    Endpoint,
    ShardServer,
    SocketTransport,
)
from temporay.actors.wire import RunKey
from temporay.cluster.routing import PendingActivation, ShardChannel, ShardMember, Wakeup
from temporay.proto import hosting as pb

SECRET = b"r" * 32


class ScriptedShard:
    """Answers each item with its own activation bytes; leaves runs named ``slow-*`` pending
    on the batch that carried them and answers them on ``collect``."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.collected: list[str] = []
        self._held: dict[RunKey, bytes] = {}

    def run_batch(self, data: bytes) -> bytes:
        batch = pb.ActivationBatch.FromString(data)
        self.batch_sizes.append(len(batch.items))
        time.sleep(0.01)
        result = pb.BatchResult(shard_instance="one")
        for item in batch.items:
            key = RunKey.from_proto(item.key)
            if key.run_id.startswith("slow-"):
                self._held[key] = item.activation
                key.to_proto(result.pending.add())
            else:
                done = result.done.add()
                key.to_proto(done.key)
                done.completion = item.activation
        return result.SerializeToString()

    def collect(self, data: bytes) -> bytes:
        result = pb.BatchResult(shard_instance="one")
        for proto_key in pb.ActivationBatch.FromString(data).dispose:
            key = RunKey.from_proto(proto_key)
            self.collected.append(key.run_id)
            done = result.done.add()
            key.to_proto(done.key)
            done.completion = self._held.pop(key)
        return result.SerializeToString()


@pytest.fixture
def shard() -> Iterator[tuple[ScriptedShard, ShardChannel]]:
    scripted = ScriptedShard()
    server = ShardServer(
        "127.0.0.1", SECRET, {RUN_BATCH: scripted.run_batch, COLLECT: scripted.collect}
    )
    host, port = server.address
    transport = SocketTransport(Endpoint(host, port, SECRET, server.local_name))
    failures: list[object] = []
    channel = ShardChannel(
        ShardMember(name="scripted", handle=None),
        transport,
        max_inflight=1,
        max_batch=64,
        on_unreachable=lambda member, err: failures.append(err),
        on_timeout=lambda member: failures.append("timeout"),
        on_stuck=lambda member, n: failures.append(n),
    )
    yield scripted, channel
    transport.close()
    server.close()
    assert failures == []


def _activate(channel: ShardChannel, run_id: str) -> bytes:
    envelope = pb.ActivationEnvelope(activation=run_id.encode())
    key = RunKey("router", run_id, 1)
    key.to_proto(envelope.key)
    pending = PendingActivation(key, envelope, time.monotonic() + 30)
    channel.activate(pending)
    assert pending.result is not None, pending.failure
    return pending.result.completion


def test_alone_each_activation_is_its_own_request(
    shard: tuple[ScriptedShard, ShardChannel],
) -> None:
    scripted, channel = shard
    for i in range(3):
        assert _activate(channel, f"run-{i}") == f"run-{i}".encode()
    assert scripted.batch_sizes == [1, 1, 1]


def test_under_load_activations_leave_in_batches_and_each_caller_gets_its_own(
    shard: tuple[ScriptedShard, ShardChannel],
) -> None:
    scripted, channel = shard
    names = [f"run-{i}" for i in range(40)] + [f"slow-{i}" for i in range(5)]
    with ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(lambda name: _activate(channel, name), names))
    assert answers == [name.encode() for name in names]
    assert sum(scripted.batch_sizes) == len(names)
    assert max(scripted.batch_sizes) > 1  # callers piled up behind the line's one request
    assert sorted(scripted.collected) == sorted(n for n in names if n.startswith("slow-"))


def test_a_wakeup_is_set_once_waited_for_once_and_times_out_when_not_set() -> None:
    wakeup = Wakeup()
    assert not wakeup.wait(0.01)
    wakeup.set()
    wakeup.set()  # setting twice is setting
    assert wakeup.wait(None)
    assert not wakeup.wait(0)  # consumed by the wait
    wakeup.set()
    wakeup.clear()
    assert not wakeup.wait(0)
    woke = threading.Event()

    def waiter() -> None:
        if wakeup.wait(5):
            woke.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.05)
    assert not woke.is_set()
    wakeup.set()
    thread.join(5)
    assert woke.is_set()
