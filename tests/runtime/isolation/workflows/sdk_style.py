"""Workflows written for the SDK's sandbox, the way its samples write them: they must keep working
unchanged under LocalWorkflowRunner, with the same results."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tests.runtime.isolation.workflows.sdk_style_activities import (
        GreetingInput,
        compose_greeting,
    )


@workflow.defn
class ChildGreeter:
    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.sleep(timedelta(milliseconds=10))
        return name.upper()


@workflow.defn
class SandboxStyleWorkflow:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, input: GreetingInput) -> dict[str, Any]:
        greeting = await workflow.execute_activity(
            compose_greeting, input, start_to_close_timeout=timedelta(seconds=10)
        )
        local = await workflow.execute_local_activity(
            compose_greeting,
            GreetingInput("Hi", input.name),
            start_to_close_timeout=timedelta(seconds=10),
        )
        child = await workflow.execute_child_workflow(
            ChildGreeter.run, input.name, id=f"{workflow.info().workflow_id}-child"
        )
        results = await asyncio.gather(*(self._tick(i) for i in range(3)))
        await workflow.wait_condition(lambda: self.done)
        return {
            "greeting": greeting,
            "local": local,
            "child": child,
            "ticks": results,
            "events": self.events,
            "deterministic": [workflow.random().randint(0, 100) for _ in range(3)],
            "uuid": str(workflow.uuid4()),
            "patched": workflow.patched("my-patch"),
        }

    async def _tick(self, i: int) -> int:
        await asyncio.sleep(0.01 * (3 - i))
        return i

    @workflow.signal
    def event(self, name: str) -> None:
        self.events.append(name)

    @workflow.query
    def seen(self) -> list[str]:
        return self.events

    @workflow.update
    async def finish(self, note: str) -> str:
        self.events.append(note)
        self.done = True
        return f"finished after {len(self.events)}"

    @finish.validator
    def check_finish(self, note: str) -> None:
        if not note:
            raise ValueError("note required")
