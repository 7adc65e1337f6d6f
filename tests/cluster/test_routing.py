"""A router's line to one shard (``ShardChannel``) over a real socket, with a scripted shard.

At low load each activation is its own request and its caller returns as soon as the answer is
in; under load activations queue and leave in batches led by one of their callers; items a shard
leaves pending are collected; a request begun on the Worker's event loop (``start``) is sent at
once when that cannot block and finished by its caller's thread. The shard here answers from the
request itself (the completion carries the activation's bytes back), slowly enough for callers
to pile up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from temporay.actors.transport import ShardUnreachable
from temporay.actors.wire import RunKey
from temporay.cluster.routing import (
    EARLY_SEND_MAX,
    CallFailure,
    InFlightActivation,
    ShardChannel,
    ShardMember,
)
from temporay.cluster.wakeup import Wakeup
from temporay.proto import hosting as pb
from tests.support.channels import channel_to


class ScriptedShard:
    """Answers each item with its own activation bytes; leaves runs named ``slow-*`` pending
    on the batch that carried them and answers them on ``collect``."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.budgets_ms: list[int] = []
        self.disposed: list[str] = []
        self.collected: list[str] = []
        self._held: dict[RunKey, bytes] = {}

    def run_batch(self, data: bytes) -> bytes:
        batch = pb.ActivationBatch.FromString(data)
        self.batch_sizes.append(len(batch.items))
        self.disposed += [key.run_id for key in batch.dispose]
        time.sleep(0.01)
        result = pb.BatchResult(shard_instance="one")
        for item in batch.items:
            self.budgets_ms.append(item.budget_ms)
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
    with channel_to(
        scripted.run_batch, scripted.collect, name="scripted", max_inflight=1, max_batch=64
    ) as channel:
        yield scripted, channel


def _pending(run_id: str, body: bytes | None = None) -> InFlightActivation:
    """An activation made as ``RemoteRun`` makes it: its envelope in a one-item batch of its
    own, sent as is when it leaves alone, copied when it leaves with others."""
    alone = pb.ActivationBatch()
    envelope = alone.items.add()
    envelope.activation = run_id.encode() if body is None else body
    key = RunKey("router", run_id, 1)
    key.to_proto(envelope.key)
    return InFlightActivation(key, envelope, time.monotonic() + 30, alone)


def _activate(channel: ShardChannel, run_id: str) -> bytes:
    pending = _pending(run_id)
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


def test_an_activation_leaving_alone_carries_its_budget_and_the_disposals(
    shard: tuple[ScriptedShard, ShardChannel],
) -> None:
    scripted, channel = shard
    channel.dispose(RunKey("router", "finished", 1))
    pending = _pending("run-a")
    channel.activate(pending)
    assert pending.result is not None and pending.result.completion == b"run-a"
    assert pending.alone is None  # its batch was sent, and is not sent again
    assert scripted.disposed == ["finished"]
    assert scripted.batch_sizes == [1]
    assert 25_000 < scripted.budgets_ms[0] <= 30_000
    # Without a batch of its own (queued activations are copied into a new one) alike.
    bare = _pending("run-b")
    bare.alone = None
    channel.dispose(RunKey("router", "finished-too", 1))
    channel.activate(bare)
    assert bare.result is not None and bare.result.completion == b"run-b"
    assert scripted.disposed == ["finished", "finished-too"]
    assert 25_000 < scripted.budgets_ms[1] <= 30_000


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


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_start_sends_on_a_free_line_before_the_caller_thread_reads_the_answer(
    shard: tuple[ScriptedShard, ShardChannel],
) -> None:
    scripted, channel = shard
    _activate(channel, "warm")  # opens the connection start may use
    pending = _pending("early")
    assert channel.start(pending)
    assert pending.begun_early and pending.sent_early
    # The shard has the request before anyone waits for the answer.
    assert _wait_for(lambda: scripted.batch_sizes == [1, 1])
    channel.activate(pending)
    assert pending.result is not None and pending.result.completion == b"early"
    assert _activate(channel, "after") == b"after"  # the line is free again


def test_start_on_a_busy_line_leaves_the_activation_to_queue_on_its_thread(
    shard: tuple[ScriptedShard, ShardChannel],
) -> None:
    scripted, channel = shard
    _activate(channel, "warm")
    first, second = _pending("first"), _pending("second")
    assert channel.start(first)
    assert not channel.start(second)  # max_inflight=1: the line is taken
    assert not second.begun_early
    with ThreadPoolExecutor(2) as pool:
        queued = pool.submit(channel.activate, second)
        assert _wait_for(lambda: channel._queue == [second])
        pool.submit(channel.activate, first).result(5)
        queued.result(5)
    assert first.result is not None and first.result.completion == b"first"
    assert second.result is not None and second.result.completion == b"second"
    assert scripted.batch_sizes == [1, 1, 1]


def test_start_opens_no_connection_and_sends_nothing_large(
    shard: tuple[ScriptedShard, ShardChannel],
) -> None:
    """Opening a connection takes a round trip, a large send can fill the socket's buffer:
    neither happens on the event loop; the caller's thread sends instead."""
    scripted, channel = shard
    fresh = _pending("fresh")  # no connection open yet
    assert channel.start(fresh)
    assert fresh.begun_early and not fresh.sent_early and fresh.early_error is None
    channel.activate(fresh)
    assert fresh.result is not None and fresh.result.completion == b"fresh"
    big_body = b"x" * (EARLY_SEND_MAX + 1)
    big = _pending("big", big_body)
    assert channel.start(big)
    assert big.begun_early and not big.sent_early
    assert scripted.batch_sizes == [1]
    channel.activate(big)
    assert big.result is not None and big.result.completion == big_body
    assert scripted.batch_sizes == [1, 1]


def test_an_abandoned_start_fails_its_activation_and_frees_the_line(
    shard: tuple[ScriptedShard, ShardChannel],
) -> None:
    _, channel = shard
    _activate(channel, "warm")
    pending = _pending("refused")
    assert channel.start(pending) and pending.sent_early
    channel.abandon(pending)
    assert pending.result is None and pending.failure is not None
    assert pending.failure.kind == "error"
    # Its connection (with an answer nobody will read) is closed; the next request opens one.
    assert _activate(channel, "next") == b"next"


class _GoneTransport:
    """A transport to a shard that has just died: every send fails."""

    def send(
        self, kind: int, payload: bytes, timeout: float | None, may_block: bool = True
    ) -> None:
        raise ShardUnreachable("connection refused")

    def close(self) -> None:
        pass


def test_a_failed_early_send_is_reported_on_the_callers_thread() -> None:
    reported: list[tuple[int, BaseException]] = []
    channel = ShardChannel(
        ShardMember(name="gone", handle=None),
        _GoneTransport(),
        max_inflight=1,
        max_batch=8,
        on_unreachable=lambda member, err: reported.append((threading.get_ident(), err)),
        on_timeout=lambda member: None,
        on_stuck=lambda member, n: None,
    )
    pending = _pending("lost")
    assert channel.start(pending)  # never raises
    assert isinstance(pending.early_error, ShardUnreachable)
    assert reported == []  # nothing reported on the event loop
    caller = ThreadPoolExecutor(1)
    caller.submit(channel.activate, pending).result(5)
    caller_thread = caller.submit(threading.get_ident).result(5)
    caller.shutdown()
    assert pending.failure == CallFailure("shard_lost", "shard gone: connection refused")
    assert [ident for ident, _ in reported] == [caller_thread]
    assert channel.start(_pending("again"))  # the line was freed
