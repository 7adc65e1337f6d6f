"""Updates: validators, accept/reject/complete, failing handlers, awaiting handlers, dynamic
handlers, all_handlers_finished, unfinished-handler warnings, update-with-start."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import temporalio.common
from temporalio import workflow
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from ..harness import Drive, Scenario, describe_error, wait_for_task_failure
from .activities import echo


@workflow.defn
class UpdatesWorkflow:
    def __init__(self) -> None:
        self.values: list[Any] = []
        self.done = False
        self.release = False

    @workflow.update
    def add(self, value: int) -> list[Any]:
        self.values.append(value)
        return self.values

    @add.validator
    def validate_add(self, value: int) -> None:
        if value < 0:
            raise ApplicationError("negative values are rejected")
        if value == 13:
            raise ValueError("a plain exception in a validator also rejects")

    @workflow.update(name="async-update")
    async def async_update(self, seconds: float) -> str:
        info = workflow.current_update_info()
        await workflow.sleep(seconds)
        await workflow.wait_condition(lambda: self.release)
        return f"slept {seconds} in {info.name if info else None}"

    @workflow.update
    def release_all(self) -> None:
        self.release = True

    @workflow.update
    async def failing(self, kind: str) -> None:
        await asyncio.sleep(0)
        if kind == "app":
            raise ApplicationError("update handler failed", type="UpdateFail")
        raise asyncio.CancelledError("cancelled inside update")

    @workflow.update(dynamic=True)
    def dynamic(self, name: str, args: Sequence[temporalio.common.RawValue]) -> str:
        return f"dynamic {name} {len(args)}"

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.values


@workflow.defn
class RuntimeUpdateWorkflow:
    """Handlers registered by workflow code, including in the first workflow task."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> int:
        def bump(by: int) -> int:
            self.count += by
            return self.count

        def validate(by: int) -> None:
            if by > 10:
                raise ValueError("too much")

        workflow.set_update_handler("bump", bump, validator=validate)
        await workflow.wait_condition(lambda: self.count >= 3)
        workflow.set_update_handler("bump", None)
        await workflow.sleep(0.2)
        return self.count


@workflow.defn
class UnfinishedUpdateWorkflow:
    @workflow.update
    async def slow(self) -> str:
        await workflow.sleep(100)
        return "never"

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def slow_abandoned(self) -> str:
        await workflow.sleep(100)
        return "never"

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        return "done"


@workflow.defn
class UpdateTaskFailureWorkflow:
    @workflow.update
    async def broken(self) -> None:
        raise RuntimeError("plain exception after acceptance fails the task")

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(100)


@workflow.defn
class ValidatorMutatesWorkflow:
    @workflow.update
    def touch(self) -> None:
        pass

    @touch.validator
    def validate_touch(self) -> None:
        workflow.random()  # read-only violation: fails the task

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(100)


@workflow.defn
class UpdateContinueAsNewWorkflow:
    @workflow.update
    def go(self) -> None:
        workflow.continue_as_new()

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(100)


@workflow.defn
class InitUpdateWorkflow:
    """Update-with-start where the handler exists from the start (class level, @workflow.init):
    the update runs in the first task, before the main function's first step."""

    @workflow.init
    def __init__(self, start: int) -> None:
        self.total = start
        self.log: list[str] = ["init"]

    @workflow.update
    async def add(self, value: int) -> int:
        self.log.append(f"update {value}")
        self.total += await workflow.execute_activity(
            echo, value, start_to_close_timeout=timedelta(seconds=5)
        )
        return self.total

    @workflow.run
    async def run(self, start: int) -> list[str]:
        self.log.append("run")
        await workflow.wait_condition(lambda: self.total >= start + 3)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.log


async def _update(handle: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return {"ok": await handle.execute_update(*args, **kwargs)}
    except WorkflowUpdateFailedError as err:
        return {"failed": describe_error(err.cause)}


async def _drive_updates(d: Drive) -> Any:
    handle = await d.start(UpdatesWorkflow.run, name="updates")
    out: list[Any] = [await _update(handle, UpdatesWorkflow.add, 1)]
    out.append(await _update(handle, UpdatesWorkflow.add, -1))
    out.append(await _update(handle, UpdatesWorkflow.add, 13))
    out.append(await _update(handle, UpdatesWorkflow.add, 2))
    slow = await handle.start_update(
        "async-update", 0.1, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    out.append(await _update(handle, UpdatesWorkflow.failing, "app"))
    out.append(await _update(handle, UpdatesWorkflow.failing, "cancel"))
    out.append(await _update(handle, "something-dynamic", args=[1, 2]))
    await asyncio.sleep(0.3)
    out.append(await _update(handle, UpdatesWorkflow.release_all))
    out.append(await slow.result())
    await handle.signal(UpdatesWorkflow.finish)
    out.append(await handle.result())
    return out


async def _drive_runtime_update(d: Drive) -> Any:
    start = WithStartWorkflowOperation(
        RuntimeUpdateWorkflow.run,
        id=d.id("rt"),
        task_queue=d.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    out: list[Any] = []
    try:
        out.append(
            await d.client.execute_update_with_start_workflow(
                "bump", 1, start_workflow_operation=start
            )
        )
    except WorkflowUpdateFailedError as err:
        # The update job runs before the workflow function registers the handler.
        out.append(describe_error(err.cause))
    handle = await start.workflow_handle()
    out.append(await _update(handle, "bump", 1))
    out.append(await _update(handle, "bump", 50))
    out.append(await _update(handle, "bump", 2))
    out.append(await handle.result())
    return out


async def _drive_init_update(d: Drive) -> Any:
    start = WithStartWorkflowOperation(
        InitUpdateWorkflow.run,
        10,
        id=d.id("initupd"),
        task_queue=d.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    out: list[Any] = [
        await d.client.execute_update_with_start_workflow(
            InitUpdateWorkflow.add, 1, start_workflow_operation=start
        )
    ]
    handle = await start.workflow_handle()
    out.append(await _update(handle, InitUpdateWorkflow.add, 2))
    out.append(await handle.result())
    return out


async def _drive_unfinished(d: Drive) -> Any:
    handle = await d.start(UnfinishedUpdateWorkflow.run, name="unfinished")
    await handle.start_update(
        UnfinishedUpdateWorkflow.slow, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await handle.start_update(
        UnfinishedUpdateWorkflow.slow_abandoned, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    return await handle.result()


async def _start_update_background(handle: Any, update: str) -> asyncio.Task[Any]:
    async def run() -> Any:
        try:
            return await handle.execute_update(update)
        except Exception as err:
            return type(err).__name__

    return asyncio.create_task(run())


async def _drive_update_task_failure(d: Drive) -> Any:
    out = []
    for workflow_cls, update, name in (
        (UpdateTaskFailureWorkflow, "broken", "broken"),
        (ValidatorMutatesWorkflow, "touch", "mutates"),
        (UpdateContinueAsNewWorkflow, "go", "can"),
    ):
        handle = await d.start(workflow_cls.run, name=name)
        pending = await _start_update_background(handle, update)
        out.append(await wait_for_task_failure(handle))
        pending.cancel()
    return out


SCENARIOS = [
    Scenario("updates", [UpdatesWorkflow], _drive_updates),
    Scenario("updates_runtime_with_start", [RuntimeUpdateWorkflow], _drive_runtime_update),
    Scenario("updates_unfinished", [UnfinishedUpdateWorkflow], _drive_unfinished),
    Scenario("update_with_start_init", [InitUpdateWorkflow], _drive_init_update, [echo]),
    Scenario(
        "updates_task_failure",
        [UpdateTaskFailureWorkflow, ValidatorMutatesWorkflow, UpdateContinueAsNewWorkflow],
        _drive_update_task_failure,
    ),
]
