"""Timers and waiting: sleeps, wait_for, timeout, cancellation, wait_condition, workflow.wait,
as_completed, gather, shield."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

from ..harness import Drive, Scenario
from .activities import echo, slow


@workflow.defn
class SleepsWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        start = workflow.time()
        await asyncio.sleep(0.1)
        await workflow.sleep(0.2, summary="a timer summary")
        await workflow.sleep(timedelta(milliseconds=150))
        await asyncio.sleep(0)  # no timer: just a loop turn
        out.append(workflow.time() - start >= 0.45)
        # Several timers in one activation.
        await asyncio.gather(asyncio.sleep(0.1), asyncio.sleep(0.2), workflow.sleep(0.05))
        out.append("gathered")
        return out


@workflow.defn
class TimeoutsWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        try:
            await asyncio.wait_for(asyncio.sleep(10), 0.1)
        except TimeoutError:
            out.append("wait_for timed out")
        out.append(await asyncio.wait_for(asyncio.sleep(0.05, "fast"), 5))
        try:
            async with asyncio.timeout(0.1):
                await asyncio.sleep(10)
        except TimeoutError:
            out.append("timeout cm fired")
        async with asyncio.timeout(5):
            await asyncio.sleep(0.05)
        out.append("timeout cm not fired")
        async with asyncio.timeout(None) as cm:
            cm.reschedule(asyncio.get_running_loop().time() + 0.05)
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                out.append("unexpected")
                raise
        out.append("rescheduled")
        return out


@workflow.defn
class CancelTimerWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        task = asyncio.create_task(asyncio.sleep(100))
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            out.append("cancelled running timer")
        # Cancelled before it ever ran.
        task = asyncio.create_task(workflow.sleep(100))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            out.append("cancelled unstarted timer")
        # Timer cancelled in the activation it was created.
        task = asyncio.create_task(workflow.sleep(100))
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            out.append("cancelled fresh timer")
        return out


@workflow.defn
class WaitConditionWorkflow:
    def __init__(self) -> None:
        self.value = 0

    @workflow.signal
    def set_value(self, value: int) -> None:
        self.value = value

    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        try:
            await workflow.wait_condition(lambda: self.value > 100, timeout=0.1)
        except TimeoutError:
            out.append("condition timed out")
        await workflow.wait_condition(lambda: self.value >= 1)
        out.append("got 1")
        await workflow.wait_condition(lambda: self.value >= 2, timeout=30, timeout_summary="wait 2")
        out.append("got 2")
        await workflow.wait_condition(lambda: True)
        out.append("immediately true")
        return out


@workflow.defn
class WaitPrimitivesWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        t1 = asyncio.create_task(workflow.sleep(0.3))
        t2 = asyncio.create_task(workflow.sleep(0.1))
        done, pending = await workflow.wait([t1, t2], return_when=asyncio.FIRST_COMPLETED)
        out.append((len(done), len(pending), t2 in done))
        done, pending = await workflow.wait([t1], timeout=5)
        out.append((len(done), len(pending)))
        order = []
        for coro in workflow.as_completed([asyncio.sleep(0.2, "b"), asyncio.sleep(0.1, "a")]):
            order.append(await coro)
        out.append(order)
        out.append(
            await asyncio.gather(
                workflow.execute_activity(echo, 1, start_to_close_timeout=timedelta(seconds=5)),
                asyncio.sleep(0.05, "slept"),
                return_exceptions=True,
            )
        )
        # shield: the outer wait times out, the shielded activity still completes.
        inner = asyncio.ensure_future(
            workflow.execute_activity(slow, 0.5, start_to_close_timeout=timedelta(seconds=5))
        )
        try:
            await asyncio.wait_for(asyncio.shield(inner), 0.1)
        except TimeoutError:
            out.append("shield outer timed out")
        out.append(await inner)
        out.append(
            await asyncio.wait_for(
                workflow.execute_activity(
                    echo, "in time", start_to_close_timeout=timedelta(seconds=5)
                ),
                10,
            )
        )
        return out


async def _drive_sleeps(d: Drive) -> Any:
    return await d.execute(SleepsWorkflow.run, name="sleeps")


async def _drive_timeouts(d: Drive) -> Any:
    return await d.execute(TimeoutsWorkflow.run, name="timeouts")


async def _drive_cancel_timer(d: Drive) -> Any:
    return await d.execute(CancelTimerWorkflow.run, name="canceltimer")


async def _drive_wait_condition(d: Drive) -> Any:
    handle = await d.start(WaitConditionWorkflow.run, name="waitcond")
    await asyncio.sleep(0.3)
    await handle.signal(WaitConditionWorkflow.set_value, 1)
    await asyncio.sleep(0.2)
    await handle.signal(WaitConditionWorkflow.set_value, 2)
    return await handle.result()


async def _drive_wait_primitives(d: Drive) -> Any:
    return await d.execute(WaitPrimitivesWorkflow.run, name="waitprims")


SCENARIOS = [
    Scenario("timer_sleeps", [SleepsWorkflow], _drive_sleeps),
    Scenario("timer_timeouts", [TimeoutsWorkflow], _drive_timeouts),
    Scenario("timer_cancel", [CancelTimerWorkflow], _drive_cancel_timer),
    Scenario("wait_condition", [WaitConditionWorkflow], _drive_wait_condition),
    Scenario("wait_primitives", [WaitPrimitivesWorkflow], _drive_wait_primitives, [echo, slow]),
]
