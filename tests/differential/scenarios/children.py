"""Child workflows (start/execute, failures, cancellation, parent close policy), external
handles (signal, cancel) and continue-as-new."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import temporalio.common
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError

from ..harness import Drive, Scenario, describe_error, outcome_of

KEYWORD = temporalio.common.SearchAttributeKey.for_keyword("TemporayKeyword")


@workflow.defn
class ChildWorkflow:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.signal
    def poke(self, value: str) -> None:
        self.signals.append(value)

    @workflow.run
    async def run(self, mode: str, seconds: float = 0) -> Any:
        if seconds:
            try:
                await workflow.sleep(seconds)
            except asyncio.CancelledError:
                if mode == "cleanup":
                    await workflow.sleep(0.1)
                    return "cleaned up"
                raise
        if mode == "fail":
            raise ApplicationError("child failed", {"why": "asked"}, type="ChildFail")
        if mode == "wait_signal":
            await workflow.wait_condition(lambda: bool(self.signals))
            return self.signals
        return {
            "mode": mode,
            "parent": workflow.info().parent is not None,
            "memo": dict(workflow.memo()),
        }


@workflow.defn
class ParentWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        prefix = workflow.info().workflow_id
        out.append(
            await workflow.execute_child_workflow(
                ChildWorkflow.run,
                args=["ok"],
                id=f"{prefix}-child-ok",
                memo={"m": 1},
                search_attributes=temporalio.common.TypedSearchAttributes(
                    [temporalio.common.SearchAttributePair(KEYWORD, "kw")]
                ),
                execution_timeout=timedelta(minutes=5),
                run_timeout=timedelta(minutes=4),
                task_timeout=timedelta(seconds=9),
                retry_policy=RetryPolicy(maximum_attempts=1),
                static_summary="child summary",
                static_details="child details",
                id_reuse_policy=temporalio.common.WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        )
        handle = await workflow.start_child_workflow(
            ChildWorkflow.run, args=["wait_signal"], id=f"{prefix}-child-sig"
        )
        out.append(handle.id == f"{prefix}-child-sig")
        out.append(handle.first_execution_run_id is not None)
        await handle.signal(ChildWorkflow.poke, "poked")
        out.append(await handle)
        try:
            await workflow.execute_child_workflow(
                "ChildWorkflow", args=["fail"], id=f"{prefix}-child-fail"
            )
        except ChildWorkflowError as err:
            out.append(describe_error(err))
        # Same id while the first is running: the start fails.
        first = await workflow.start_child_workflow(
            ChildWorkflow.run, args=["wait_signal"], id=f"{prefix}-child-dup"
        )
        try:
            await workflow.start_child_workflow(
                ChildWorkflow.run, args=["ok"], id=f"{prefix}-child-dup"
            )
        except WorkflowAlreadyStartedError as err:
            out.append(describe_error(err))
        await first.signal("poke", "bye")
        out.append(await first)
        try:
            await workflow.execute_child_workflow(
                ChildWorkflow.run,
                args=["ok", 30],
                id=f"{prefix}-child-timeout",
                run_timeout=timedelta(seconds=1),
            )
        except ChildWorkflowError as err:
            out.append(describe_error(err))
        return out


@workflow.defn
class CancelChildWorkflow:
    @workflow.run
    async def run(self, cancellation_type: int) -> list[Any]:
        out: list[Any] = []
        prefix = workflow.info().workflow_id
        ctype = workflow.ChildWorkflowCancellationType(cancellation_type)
        handle = await workflow.start_child_workflow(
            ChildWorkflow.run,
            args=["cleanup", 100],
            id=f"{prefix}-running",
            cancellation_type=ctype,
        )
        await workflow.sleep(0.2)
        handle.cancel("a reason")
        try:
            out.append(await handle)
        except ChildWorkflowError as err:
            out.append(describe_error(err))
        except asyncio.CancelledError as err:
            out.append(type(err).__name__)
        # Cancelled while starting.
        task = asyncio.create_task(
            workflow.start_child_workflow(
                ChildWorkflow.run,
                args=["ok", 100],
                id=f"{prefix}-starting",
                cancellation_type=ctype,
            )
        )
        await asyncio.sleep(0)
        task.cancel()
        try:
            child = await task
            out.append("started anyway")
            child.cancel()
            try:
                await child
            except BaseException as err:
                out.append(type(err).__name__)
        except BaseException as err:
            out.append(("start", type(err).__name__))
        return out


@workflow.defn
class ParentClosePolicyWorkflow:
    @workflow.run
    async def run(self, policy: int) -> str:
        await workflow.start_child_workflow(
            ChildWorkflow.run,
            args=["ok", 60],
            id=f"{workflow.info().workflow_id}-child",
            parent_close_policy=workflow.ParentClosePolicy(policy),
        )
        return "parent done"


@workflow.defn
class ExternalWorkflow:
    @workflow.run
    async def run(self, target: str) -> list[Any]:
        out: list[Any] = []
        handle = workflow.get_external_workflow_handle(target)
        out.append(handle.id == target)
        await handle.signal(ChildWorkflow.poke, "from external")
        try:
            await workflow.get_external_workflow_handle(f"{target}-missing").signal("poke", "x")
        except Exception as err:
            out.append(describe_error(err))
        other: Any = workflow.get_external_workflow_handle_for(
            ChildWorkflow.run, f"{target}-cancel"
        )
        await other.cancel()
        try:
            await workflow.get_external_workflow_handle(f"{target}-nobody").cancel(reason="why")
        except Exception as err:
            out.append(describe_error(err))
        return out


@workflow.defn
class ContinueAsNewWorkflow:
    @workflow.run
    async def run(self, count: int, history: list[Any]) -> list[Any]:
        info = workflow.info()
        history = [*history, (count, info.continued_run_id is not None, dict(workflow.memo()))]
        if count < 3:
            await workflow.sleep(0.01)
            workflow.continue_as_new(
                args=[count + 1, history],
                memo={"round": count},
                run_timeout=timedelta(minutes=3),
                task_timeout=timedelta(seconds=8),
                search_attributes=temporalio.common.TypedSearchAttributes(
                    [temporalio.common.SearchAttributePair(KEYWORD, f"round-{count}")]
                ),
            )
        if count == 3:
            workflow.continue_as_new(args=["ok"], workflow=ChildWorkflow.run)
        return history


@workflow.defn
class ContinueAsNewFromTaskWorkflow:
    """continue_as_new raised inside a child task is just an exception there."""

    @workflow.run
    async def run(self) -> str:
        async def inner() -> None:
            workflow.continue_as_new()

        try:
            await asyncio.create_task(inner())
        except BaseException as err:
            return type(err).__name__
        return "no error"


async def _drive_children(d: Drive) -> Any:
    return await d.execute(ParentWorkflow.run, name="parent")


async def _drive_cancel_child(d: Drive) -> Any:
    return [
        await d.execute(CancelChildWorkflow.run, int(ctype), name=f"cancel-{ctype.name}")
        for ctype in workflow.ChildWorkflowCancellationType
    ]


async def _drive_parent_close(d: Drive) -> Any:
    out = []
    for policy in (
        workflow.ParentClosePolicy.TERMINATE,
        workflow.ParentClosePolicy.ABANDON,
        workflow.ParentClosePolicy.REQUEST_CANCEL,
    ):
        name = f"pcp-{policy.name}"
        out.append(await d.execute(ParentClosePolicyWorkflow.run, int(policy), name=name))
        child = d.client.get_workflow_handle(f"{d.id(name)}-child")
        if policy == workflow.ParentClosePolicy.ABANDON:
            status = (await child.describe()).status
            out.append(status.name if status else None)
            await child.terminate("cleanup")
        else:
            out.append(await outcome_of(child))
    return out


async def _drive_external(d: Drive) -> Any:
    target = await d.start(ChildWorkflow.run, "wait_signal", name="target")
    cancel_target = await d.start(ChildWorkflow.run, "cleanup", 100, name="target-cancel")
    out = await d.execute(ExternalWorkflow.run, target.id, name="external")
    return [out, await target.result(), await cancel_target.result()]


async def _drive_continue_as_new(d: Drive) -> Any:
    return [
        await d.execute(ContinueAsNewWorkflow.run, 1, [], name="can"),
        await d.execute(ContinueAsNewFromTaskWorkflow.run, name="cantask"),
    ]


SCENARIOS = [
    Scenario("children", [ParentWorkflow, ChildWorkflow], _drive_children),
    Scenario("children_cancel", [CancelChildWorkflow, ChildWorkflow], _drive_cancel_child),
    Scenario(
        "parent_close_policy", [ParentClosePolicyWorkflow, ChildWorkflow], _drive_parent_close
    ),
    Scenario("external_handles", [ExternalWorkflow, ChildWorkflow], _drive_external),
    Scenario(
        "continue_as_new",
        [ContinueAsNewWorkflow, ContinueAsNewFromTaskWorkflow, ChildWorkflow],
        _drive_continue_as_new,
    ),
]
