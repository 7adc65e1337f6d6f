"""The workflow the first-contact scenarios run: one activity and one timer, as a user's first
workflow would have."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def add_one(x: int) -> int:
    return x + 1


@workflow.defn
class ColdStartWorkflow:
    @workflow.run
    async def run(self, x: int) -> int:
        y = await workflow.execute_activity(add_one, x, start_to_close_timeout=timedelta(seconds=60))
        await asyncio.sleep(0.2)
        return y * 2


@workflow.defn
class SlowWorkflow:
    """In flight for a while, so that a Worker can be stopped under it."""

    @workflow.run
    async def run(self, x: int) -> int:
        for _ in range(4):
            await asyncio.sleep(1.0)
            x = await workflow.execute_activity(
                add_one, x, start_to_close_timeout=timedelta(seconds=60)
            )
        return x


@workflow.defn
class SignalledAtStartWorkflow:
    """Started with a signal in its first activation (the case where the SDK's instance records
    internal flags into its eviction completion)."""

    def __init__(self) -> None:
        self.greetings: list[str] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.greetings))
        return self.greetings

    @workflow.signal
    def greet(self, name: str) -> None:
        self.greetings.append(name)
