"""Workflow cancellation: unhandled, handled (with cleanup), during an activity, shielded work,
cancellation arriving with the first task, cancellation reason."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

from ..harness import Drive, Scenario, describe_error, outcome_of
from .activities import echo, heartbeating


@workflow.defn
class UnhandledCancelWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(100)


@workflow.defn
class HandledCancelWorkflow:
    @workflow.run
    async def run(self) -> Any:
        try:
            await workflow.wait_condition(lambda: False)
        except asyncio.CancelledError:
            # Cleanup after cancellation: activities and timers still work.
            cleanup = await workflow.execute_activity(
                echo, "cleanup", start_to_close_timeout=timedelta(seconds=5)
            )
            await workflow.sleep(0.05)
            return {"cleanup": cleanup, "reason": workflow.cancellation_reason()}
        return "not cancelled"


@workflow.defn
class CancelDuringActivityWorkflow:
    @workflow.run
    async def run(self, swallow: bool) -> Any:
        try:
            return await workflow.execute_activity(
                heartbeating,
                10.0,
                start_to_close_timeout=timedelta(seconds=20),
                heartbeat_timeout=timedelta(seconds=2),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as err:
            if swallow:
                return describe_error(err)
            raise


@workflow.defn
class ShieldedWorkWorkflow:
    @workflow.run
    async def run(self) -> Any:
        work = asyncio.ensure_future(
            workflow.execute_activity(echo, "shielded", start_to_close_timeout=timedelta(seconds=5))
        )
        try:
            await asyncio.shield(work)
            await workflow.sleep(100)
        except asyncio.CancelledError:
            return await work
        return "not cancelled"


@workflow.defn
class CancelReRaiseDifferentWorkflow:
    """Raising a different error after cancellation fails the workflow instead."""

    @workflow.run
    async def run(self, kind: str) -> None:
        try:
            await workflow.sleep(100)
        except asyncio.CancelledError:
            if kind == "app":
                raise CancelledError("explicit temporal cancelled error")  # noqa: B904
            raise ValueError("plain error after cancel fails the task") from None


@workflow.defn
class CancelledChildTaskWorkflow:
    """Cancelling a task inside the workflow is not a workflow cancellation."""

    @workflow.run
    async def run(self) -> str:
        task = asyncio.create_task(workflow.sleep(100))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        # An asyncio.CancelledError escaping without a cancel request fails the workflow.
        await task
        return "unreachable"


async def _cancel_after(handle: Any, seconds: float) -> Any:
    await asyncio.sleep(seconds)
    await handle.cancel()
    return await outcome_of(handle)


async def _drive_unhandled(d: Drive) -> Any:
    handle = await d.start(UnhandledCancelWorkflow.run, name="unhandled")
    return await _cancel_after(handle, 0.3)


async def _drive_handled(d: Drive) -> Any:
    handle = await d.start(HandledCancelWorkflow.run, name="handled")
    return await _cancel_after(handle, 0.3)


async def _drive_immediate(d: Drive) -> Any:
    # Cancel right after start: often in the same first workflow task as initialize.
    handle = await d.start(HandledCancelWorkflow.run, name="immediate")
    await handle.cancel()
    handle2 = await d.start(UnhandledCancelWorkflow.run, name="immediate2")
    await handle2.cancel()
    return [await outcome_of(handle), await outcome_of(handle2)]


async def _drive_during_activity(d: Drive) -> Any:
    out = []
    for swallow in (False, True):
        handle = await d.start(CancelDuringActivityWorkflow.run, swallow, name=f"act-{swallow}")
        out.append(await _cancel_after(handle, 0.5))
    return out


async def _drive_shielded(d: Drive) -> Any:
    handle = await d.start(ShieldedWorkWorkflow.run, name="shielded")
    return await _cancel_after(handle, 0.3)


async def _drive_reraise(d: Drive) -> Any:
    handle = await d.start(CancelReRaiseDifferentWorkflow.run, "app", name="reraise-app")
    return await _cancel_after(handle, 0.3)


async def _drive_child_task(d: Drive) -> Any:
    return await d.execute(CancelledChildTaskWorkflow.run, name="childtask")


SCENARIOS = [
    Scenario("cancel_unhandled", [UnhandledCancelWorkflow], _drive_unhandled),
    Scenario("cancel_handled", [HandledCancelWorkflow], _drive_handled, [echo]),
    Scenario(
        "cancel_immediate",
        [HandledCancelWorkflow, UnhandledCancelWorkflow],
        _drive_immediate,
        [echo],
    ),
    Scenario(
        "cancel_during_activity",
        [CancelDuringActivityWorkflow],
        _drive_during_activity,
        [heartbeating],
    ),
    Scenario("cancel_shielded", [ShieldedWorkWorkflow], _drive_shielded, [echo]),
    Scenario("cancel_reraise", [CancelReRaiseDifferentWorkflow], _drive_reraise),
    Scenario("cancel_child_task", [CancelledChildTaskWorkflow], _drive_child_task),
]
