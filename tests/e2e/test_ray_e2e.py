"""End to end: every kind of workflow through RayPlugin and RayWorkflowRunner, on both SDK engines,
against the real dev server and a real local Ray cluster."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.workloads import hosting as wf
from temporay import HopExecutor, RayPlugin, RayWorkflowRunner

pytestmark = pytest.mark.timeout(180)


@dataclass
class Hosted:
    client: Client
    task_queue: str
    runner: RayWorkflowRunner
    executor: Any
    """The Worker's workflow-task executor (``None``: the SDK's own)."""
    hop_expected: bool


def _plugin(engine: Any) -> Callable[[], tuple[dict[str, Any], RayWorkflowRunner | None]]:
    def setup() -> tuple[dict[str, Any], RayWorkflowRunner | None]:
        return {"plugins": [RayPlugin(shards=2, engine=engine)]}, None

    return setup


def _runner(
    engine: Any, hop: bool = False
) -> Callable[[], tuple[dict[str, Any], RayWorkflowRunner | None]]:
    def setup() -> tuple[dict[str, Any], RayWorkflowRunner | None]:
        runner = RayWorkflowRunner(shards=2, engine=engine)
        kwargs: dict[str, Any] = {"workflow_runner": runner}
        if hop:
            kwargs["workflow_task_executor"] = HopExecutor()
        return kwargs, runner

    return setup


SETUPS: dict[str, Callable[[], tuple[dict[str, Any], RayWorkflowRunner | None]]] = {
    "plugin-default-engine": _plugin(None),
    "runner-temporay-engine": _runner("temporay", hop=True),
    "plugin-sdk-engine": _plugin("sdk"),
    "plugin-sandboxed-engine": _plugin(SandboxedWorkflowRunner()),
    "runner-sdk-engine": _runner("sdk"),
    "runner-sandboxed-engine": _runner(SandboxedWorkflowRunner()),
}


@pytest_asyncio.fixture(scope="module", params=list(SETUPS))
async def hosted(
    request: pytest.FixtureRequest, temporal_env: Any, ray_cluster: None
) -> AsyncIterator[Hosted]:
    client = temporal_env.client
    task_queue = f"e2e-{request.param}-{uuid.uuid4().hex[:8]}"
    kwargs, own_runner = SETUPS[request.param]()
    async with AsyncExitStack() as stack:
        if own_runner is not None:
            await stack.enter_async_context(own_runner)
        executor = kwargs.get("workflow_task_executor")
        if executor is not None:
            stack.callback(executor.shutdown)
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=wf.ALL_WORKFLOWS,
            activities=wf.ALL_ACTIVITIES,
            **kwargs,
        )
        await stack.enter_async_context(worker)
        config = worker.config(active_config=True)
        runner = config["workflow_runner"]
        assert isinstance(runner, RayWorkflowRunner)
        # The plugin starts shards in run_worker, in the background: wait for them.
        for _ in range(1200):
            if runner.started:
                break
            await asyncio.sleep(0.05)
        assert runner.started, "the plugin did not start the runner's shards"
        hop_expected = request.param.startswith("plugin") or "workflow_task_executor" in kwargs
        yield Hosted(
            client, task_queue, runner, config.get("workflow_task_executor"), hop_expected
        )


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_noop_and_activity(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    assert await c.execute_workflow(wf.NoopWorkflow.run, id=_id("noop"), task_queue=tq) == "done"
    order = wf.Order("o-1", 42)
    result = await c.execute_workflow(
        wf.ActivityWorkflow.run, order, id=_id("act"), task_queue=tq
    )
    assert result == "charged o-1:42"
    result = await c.execute_workflow(
        wf.LocalActivityWorkflow.run, order, id=_id("lact"), task_queue=tq
    )
    assert result == "charged o-1:42"


async def test_activations_leave_from_the_event_loop_with_a_hop_executor(hosted: Hosted) -> None:
    """The plugin installs a ``HopExecutor`` (a Worker without one keeps the SDK's pool); with
    it, activations of a run placed on a free line are sent before their thread wakes."""
    executor = hosted.executor
    assert isinstance(executor, HopExecutor) == hosted.hop_expected
    before = executor.early if isinstance(executor, HopExecutor) else 0
    result = await hosted.client.execute_workflow(
        wf.TimerWorkflow.run, 3, id=_id("early"), task_queue=hosted.task_queue
    )
    assert result == 3
    if isinstance(executor, HopExecutor):
        # Four activations (start, three timers), one at a time on idle lines.
        assert executor.early - before >= 2


async def test_timers_and_many_concurrent(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    results = await asyncio.gather(
        *(
            c.execute_workflow(wf.TimerWorkflow.run, 3, id=_id("timer"), task_queue=tq)
            for _ in range(20)
        )
    )
    assert results == [3] * 20


async def test_signals_and_queries(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    handle = await c.start_workflow(wf.SignalQueryWorkflow.run, id=_id("sig"), task_queue=tq)
    await handle.signal(wf.SignalQueryWorkflow.add, "a")
    await handle.signal(wf.SignalQueryWorkflow.add, "b")
    assert await handle.query(wf.SignalQueryWorkflow.items) == ["a", "b"]
    await handle.signal(wf.SignalQueryWorkflow.finish)
    assert await handle.result() == ["a", "b"]


async def test_updates_validated_accepted_and_rejected(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    handle = await c.start_workflow(wf.UpdateWorkflow.run, id=_id("upd"), task_queue=tq)
    assert await handle.execute_update(wf.UpdateWorkflow.add, 5) == 5
    assert await handle.execute_update(wf.UpdateWorkflow.add, 7) == 12
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(wf.UpdateWorkflow.add, -1)
    assert "negative amounts are refused" in str(rejected.value.cause)
    await handle.signal(wf.UpdateWorkflow.finish)
    assert await handle.result() == 12


async def test_children_and_continue_as_new(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    assert await c.execute_workflow(wf.ParentWorkflow.run, 4, id=_id("parent"), task_queue=tq) == 12
    assert (
        await c.execute_workflow(
            wf.ContinueAsNewWorkflow.run, args=[3, 0], id=_id("can"), task_queue=tq
        )
        == 6
    )


async def test_cancellation(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    handle = await c.start_workflow(wf.CancellableWorkflow.run, id=_id("cancel"), task_queue=tq)
    # Wait until the activity is running, then cancel the workflow.
    for _ in range(200):
        desc = await handle.describe()
        if desc.raw_description.pending_activities:
            break
        await asyncio.sleep(0.05)
    await handle.cancel()
    assert await handle.result() == "handled cancel"


async def test_workflow_failures(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    with pytest.raises(WorkflowFailureError) as failed:
        await c.execute_workflow(wf.FailingWorkflow.run, "application", id=_id("f"), task_queue=tq)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "Deliberate" and cause.details == ({"detail": 1},)
    with pytest.raises(WorkflowFailureError) as failed:
        await c.execute_workflow(wf.FailingWorkflow.run, "activity", id=_id("f"), task_queue=tq)
    assert isinstance(failed.value.cause, ActivityError)
    assert isinstance(failed.value.cause.cause, ApplicationError)
    assert failed.value.cause.cause.type == "PaymentDeclined"


async def test_plain_exception_fails_the_task_not_the_workflow(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    handle = await c.start_workflow(wf.TaskFailureWorkflow.run, id=_id("tf"), task_queue=tq)
    failure_message = ""
    for _ in range(200):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure_message = event.workflow_task_failed_event_attributes.failure.message
        if failure_message:
            break
        await asyncio.sleep(0.05)
    assert "plain exception: this fails the task" in failure_message
    desc = await handle.describe()
    assert desc.status is not None and desc.status.name == "RUNNING"
    await handle.terminate("test done")


async def test_cpu_workflow(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    expected = 0
    for i in range(20000):
        expected = (expected * 31 + i) % 1_000_003
    assert await c.execute_workflow(wf.CpuWorkflow.run, 20000, id=_id("cpu"), task_queue=tq) == expected


async def test_runs_are_spread_over_shards_and_listed_in_the_registry(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    handles = [
        await c.start_workflow(wf.SignalQueryWorkflow.run, id=_id("spread"), task_queue=tq)
        for _ in range(6)
    ]
    for h in handles:
        assert await h.query(wf.SignalQueryWorkflow.items) == []
    runner = hosted.runner
    # Registry reports are batched every second.
    directory: list[dict[str, Any]] = []
    for _ in range(100):
        runner.report_to_registry()
        directory = await runner.registry.runs.remote()
        found = {r["run_id"] for r in directory}
        if all(h.result_run_id in found for h in handles):
            break
        await asyncio.sleep(0.1)
    shards_used = {r["shard"] for r in directory if r["run_id"] in {h.result_run_id for h in handles}}
    assert len(shards_used) == 2
    stats = await runner.registry.stats.remote()
    assert sum(int(s.get("runs", 0)) for s in stats) >= 6
    for h in handles:
        await h.signal(wf.SignalQueryWorkflow.finish)
        assert await h.result() == []


async def test_deadlock_is_a_clear_task_failure_with_the_shard_stack(hosted: Hosted) -> None:
    c, tq = hosted.client, hosted.task_queue
    handle = await c.start_workflow(
        wf.DeadlockWorkflow.run, 2_000_000_000, id=_id("deadlock"), task_queue=tq,
        task_timeout=timedelta(seconds=10),
    )
    failure = None
    for _ in range(200):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure
        if failure is not None:
            break
        await asyncio.sleep(0.1)
    assert failure is not None
    assert "TMPRL1101" in failure.message
    # The stack is the stuck thread's, captured inside the shard.
    assert "DeadlockWorkflow" in failure.stack_trace or "workloads/hosting.py" in failure.stack_trace
    await handle.terminate("test done")
