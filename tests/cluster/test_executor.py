"""``HopExecutor`` with a ``RemoteRun`` over a real socket to a scripted shard.

The Worker hands ``_RunningWorkflow.activate`` to its executor; for a hosted run the executor
sends the activation from the submitting thread (the Worker's event loop) when that cannot block,
and leaves everything else (anything not hosted, a run still to be placed, a refused submission)
as a plain thread pool would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
from temporalio.worker._workflow import _RunningWorkflow

from bench.workloads import hosting as wf
from bench.workloads.instance_details import instance_details
from temporay import HopExecutor
from temporay.actors.wire import RunKey
from temporay.cluster.remote_run import RemoteRun
from temporay.cluster.routing import ShardChannel
from temporay.cluster.templates import TemplateBlob
from temporay.proto import hosting as pb
from tests.support.activations import activation, evict, fire_timer, initialize
from tests.support.channels import channel_to


class EchoShard:
    """Completes every activation successfully, noting which thread asked and whether it
    carried the run's spec (a first activation)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bool, float]] = []

    def run_batch(self, data: bytes) -> bytes:
        batch = pb.ActivationBatch.FromString(data)
        result = pb.BatchResult(shard_instance="echo")
        for item in batch.items:
            act = wfact.WorkflowActivation.FromString(item.activation)
            self.received.append((act.run_id, item.HasField("spec"), time.monotonic()))
            done = result.done.add()
            done.key.CopyFrom(item.key)
            done.completion = wfcomp.WorkflowActivationCompletion(
                run_id=act.run_id, successful=wfcomp.Success()
            ).SerializeToString()
        return result.SerializeToString()


@dataclass
class Host:
    """The runner as a run sees it, placing on one channel."""

    channel: ShardChannel
    at_once: bool = True
    deadlock_budget: float | None = 10.0
    placed_runs: list[str] = field(default_factory=list)

    def place(self, run: RemoteRun) -> ShardChannel:
        return self.channel

    def place_at_once(self, run: RemoteRun) -> ShardChannel | None:
        return self.channel if self.at_once else None

    def unplace(self, run: RemoteRun, channel: ShardChannel) -> None:
        pass

    def placed(self, run: RemoteRun) -> None:
        self.placed_runs.append(run.key.run_id)

    def forget(self, run: RemoteRun) -> None:
        pass

    def check_cluster(self) -> str | None:
        return None


@pytest.fixture
def host() -> Iterator[tuple[EchoShard, Host]]:
    shard = EchoShard()
    with channel_to(
        shard.run_batch, shard.run_batch, name="echo", max_inflight=2, max_batch=8
    ) as channel:
        yield shard, Host(channel)


def _running(host: Host) -> tuple[RemoteRun, _RunningWorkflow]:
    run_id = str(uuid.uuid4())
    det = instance_details(
        wf.NoopWorkflow, run_id=run_id, workflow_id="wf", task_queue="tq", randomness_seed=1
    )
    run = RemoteRun(host, RunKey("router", run_id, 1), det, TemplateBlob("tid", b"t", None), None)
    return run, _RunningWorkflow(run, "wf")


def _activation(run: RemoteRun, first: bool) -> wfact.WorkflowActivation:
    return activation(run.key.run_id, initialize("NoopWorkflow") if first else fire_timer(1))


def test_a_hosted_activation_leaves_before_its_thread_wakes(host: tuple[EchoShard, Host]) -> None:
    shard, runner = host
    executor = HopExecutor(4)
    run, running = _running(runner)
    first = executor.submit(running.activate, _activation(run, first=True)).result(5)
    assert first.run_id == run.key.run_id and first.HasField("successful")
    assert runner.placed_runs == [run.key.run_id]
    # The first request opened the connection; from now on the loop's thread sends itself.
    release = threading.Event()
    executor_busy = HopExecutor(1)
    executor_busy.submit(release.wait, 5)  # its one thread is taken for now
    submitted = time.monotonic()
    future = executor_busy.submit(running.activate, _activation(run, first=False))
    # The shard got the activation although the executor has no free thread to send it.
    deadline = time.monotonic() + 5
    while len(shard.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert len(shard.received) == 2 and shard.received[1][2] >= submitted
    assert not future.done()
    release.set()
    later = future.result(5)
    assert later.run_id == run.key.run_id and later.HasField("successful")
    assert [spec for _, spec, _ in shard.received] == [True, False]
    assert executor_busy.early == 1
    assert not run.busy
    executor.shutdown()
    executor_busy.shutdown()


def test_anything_not_hosted_runs_on_the_pool_as_submitted(host: tuple[EchoShard, Host]) -> None:
    shard, runner = host
    executor = HopExecutor(2)
    assert executor.submit(lambda a, b: a + b, 2, 3).result(5) == 5
    # A run whose placement would wait (shards starting, an actor of its own) is placed and
    # sent by its thread.
    runner.at_once = False
    run, running = _running(runner)
    done = executor.submit(running.activate, _activation(run, first=True)).result(5)
    assert done.HasField("successful") and shard.received[0][1]
    assert executor.early == 0
    # An eviction completes locally, on the pool, whatever the executor.
    act = activation(run.key.run_id, evict("bye"))
    evicted = executor.submit(running.activate, act).result(5)
    assert evicted.HasField("successful") and len(shard.received) == 1
    executor.shutdown()


def test_a_refused_submission_frees_the_line_and_the_run(host: tuple[EchoShard, Host]) -> None:
    _, runner = host
    executor = HopExecutor(2)
    run, running = _running(runner)
    executor.submit(running.activate, _activation(run, first=True)).result(5)
    executor.shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(running.activate, _activation(run, first=False))
    assert runner.channel._inflight == 0 and not run.busy
    # The run carries on with an executor that takes it.
    other = HopExecutor(2)
    assert (
        other.submit(running.activate, _activation(run, first=False))
        .result(5)
        .HasField("successful")
    )
    other.shutdown()
