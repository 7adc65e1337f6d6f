"""Workflows of every kind, used by the hosting (Ray) tests and the benchmarks.

Only temporalio and the standard library are imported here, so the module passes the SDK
sandbox's validation too (the tests run it under every engine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError


@dataclass
class Order:
    order_id: str
    amount: int


# --- activities ----------------------------------------------------------------------------------


@activity.defn
async def charge(order: Order) -> str:
    return f"charged {order.order_id}:{order.amount}"


@activity.defn
async def always_fails(message: str) -> str:
    raise ApplicationError(message, non_retryable=True, type="PaymentDeclined")


@activity.defn
async def wait_for_cancel() -> str:
    try:
        while True:
            await asyncio.sleep(0.1)
            activity.heartbeat()
    except asyncio.CancelledError:
        activity.logger.info("activity saw its cancellation")
        raise


ALL_ACTIVITIES: list[Callable[..., Any]] = [charge, always_fails, wait_for_cancel]


# --- workflows -----------------------------------------------------------------------------------


@workflow.defn
class NoopWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "done"


@workflow.defn
class ActivityWorkflow:
    @workflow.run
    async def run(self, order: Order) -> str:
        return await workflow.execute_activity(
            charge, order, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class LocalActivityWorkflow:
    @workflow.run
    async def run(self, order: Order) -> str:
        return await workflow.execute_local_activity(
            charge, order, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class TimerWorkflow:
    @workflow.run
    async def run(self, count: int) -> int:
        for _ in range(count):
            await asyncio.sleep(0.05)
        return count


@workflow.defn
class SignalQueryWorkflow:
    def __init__(self) -> None:
        self._items: list[str] = []
        self._done = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self._done)
        return self._items

    @workflow.signal
    def add(self, item: str) -> None:
        self._items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self._done = True

    @workflow.query
    def items(self) -> list[str]:
        return list(self._items)


@workflow.defn
class UpdateWorkflow:
    def __init__(self) -> None:
        self._total = 0
        self._done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self._done)
        return self._total

    @workflow.update
    async def add(self, amount: int) -> int:
        await asyncio.sleep(0.01)
        self._total += amount
        return self._total

    @add.validator
    def validate_add(self, amount: int) -> None:
        if amount < 0:
            raise ValueError("negative amounts are refused")

    @workflow.signal
    def finish(self) -> None:
        self._done = True


@workflow.defn
class ChildWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return n * 2


@workflow.defn
class ParentWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        results = await asyncio.gather(
            *(
                workflow.execute_child_workflow(
                    ChildWorkflow.run, i, id=f"{workflow.info().workflow_id}-child-{i}"
                )
                for i in range(n)
            )
        )
        return sum(results)


@workflow.defn
class ContinueAsNewWorkflow:
    @workflow.run
    async def run(self, remaining: int, total: int) -> int:
        if remaining == 0:
            return total
        await asyncio.sleep(0.01)
        workflow.continue_as_new(args=[remaining - 1, total + remaining])


@workflow.defn
class CancellableWorkflow:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.execute_activity(
                wait_for_cancel,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=5),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            return "not cancelled"
        except asyncio.CancelledError:
            return "handled cancel"
        except Exception as err:
            if isinstance(err.__cause__, asyncio.CancelledError) or "cancel" in str(err).lower():
                return "handled cancel"
            raise


@workflow.defn
class FailingWorkflow:
    @workflow.run
    async def run(self, kind: str) -> str:
        if kind == "application":
            raise ApplicationError("deliberate failure", {"detail": 1}, type="Deliberate")
        if kind == "activity":
            return await workflow.execute_activity(
                always_fails,
                "declined",
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        return "ok"


@workflow.defn
class TaskFailureWorkflow:
    """Raises a plain exception: a workflow *task* failure (retried by the server), never a
    workflow failure."""

    @workflow.run
    async def run(self) -> str:
        raise RuntimeError("plain exception: this fails the task, not the workflow")


@workflow.defn
class CpuWorkflow:
    @workflow.run
    async def run(self, rounds: int) -> int:
        total = 0
        for i in range(rounds):
            total = (total * 31 + i) % 1_000_003
        await asyncio.sleep(0.01)
        return total


@workflow.defn
class MetricsWorkflow:
    @workflow.run
    async def run(self) -> str:
        counter = workflow.metric_meter().create_counter("temporay_test_counter", "test", "1")
        counter.add(3, {"kind": "test"})
        return "counted"


@workflow.defn
class DeadlockWorkflow:
    """Spins without yielding (pure CPU, allowed by every sandbox) for ``rounds`` iterations."""

    @workflow.run
    async def run(self, rounds: int) -> str:
        total = 0
        for i in range(rounds):
            total += i
        return f"spun {total}"


@workflow.defn
class BlockedInCWorkflow:
    """Blocks its thread in C (time.sleep) where no interrupt reaches it; only runs with
    isolation off (temporay's restrictions refuse time.sleep in workflow code)."""

    @workflow.run
    async def run(self, seconds: float) -> str:
        import time

        time.sleep(seconds)
        return "woke"


ALL_WORKFLOWS = [
    NoopWorkflow,
    ActivityWorkflow,
    LocalActivityWorkflow,
    TimerWorkflow,
    SignalQueryWorkflow,
    UpdateWorkflow,
    ChildWorkflow,
    ParentWorkflow,
    ContinueAsNewWorkflow,
    CancellableWorkflow,
    FailingWorkflow,
    TaskFailureWorkflow,
    CpuWorkflow,
    MetricsWorkflow,
    DeadlockWorkflow,
    BlockedInCWorkflow,
]
