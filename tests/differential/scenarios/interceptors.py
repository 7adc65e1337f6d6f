"""Interceptors: worker interceptors around every inbound and outbound call, adding headers and
changing arguments, composed in order."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn

import temporalio.api.common.v1
import temporalio.api.enums.v1
import temporalio.client
from temporalio import workflow
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    SignalChildWorkflowInput,
    SignalExternalWorkflowInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from ..harness import Drive, Scenario, outcome_of, wait_for_task_failure
from .activities import echo
from .children import ChildWorkflow


def _note(label: str) -> None:
    obj = workflow.instance()
    if obj is not None and hasattr(obj, "intercepted"):
        obj.intercepted.append(label)


def _header(value: str) -> temporalio.api.common.v1.Payload:
    return workflow.payload_converter().to_payload(value)


def _make_interceptor(tag: str) -> type[Interceptor]:
    class Outbound(WorkflowOutboundInterceptor):
        def info(self) -> workflow.Info:
            return super().info()

        def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
            _note(f"{tag}:start_activity:{input.activity}")
            input.headers = {**input.headers, f"h-{tag}": _header(tag)}
            return super().start_activity(input)

        def start_local_activity(
            self, input: StartLocalActivityInput
        ) -> workflow.ActivityHandle[Any]:
            _note(f"{tag}:start_local_activity:{input.activity}")
            input.headers = {**input.headers, f"h-{tag}": _header(tag)}
            return super().start_local_activity(input)

        async def start_child_workflow(
            self, input: StartChildWorkflowInput
        ) -> workflow.ChildWorkflowHandle[Any, Any]:
            _note(f"{tag}:start_child_workflow:{input.workflow}")
            input.headers = {**input.headers, f"h-{tag}": _header(tag)}
            return await super().start_child_workflow(input)

        async def signal_child_workflow(self, input: SignalChildWorkflowInput) -> None:
            _note(f"{tag}:signal_child_workflow:{input.signal}")
            input.headers = {**input.headers, f"h-{tag}": _header(tag)}
            return await super().signal_child_workflow(input)

        async def signal_external_workflow(self, input: SignalExternalWorkflowInput) -> None:
            _note(f"{tag}:signal_external_workflow:{input.signal}")
            return await super().signal_external_workflow(input)

        def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
            _note(f"{tag}:continue_as_new")
            input.headers = {**input.headers, f"h-{tag}": _header(tag)}
            super().continue_as_new(input)

    class Inbound(WorkflowInboundInterceptor):
        def init(self, outbound: WorkflowOutboundInterceptor) -> None:
            super().init(Outbound(outbound))

        async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
            _note(f"{tag}:execute_workflow:{workflow.info().workflow_type}:{sorted(input.headers)}")
            if input.args and isinstance(input.args[0], int):
                input.args = [input.args[0] + 1, *input.args[1:]]
            result = await super().execute_workflow(input)
            return result

        async def handle_signal(self, input: HandleSignalInput) -> None:
            _note(f"{tag}:handle_signal:{input.signal}")
            await super().handle_signal(input)

        async def handle_query(self, input: HandleQueryInput) -> Any:
            result = await super().handle_query(input)
            return f"{tag}({result})"

        def handle_update_validator(self, input: HandleUpdateInput) -> None:
            _note(f"{tag}:handle_update_validator:{input.update}")
            super().handle_update_validator(input)

        async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
            _note(f"{tag}:handle_update_handler:{input.update}")
            return await super().handle_update_handler(input)

    class TaggedInterceptor(Interceptor):
        def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput
        ) -> type[WorkflowInboundInterceptor] | None:
            return Inbound

    return TaggedInterceptor


@workflow.defn
class InterceptedWorkflow:
    def __init__(self) -> None:
        self.intercepted: list[str] = []
        self.done = False

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def state(self) -> int:
        return len(self.intercepted)

    @workflow.update
    def with_validator(self, value: int) -> int:
        return value

    @with_validator.validator
    def check(self, value: int) -> None:
        pass

    @workflow.update
    def without_validator(self, value: int) -> int:
        return value

    @workflow.run
    async def run(self, number: int) -> list[str]:
        self.intercepted.append(f"run got {number}")
        await workflow.execute_activity(echo, 1, start_to_close_timeout=timedelta(seconds=5))
        await workflow.execute_local_activity(echo, 2, start_to_close_timeout=timedelta(seconds=5))
        child = await workflow.start_child_workflow(
            ChildWorkflow.run, "wait_signal", id=f"{workflow.info().workflow_id}-child"
        )
        await child.signal(ChildWorkflow.poke, "x")
        await child
        await workflow.wait_condition(lambda: self.done)
        if number < 5:
            workflow.continue_as_new(number)
        await asyncio.sleep(0)
        return self.intercepted


async def _wait_until_child_done(handle: temporalio.client.WorkflowHandle[Any, Any]) -> None:
    """Wait until the workflow has completed the task that saw its child finish: from then on
    it only waits for `finish`, so what `state` answers no longer depends on timing."""
    completed = temporalio.api.enums.v1.EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    task_done = temporalio.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    for _ in range(400):
        types = [event.event_type for event in (await handle.fetch_history()).events]
        if completed in types and task_done in types[types.index(completed) :]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the child never completed")


async def _drive(d: Drive) -> Any:
    handle = await d.start(InterceptedWorkflow.run, 1, name="intercepted")
    await _wait_until_child_done(handle)
    out: list[Any] = [await handle.query("state")]
    out.append(await handle.execute_update(InterceptedWorkflow.with_validator, 5))
    out.append(await handle.execute_update(InterceptedWorkflow.without_validator, 6))
    await handle.signal(InterceptedWorkflow.finish)
    latest = d.client.get_workflow_handle(handle.id)
    # Wait for the continued run, then finish it too.
    while (await latest.describe()).run_id == handle.result_run_id:
        await asyncio.sleep(0.05)
    await latest.signal(InterceptedWorkflow.finish)
    out.append(await outcome_of(handle))
    return out


class InfoInInitInterceptor(Interceptor):
    """workflow.info() from an inbound interceptor's init(): the SDK's instance cannot answer
    yet, so creating the instance fails (a task failure)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                self.workflow_type = workflow.info().workflow_type
                super().init(outbound)

        return Inbound


@workflow.defn
class PlainWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "ran"


async def _drive_info_in_init(d: Drive) -> Any:
    handle = await d.start(PlainWorkflow.run, name="infoinit")
    return await wait_for_task_failure(handle)


SCENARIOS = [
    Scenario(
        "interceptors",
        [InterceptedWorkflow, ChildWorkflow],
        _drive,
        [echo],
        worker_kwargs={
            "interceptors": [_make_interceptor("outer")(), _make_interceptor("inner")()]
        },
    ),
    Scenario(
        "interceptor_info_in_init",
        [PlainWorkflow],
        _drive_info_in_init,
        worker_kwargs={"interceptors": [InfoInInitInterceptor()]},
    ),
]
