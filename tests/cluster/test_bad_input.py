"""Bad input gets a clear task failure and never a hung worker: an activation for an unknown run,
an unloadable workflow module, an engine that raises on creation, a shard that blocks forever."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from bench.workloads import hosting as wf
from temporay import RayWorkflowRunner
from temporay.actors.wire import RunKey
from temporay.cluster.routing import InFlightActivation
from temporay.proto import hosting as pb
from temporay.runtime.hosting.failures import failed_completion
from tests.support.activations import activation, fire_timer
from tests.support.bad_engines import ExplodingEngine

pytestmark = pytest.mark.timeout(240)


async def _task_failure(handle: WorkflowHandle[Any, Any], timeout: float = 60.0) -> str:
    """The message of the first workflow-task failure in the workflow's history."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return str(event.workflow_task_failed_event_attributes.failure.message)
        await asyncio.sleep(0.1)
    raise AssertionError("no workflow task failure appeared")


def test_activation_for_an_unknown_run_is_a_clear_failure(ray_cluster: None) -> None:
    with RayWorkflowRunner(shards=1) as runner:
        channel = runner._pool().place()
        key = RunKey(runner.router_id, "no-such-run", 1)
        act = activation("no-such-run", fire_timer(1))
        envelope = pb.ActivationEnvelope(activation=act.SerializeToString())
        key.to_proto(envelope.key)
        pending = InFlightActivation(key, envelope, deadline=float("inf"))
        channel.activate(pending)
        assert pending.result is not None and pending.result.run_lost
        completion = type(failed_completion("x", RuntimeError())).FromString(
            pending.result.completion
        )
        assert "does not hold" in completion.failed.failure.message


async def test_unloadable_workflow_module_fails_the_task_clearly(
    client: Client, ray_cluster: None, tmp_path: Path, task_queue: str
) -> None:
    module_name = f"unshipped_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module_name}.py").write_text(
        textwrap.dedent(
            """
            from temporalio import workflow

            @workflow.defn
            class Unshipped:
                @workflow.run
                async def run(self) -> str:
                    return "should not run"
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = __import__(module_name)
        # py_modules=[] says "ship nothing": the shard cannot import the module.
        runner = RayWorkflowRunner(shards=1, runtime_env={"py_modules": []})
        async with runner, Worker(
            client, task_queue=task_queue, workflows=[module.Unshipped], workflow_runner=runner
        ):
            handle = await client.start_workflow(
                module.Unshipped.run, id=f"unshipped-{uuid.uuid4().hex[:8]}", task_queue=task_queue
            )
            message = await _task_failure(handle)
            assert "could not load the workflow code" in message
            assert module_name in message
            await handle.terminate("test done")
    finally:
        sys.path.remove(str(tmp_path))


async def test_engine_raising_on_creation_fails_the_task_clearly(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    runner = RayWorkflowRunner(shards=1, engine=ExplodingEngine())
    async with runner, Worker(
        client, task_queue=task_queue, workflows=[wf.NoopWorkflow], workflow_runner=runner
    ):
        handle = await client.start_workflow(
            wf.NoopWorkflow.run, id=f"explode-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        message = await _task_failure(handle)
        assert "engine refused to create run" in message
        await handle.terminate("test done")


async def test_a_frozen_shard_is_replaced_and_its_runs_complete(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    runner = RayWorkflowRunner(shards=2)
    async with runner, Worker(
        client,
        task_queue=task_queue,
        workflows=[wf.SignalQueryWorkflow],
        workflow_runner=runner,
    ):
        handles = [
            await client.start_workflow(
                wf.SignalQueryWorkflow.run, id=f"frozen-{i}-{uuid.uuid4().hex[:6]}", task_queue=task_queue
            )
            for i in range(6)
        ]
        for h in handles:
            await h.signal(wf.SignalQueryWorkflow.add, "before")
        for h in handles:
            assert await h.query(wf.SignalQueryWorkflow.items) == ["before"]
        victim = runner._pool().channels()[0].member
        stats = pb.ShardStats.FromString(
            await asyncio.wrap_future(victim.handle.stats.remote().future())
        )
        # Freeze the whole shard process: it answers nothing any more, not even pings.
        os.kill(stats.pid, signal.SIGSTOP)
        try:
            for h in handles:
                await h.signal(wf.SignalQueryWorkflow.add, "after")
                await h.signal(wf.SignalQueryWorkflow.finish)
            results = await asyncio.wait_for(
                asyncio.gather(*(h.result() for h in handles)), timeout=120
            )
        finally:
            _continue(stats.pid)
        assert results == [["before", "after"]] * len(handles)
        assert not victim.alive
        for _ in range(600):
            if runner._pool().live_count() == 2:
                break
            await asyncio.sleep(0.1)
        assert runner._pool().live_count() == 2, "a replacement shard joined"


def _continue(pid: int, kill: Callable[[int, int], None] = os.kill) -> None:
    try:
        kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


async def test_a_shard_with_threads_stuck_in_c_is_recycled(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    runner = RayWorkflowRunner(shards=1, isolation=False, shims=False)
    async with runner, Worker(
        client,
        task_queue=task_queue,
        workflows=[wf.BlockedInCWorkflow, wf.NoopWorkflow],
        workflow_runner=runner,
    ):
        original = runner._pool().channels()[0].member
        blocked = [
            await client.start_workflow(
                wf.BlockedInCWorkflow.run, 120.0, id=f"stuck-{i}-{uuid.uuid4().hex[:6]}",
                task_queue=task_queue,
            )
            for i in range(4)
        ]
        for h in blocked:
            assert "TMPRL1101" in await _task_failure(h)
        # The next answer from the shard reports its stuck threads: the router recycles it.
        for h in blocked:
            await h.terminate("test done")
        result = await client.execute_workflow(
            wf.NoopWorkflow.run, id=f"after-stuck-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        )
        assert result == "done"
        for _ in range(600):
            if not original.alive and runner._pool().live_count() == 1:
                break
            await asyncio.sleep(0.1)
        assert not original.alive, "the shard with stuck threads was recycled"
        assert runner._pool().live_count() == 1
