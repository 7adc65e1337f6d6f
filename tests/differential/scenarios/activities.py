"""Activities: every way to call one, every option, results and every failure kind, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import temporalio.common
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from ..harness import Drive, Scenario, describe_error

NO_RETRY = RetryPolicy(maximum_attempts=1)


@activity.defn
async def echo(value: Any) -> Any:
    return value


@activity.defn(name="renamed_activity")
async def add(a: int, b: int) -> int:
    return a + b


@activity.defn
async def fail(kind: str) -> None:
    if kind == "app":
        raise ApplicationError("activity failed", "detail", type="ActFail", non_retryable=True)
    if kind == "plain":
        raise ValueError(f"plain activity error (attempt {activity.info().attempt})")
    raise ApplicationError("unknown")


@activity.defn
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slow done"


@activity.defn
async def heartbeating(seconds: float) -> str:
    try:
        for _ in range(int(seconds * 20)):
            activity.heartbeat()
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        await asyncio.sleep(0.1)
        raise
    return "finished"


class Greeter:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @activity.defn
    async def greet(self, name: str) -> str:
        return f"{self.prefix} {name}"


GREETER = Greeter("hi")


@workflow.defn
class CallStylesWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        timeout = timedelta(seconds=10)
        out: list[Any] = []
        out.append(await workflow.execute_activity(echo, {"a": 1}, start_to_close_timeout=timeout))
        out.append(
            await workflow.execute_activity(add, args=[2, 3], start_to_close_timeout=timeout)
        )
        out.append(
            await workflow.execute_activity(
                "renamed_activity", args=[4, 5], start_to_close_timeout=timeout, result_type=int
            )
        )
        out.append(
            await workflow.execute_activity_method(
                Greeter.greet, "bob", start_to_close_timeout=timeout
            )
        )
        handle = workflow.start_activity(echo, "via handle", schedule_to_close_timeout=timeout)
        out.append(await handle)
        # Several at once: seqs and commands in one activation.
        handles = [
            workflow.start_activity(echo, i, start_to_close_timeout=timeout) for i in range(3)
        ]
        out.append(await asyncio.gather(*handles))
        return out


@workflow.defn
class OptionsWorkflow:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            echo,
            "options",
            task_queue=workflow.info().task_queue,
            schedule_to_close_timeout=timedelta(seconds=30),
            schedule_to_start_timeout=timedelta(seconds=20),
            start_to_close_timeout=timedelta(seconds=10),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=100),
                backoff_coefficient=1.5,
                maximum_interval=timedelta(seconds=2),
                maximum_attempts=3,
                non_retryable_error_types=["Nope"],
            ),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            activity_id="my-activity-id",
            summary="an activity summary",
            priority=temporalio.common.Priority(priority_key=3),
        )


@workflow.defn
class FailuresWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        for kind in ("app", "plain"):
            try:
                await workflow.execute_activity(
                    fail,
                    kind,
                    start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=RetryPolicy(
                        maximum_attempts=2, initial_interval=timedelta(milliseconds=10)
                    ),
                )
            except ActivityError as err:
                out.append(describe_error(err))
        try:
            await workflow.execute_activity(
                slow, 5.0, start_to_close_timeout=timedelta(milliseconds=300), retry_policy=NO_RETRY
            )
        except ActivityError as err:
            out.append(describe_error(err))
        try:
            await workflow.execute_activity(
                slow,
                5.0,
                start_to_close_timeout=timedelta(seconds=10),
                heartbeat_timeout=timedelta(milliseconds=500),
                retry_policy=NO_RETRY,
            )
        except ActivityError as err:
            out.append(describe_error(err))
        try:
            await workflow.execute_activity(
                slow, 5.0, schedule_to_close_timeout=timedelta(milliseconds=700)
            )
        except ActivityError as err:
            out.append(describe_error(err))
        try:
            # Python 3.11 wait_for around an activity raises the activity's error on timeout.
            await asyncio.wait_for(
                workflow.execute_activity(
                    slow, 5.0, start_to_close_timeout=timedelta(seconds=10), retry_policy=NO_RETRY
                ),
                0.2,
            )
        except (TimeoutError, ActivityError) as err:
            out.append(describe_error(err))
        return out


@workflow.defn
class UnhandledActivityFailureWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(fail, "app", start_to_close_timeout=timedelta(seconds=10))


@workflow.defn
class CancelActivityWorkflow:
    @workflow.run
    async def run(self, cancellation_type: int) -> list[Any]:
        out: list[Any] = []
        ctype = workflow.ActivityCancellationType(cancellation_type)
        # Cancelled in the activation that scheduled it: a bare CancelledError.
        handle = workflow.start_activity(
            slow, 5.0, start_to_close_timeout=timedelta(seconds=10), cancellation_type=ctype
        )
        handle.cancel()
        try:
            await handle
        except asyncio.CancelledError as err:
            out.append(("immediate", type(err).__name__))
        except ActivityError as err:
            out.append(("immediate", describe_error(err)))
        # Cancelled while running.
        handle = workflow.start_activity(
            heartbeating,
            5.0,
            start_to_close_timeout=timedelta(seconds=10),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=ctype,
            retry_policy=NO_RETRY,
        )
        await workflow.sleep(0.5)
        handle.cancel()
        try:
            out.append(("running", await handle))
        except ActivityError as err:
            out.append(("running", describe_error(err)))
        except asyncio.CancelledError as err:
            out.append(("running", type(err).__name__))
        out.append(("done", handle.done(), handle.cancelled()))
        return out


@workflow.defn
class CancelCompletedActivityWorkflow:
    """Cancel arriving together with the result: internal flag 1 territory."""

    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        handle = workflow.start_activity(echo, "x", start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(1)
        handle.cancel()
        try:
            out.append(await handle)
        except BaseException as err:
            out.append(type(err).__name__)
        return out


@workflow.defn
class ActivityInTaskWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        async def two() -> list[Any]:
            a = await workflow.execute_activity(
                echo, 1, start_to_close_timeout=timedelta(seconds=5)
            )
            b = await workflow.execute_activity(
                echo, 2, start_to_close_timeout=timedelta(seconds=5)
            )
            return [a, b]

        t1 = asyncio.create_task(two())
        t2 = asyncio.create_task(two())
        return await asyncio.gather(t1, t2)


async def _drive_call_styles(d: Drive) -> Any:
    return await d.execute(CallStylesWorkflow.run, name="styles")


async def _drive_options(d: Drive) -> Any:
    return await d.execute(OptionsWorkflow.run, name="options")


async def _drive_failures(d: Drive) -> Any:
    return [
        await d.execute(FailuresWorkflow.run, name="failures"),
        await d.execute(UnhandledActivityFailureWorkflow.run, name="unhandled"),
    ]


async def _drive_cancel(d: Drive) -> Any:
    return [
        await d.execute(CancelActivityWorkflow.run, int(ctype), name=f"cancel-{ctype.name}")
        for ctype in workflow.ActivityCancellationType
    ]


async def _drive_cancel_completed(d: Drive) -> Any:
    return await d.execute(CancelCompletedActivityWorkflow.run, name="cancelcompleted")


async def _drive_in_task(d: Drive) -> Any:
    return await d.execute(ActivityInTaskWorkflow.run, name="intask")


_ALL: list[Callable[..., Any]] = [echo, add, fail, slow, heartbeating, GREETER.greet]

SCENARIOS = [
    Scenario("activity_call_styles", [CallStylesWorkflow], _drive_call_styles, _ALL),
    Scenario("activity_options", [OptionsWorkflow], _drive_options, _ALL),
    Scenario(
        "activity_failures",
        [FailuresWorkflow, UnhandledActivityFailureWorkflow],
        _drive_failures,
        _ALL,
    ),
    Scenario("activity_cancel", [CancelActivityWorkflow], _drive_cancel, _ALL),
    Scenario(
        "activity_cancel_completed",
        [CancelCompletedActivityWorkflow],
        _drive_cancel_completed,
        _ALL,
    ),
    Scenario("activity_in_tasks", [ActivityInTaskWorkflow], _drive_in_task, _ALL),
]
