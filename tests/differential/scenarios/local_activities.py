"""Local activities: results, failures (bare non-retryable errors), timeouts, cancellation, and
retries that back off through a workflow timer."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from ..harness import Drive, Scenario, describe_error
from .activities import GREETER, echo, fail, heartbeating, slow


@activity.defn
async def flaky(succeed_on: int) -> str:
    attempt = activity.info().attempt
    if attempt < succeed_on:
        raise ApplicationError(f"attempt {attempt} fails")
    return f"succeeded on attempt {attempt}"


@workflow.defn
class LocalActivitiesWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        timeout = timedelta(seconds=5)
        out: list[Any] = []
        out.append(
            await workflow.execute_local_activity(echo, "local", start_to_close_timeout=timeout)
        )
        out.append(
            await workflow.execute_local_activity_method(
                type(GREETER).greet, "sue", schedule_to_close_timeout=timeout
            )
        )
        out.append(
            await workflow.execute_local_activity(
                "echo", "by name", start_to_close_timeout=timeout, summary="local summary"
            )
        )
        out.append(
            await asyncio.gather(
                *(
                    workflow.execute_local_activity(echo, i, start_to_close_timeout=timeout)
                    for i in range(3)
                )
            )
        )
        try:
            await workflow.execute_local_activity(fail, "app", start_to_close_timeout=timeout)
        except (ActivityError, ApplicationError) as err:
            out.append(describe_error(err))
        try:
            await workflow.execute_local_activity(
                slow,
                5.0,
                start_to_close_timeout=timedelta(milliseconds=200),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except (ActivityError, ApplicationError) as err:
            out.append(describe_error(err))
        return out


@workflow.defn
class LocalBackoffWorkflow:
    @workflow.run
    async def run(self) -> Any:
        # Retries beyond the local threshold go through a timer and a new schedule (new seq).
        return await workflow.execute_local_activity(
            flaky,
            3,
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=1100), backoff_coefficient=1.0
            ),
            local_retry_threshold=timedelta(seconds=1),
        )


@workflow.defn
class LocalCancelWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        handle = workflow.start_local_activity(
            slow, 5.0, start_to_close_timeout=timedelta(seconds=10)
        )
        handle.cancel()
        try:
            await handle
        except BaseException as err:
            out.append(("immediate", type(err).__name__))
        handle = workflow.start_local_activity(
            heartbeating,
            5.0,
            start_to_close_timeout=timedelta(seconds=10),
            cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
        )
        await workflow.sleep(0.3)
        handle.cancel()
        try:
            out.append(await handle)
        except ActivityError as err:
            out.append(("running", describe_error(err)))
        except asyncio.CancelledError as err:
            out.append(("running", type(err).__name__))
        # Cancelled during a backoff timer.
        handle = workflow.start_local_activity(
            flaky,
            10,
            start_to_close_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2)),
            local_retry_threshold=timedelta(seconds=1),
        )
        await workflow.sleep(0.5)
        handle.cancel()
        try:
            out.append(await handle)
        except BaseException as err:
            out.append(("backoff", type(err).__name__))
        return out


@workflow.defn
class UnregisteredLocalActivityWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_local_activity(
            "not_registered_here", start_to_close_timeout=timedelta(seconds=5)
        )


async def _drive_local(d: Drive) -> Any:
    return await d.execute(LocalActivitiesWorkflow.run, name="local")


async def _drive_backoff(d: Drive) -> Any:
    return await d.execute(LocalBackoffWorkflow.run, name="backoff")


async def _drive_cancel(d: Drive) -> Any:
    return await d.execute(LocalCancelWorkflow.run, name="cancel")


async def _drive_unregistered(d: Drive) -> Any:
    from ..harness import wait_for_task_failure

    handle = await d.start(UnregisteredLocalActivityWorkflow.run, name="unregistered")
    return await wait_for_task_failure(handle)


_ACTIVITIES = [echo, fail, slow, heartbeating, flaky, GREETER.greet]

SCENARIOS = [
    Scenario("local_activities", [LocalActivitiesWorkflow], _drive_local, _ACTIVITIES),
    Scenario("local_activity_backoff", [LocalBackoffWorkflow], _drive_backoff, _ACTIVITIES),
    Scenario("local_activity_cancel", [LocalCancelWorkflow], _drive_cancel, _ACTIVITIES),
    Scenario(
        "local_activity_unregistered",
        [UnregisteredLocalActivityWorkflow],
        _drive_unregistered,
        _ACTIVITIES,
    ),
]
