"""Deterministic shims (runtime/isolation/shims/determinism.py) against the real dev server: replay, restart,
scoping, strict mode, read-only contexts."""

from __future__ import annotations

import asyncio
import datetime as real_datetime
import random
import time
import uuid
from datetime import timedelta

import pytest
import temporalio.workflow
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.worker import Replayer, Worker

from temporay.runtime.isolation.run_state import CURRENT_RUN, RunState
from temporay.runtime.isolation.shims import determinism
from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.runtime.isolation.workflows import shims


def _worker(client: Client, task_queue: str, runner: LocalWorkflowRunner, **kwargs) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[
            shims.ShimsWorkflow,
            shims.StrictShimsWorkflow,
            shims.UnrestrictedWorkflow,
            shims.ClockScopeWorkflow,
            shims.QueryDrawWorkflow,
        ],
        activities=[shims.record],
        workflow_runner=runner,
        **kwargs,
    )


async def _wait_until_waiting_for_signal(handle: WorkflowHandle) -> dict[str, str]:
    """Until the activity has completed and the next task too; returns the activity's input."""
    for _ in range(400):
        recorded = None
        completed_after = False
        async for event in handle.fetch_history_events():
            if event.HasField("activity_task_scheduled_event_attributes"):
                attrs = event.activity_task_scheduled_event_attributes
                recorded = (await _converter_values(handle, attrs.input))[0]
            if event.HasField("activity_task_completed_event_attributes"):
                completed_after = False
            if recorded is not None and event.HasField("workflow_task_completed_event_attributes"):
                completed_after = True
        if recorded is not None and completed_after:
            return recorded
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow never reached its signal wait")


async def _converter_values(handle: WorkflowHandle, payloads) -> list:
    return await handle._client.data_converter.decode(payloads.payloads, [dict[str, str]])


async def _task_failures(handle: WorkflowHandle) -> list[str]:
    return [
        event.workflow_task_failed_event_attributes.failure.message
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_task_failed_event_attributes")
    ]


async def test_shims_are_consistent_and_replay_identically(
    client: Client, task_queue: str
) -> None:
    async with _worker(client, task_queue, LocalWorkflowRunner()):
        handle = await client.start_workflow(
            shims.ShimsWorkflow.run,
            id=f"shims-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        recorded = await _wait_until_waiting_for_signal(handle)
        await handle.signal(shims.ShimsWorkflow.proceed)
        result = await handle.result()
    assert result["checks"] == {
        "time_is_workflow_time": True,
        "now_is_workflow_now": True,
        "naive_now_is_utc": True,
        "isinstance_real": True,
        "workflow_uuid4_unshifted": True,
    }
    before, after = result["before"], result["after"]
    assert before == recorded
    # Within an activation the clock stands still; across activations it moves on, and the
    # random stream continues.
    assert before["time"] == before["from_time_import"] == before["monotonic"]
    assert float(after["time"]) > float(before["time"])
    for key in ("random", "uuid4", "uuid1", "urandom", "token_hex", "unseeded_random"):
        assert before[key] != after[key], key
    assert uuid.UUID(before["uuid4"]).version == 4 and uuid.UUID(before["uuid1"]).version == 1
    assert real_datetime.datetime.fromisoformat(before["datetime_now_utc"]) == (
        real_datetime.datetime.fromtimestamp(int(before["time_ns"]) / 1e9, real_datetime.UTC)
    )
    assert not await _task_failures(handle)

    history = await handle.fetch_history()
    replayed = await Replayer(
        workflows=[shims.ShimsWorkflow], workflow_runner=LocalWorkflowRunner()
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None

    # The control: without shims the values differ on replay, and sdk-core notices.
    unshimmed = await Replayer(
        workflows=[shims.ShimsWorkflow], workflow_runner=LocalWorkflowRunner(shims=False)
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert unshimmed.replay_failure is not None
    assert "nondetermin" in str(unshimmed.replay_failure).lower()


async def test_shims_survive_a_worker_restart(client: Client, task_queue: str) -> None:
    workflow_id = f"shims-restart-{uuid.uuid4()}"
    async with _worker(client, task_queue, LocalWorkflowRunner()):
        handle = await client.start_workflow(
            shims.ShimsWorkflow.run,
            id=workflow_id,
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        recorded = await _wait_until_waiting_for_signal(handle)
    # A new worker (new runner, empty cache) replays the history up to the signal wait.
    async with _worker(client, task_queue, LocalWorkflowRunner(), max_cached_workflows=0):
        await handle.signal(shims.ShimsWorkflow.proceed)
        result = await handle.result()
    assert result["before"] == recorded
    assert all(result["checks"].values())
    assert not await _task_failures(handle)


async def test_shims_are_scoped_to_workflow_code(client: Client, task_queue: str) -> None:
    async with _worker(client, task_queue, LocalWorkflowRunner()):
        result = await client.execute_workflow(
            shims.ClockScopeWorkflow.run, id=f"scope-{uuid.uuid4()}", task_queue=task_queue
        )
        unrestricted = await client.execute_workflow(
            shims.UnrestrictedWorkflow.run, id=f"unres-{uuid.uuid4()}", task_queue=task_queue
        )
    assert result == {
        "shim_is_workflow_time": True,
        "log_record_real": True,
        "other_thread_real": True,
    }
    assert unrestricted == {"real_clock": True}


async def test_strict_mode_refuses_like_the_sdk(client: Client, task_queue: str) -> None:
    async with _worker(client, task_queue, LocalWorkflowRunner(strict=True)):
        refused = await client.execute_workflow(
            shims.StrictShimsWorkflow.run, id=f"strict-{uuid.uuid4()}", task_queue=task_queue
        )
    assert refused.startswith("RestrictedWorkflowAccessError")
    assert "time.time" in refused and "workflow.time()" in refused
    async with _worker(client, task_queue + "-lenient", LocalWorkflowRunner()):
        allowed = await client.execute_workflow(
            shims.StrictShimsWorkflow.run,
            id=f"lenient-{uuid.uuid4()}",
            task_queue=task_queue + "-lenient",
        )
    assert allowed == "allowed"


async def test_draws_are_refused_in_queries(client: Client, task_queue: str) -> None:
    async with _worker(client, task_queue, LocalWorkflowRunner()):
        handle = await client.start_workflow(
            shims.QueryDrawWorkflow.run, id=f"query-{uuid.uuid4()}", task_queue=task_queue
        )
        assert isinstance(await handle.query(shims.QueryDrawWorkflow.clock), float)
        with pytest.raises(WorkflowQueryFailedError, match=r"random\.random"):
            await handle.query(shims.QueryDrawWorkflow.draw)
        await handle.signal(shims.QueryDrawWorkflow.finish)
        await handle.result()


def test_stand_ins_outside_a_run_are_the_real_functions() -> None:
    stand_ins = determinism._STAND_IN_MODULES
    assert CURRENT_RUN.get() is None
    assert abs(stand_ins["time"].time() - time.time()) < 60
    random.seed(7)
    expected = random.random()
    random.seed(7)
    assert stand_ins["random"].random() == expected  # the global random instance
    assert stand_ins["uuid"].uuid4() != stand_ins["uuid"].uuid4()
    shim_datetime = stand_ins["datetime"].datetime
    assert type(shim_datetime(2020, 1, 1)) is real_datetime.datetime
    assert isinstance(real_datetime.datetime.now(), shim_datetime)
    assert abs(shim_datetime.now() - real_datetime.datetime.now()) < timedelta(minutes=1)


def test_streams_are_per_run_and_seeded() -> None:
    def draws(seed: int) -> list[object]:
        state = RunState(seed)
        state.time_ns = 1_000_000_000_000_000_000
        token = CURRENT_RUN.set(state)
        try:
            mods = determinism._STAND_IN_MODULES
            return [
                mods["random"].random(),
                mods["uuid"].uuid4(),
                mods["os"].urandom(4),
                mods["secrets"].token_hex(4),
                mods["time"].time(),
                mods["datetime"].datetime.now(real_datetime.UTC),
            ]
        finally:
            CURRENT_RUN.reset(token)

    assert draws(1) == draws(1)
    assert draws(1)[:4] != draws(2)[:4]
    # Not workflow.random()'s stream: that one is random.Random(seed).
    assert draws(1)[0] != random.Random(1).random()
    assert draws(1)[4] == 1e9
    state = RunState(1)
    first = state.rng().random()
    state.reseed(1)
    assert state.rng().random() == first
    state.reseed(2)
    assert state.rng().random() != first


def test_strict_state_refuses_outside_workflow_loop() -> None:
    token = CURRENT_RUN.set(RunState(1, strict=True))
    try:
        with pytest.raises(temporalio.workflow.NondeterminismError, match="strict mode"):
            determinism._STAND_IN_MODULES["uuid"].uuid4()
    finally:
        CURRENT_RUN.reset(token)
