"""Bad input: an unregistered workflow type, payloads that fail to decode, workflow code that
awaits a foreign event loop or uses loop APIs a workflow cannot. Each gets the SDK's outcome
(and, checked by the harness, the same log lines)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowUpdateFailedError

from ..harness import Drive, Scenario, describe_error, wait_for_task_failure
from .activities import echo


@dataclass
class Strict:
    number: int


@workflow.defn
class TypedArgsWorkflow:
    @workflow.update
    def typed_update(self, value: Strict) -> int:
        return value.number

    @workflow.signal
    def stop(self) -> None:
        self.stopped = True

    @workflow.run
    async def run(self, value: Strict) -> int:
        self.stopped = False
        await workflow.wait_condition(lambda: self.stopped)
        return value.number


@workflow.defn
class BadActivityResultWorkflow:
    @workflow.run
    async def run(self) -> Any:
        # The activity returns a string; decoding it as Strict fails.
        return await workflow.execute_activity(
            "echo", "not a Strict", start_to_close_timeout=timedelta(seconds=5), result_type=Strict
        )


@workflow.defn
class ForeignLoopWorkflow:
    @workflow.run
    async def run(self, kind: str) -> Any:
        if kind == "future":
            other = asyncio.new_event_loop()
            try:
                await other.create_future()
            finally:
                other.close()
        if kind == "executor":
            return await asyncio.get_running_loop().run_in_executor(None, lambda: 1)
        if kind == "thread":
            return await asyncio.to_thread(lambda: 1)
        return None


@workflow.defn
class NotAWorkflowSeenByWorker:
    @workflow.run
    async def run(self) -> None:
        pass


async def _drive_unregistered(d: Drive) -> Any:
    handle = await d.client.start_workflow(
        "NoSuchWorkflowType", id=d.id("unregistered"), task_queue=d.task_queue
    )
    return await wait_for_task_failure(handle)


async def _drive_decode(d: Drive) -> Any:
    out: list[Any] = []
    # Workflow input that cannot become the run method's parameter type: task failure.
    handle = await d.client.start_workflow(
        "TypedArgsWorkflow", "not a dict", id=d.id("badinput"), task_queue=d.task_queue
    )
    out.append(await wait_for_task_failure(handle))
    handle = await d.start(TypedArgsWorkflow.run, Strict(1), name="goodinput")
    try:
        await handle.execute_update("typed_update", "not a dict")
    except WorkflowUpdateFailedError as err:
        out.append(describe_error(err.cause))
    await handle.signal(TypedArgsWorkflow.stop)
    out.append(await handle.result())
    handle = await d.start(BadActivityResultWorkflow.run, name="badresult")
    out.append(await wait_for_task_failure(handle))
    return out


async def _drive_foreign_loop(d: Drive) -> Any:
    out = []
    for kind in ("future", "executor", "thread"):
        handle = await d.start(ForeignLoopWorkflow.run, kind, name=f"foreign-{kind}")
        # The task's name carries workflow and run ids: not part of the behaviour.
        out.append(re.sub(r"name='[^']*'", "name=...", await wait_for_task_failure(handle)))
    return out


SCENARIOS = [
    Scenario(
        "unregistered_workflow",
        [NotAWorkflowSeenByWorker],
        _drive_unregistered,
        expect_instances=False,
    ),
    Scenario(
        "undecodable_payloads",
        [TypedArgsWorkflow, BadActivityResultWorkflow],
        _drive_decode,
        [echo],
    ),
    Scenario("foreign_event_loop", [ForeignLoopWorkflow], _drive_foreign_loop),
]
