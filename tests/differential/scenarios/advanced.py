"""Less common surfaces: event groups, dynamic config (failure exception types),
last failure on workflow retry, condition re-checks after rejected updates, worker-level failure
exception types, random-seed callbacks and new_random streams."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import temporalio.api.common.v1
import temporalio.api.enums.v1
import temporalio.api.workflowservice.v1
import temporalio.common
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from temporalio import workflow
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import RetryPolicy
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.opentelemetry._id_generator import TemporalIdGenerator
from temporalio.exceptions import ApplicationError

from ..harness import Drive, Scenario, describe_error, outcome_of
from .activities import echo
from .children import ChildWorkflow


@workflow.defn
class EventGroupsWorkflow:
    def __init__(self) -> None:
        self.done = False

    @workflow.signal
    async def signal_with_work(self) -> None:
        # Implicit group: commands from a handler carry the inbound signal's event.
        await workflow.execute_activity(
            echo, "from signal", start_to_close_timeout=timedelta(seconds=5)
        )

    @workflow.update
    async def update_with_work(self) -> str:
        await workflow.sleep(0.01)
        return "updated"

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self) -> str:
        group = workflow.create_event_group("checkout", label="Checkout steps")
        other = workflow.create_event_group("other")
        with group.scope():
            await workflow.execute_activity(echo, 1, start_to_close_timeout=timedelta(seconds=5))
            await workflow.sleep(0.01)
            with other.scope():
                await workflow.execute_activity(
                    echo, 2, start_to_close_timeout=timedelta(seconds=5)
                )
            workflow.upsert_memo({"k": "v"})
        await workflow.execute_activity(
            echo, 3, start_to_close_timeout=timedelta(seconds=5), event_groups=[other]
        )
        await workflow.sleep(0.01, event_groups=[group])
        child = await workflow.start_child_workflow(
            ChildWorkflow.run,
            args=["ok"],
            id=f"{workflow.info().workflow_id}-child",
            event_groups=[group],
        )
        await child
        try:
            workflow.create_event_group("")
        except ValueError as err:
            workflow.logger.info("empty id refused: %s", err)
        await workflow.wait_condition(lambda: self.done, timeout=30, event_groups=[group])
        return "grouped"


@workflow.defn(dynamic=True)
class DynamicConfigWorkflow:
    @workflow.dynamic_config
    def config(self) -> workflow.DynamicWorkflowConfig:
        # (A versioning behaviour needs a versioned deployment: see test_engine_unit.)
        return workflow.DynamicWorkflowConfig(failure_exception_types=[KeyError])

    @workflow.run
    async def run(self, args: Sequence[temporalio.common.RawValue]) -> None:
        await workflow.sleep(0.01)
        raise KeyError("a dynamic failure type fails the workflow")


@workflow.defn
class RetriedWorkflow:
    @workflow.run
    async def run(self) -> Any:
        info = workflow.info()
        if info.attempt == 1:
            raise ApplicationError("first attempt fails", {"n": 1})
        last = workflow.get_last_failure()
        return {"attempt": info.attempt, "last_failure": describe_error(last)}


@workflow.defn
class ConditionChecksWorkflow:
    """A condition with a side effect: how often conditions are checked becomes visible."""

    def __init__(self) -> None:
        self.counter = itertools.count()
        self.go = False

    @workflow.update
    def poke(self, value: int) -> int:
        return value

    @poke.validator
    def check_poke(self, value: int) -> None:
        if value < 0:
            raise ValueError("rejected")

    @workflow.signal
    def release(self) -> None:
        self.go = True

    @workflow.run
    async def run(self) -> int:
        checks = 0

        def condition() -> bool:
            nonlocal checks
            checks += 1
            return self.go

        await workflow.wait_condition(condition)
        return checks


class WorkerLevelFailure(Exception):
    pass


@workflow.defn
class WorkerFailureTypesWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise WorkerLevelFailure("declared at the worker")


@workflow.defn
class SeedsWorkflow:
    @workflow.run
    async def run(self) -> list[Any]:
        seen: list[int] = []
        workflow.register_random_seed_callback(seen.append)
        stream = workflow.new_random("alpha")
        other = workflow.new_random("beta")
        values = [
            stream.random() == other.random(),
            workflow.random_seed() == workflow.random_seed(),
        ]
        await asyncio.sleep(0)
        return [values, seen]


async def _drive_event_groups(d: Drive) -> Any:
    handle = await d.start(EventGroupsWorkflow.run, name="groups")
    await handle.signal(EventGroupsWorkflow.signal_with_work)
    out = [await handle.execute_update(EventGroupsWorkflow.update_with_work)]
    await handle.signal(EventGroupsWorkflow.finish)
    out.append(await outcome_of(handle))
    return out


async def _drive_dynamic_config(d: Drive) -> Any:
    return await d.execute("AnyDynamicType", name="dynconfig")


async def _drive_retried(d: Drive) -> Any:
    return await d.execute(
        RetriedWorkflow.run,
        name="retried",
        retry_policy=RetryPolicy(maximum_attempts=2, initial_interval=timedelta(milliseconds=100)),
    )


async def _drive_condition_checks(d: Drive) -> Any:
    handle = await d.start(ConditionChecksWorkflow.run, name="checks")
    out: list[Any] = []
    for value in (-1, -2, 3, -4):
        try:
            out.append(await handle.execute_update(ConditionChecksWorkflow.poke, value))
        except WorkflowUpdateFailedError as err:
            out.append(describe_error(err.cause))
    await handle.signal(ConditionChecksWorkflow.release)
    out.append(await outcome_of(handle))
    return out


async def _drive_worker_failure_types(d: Drive) -> Any:
    return await d.execute(WorkerFailureTypesWorkflow.run, name="wtypes")


async def _drive_seeds(d: Drive) -> Any:
    return await d.execute(SeedsWorkflow.run, name="seeds")


@workflow.defn
class ResettableWorkflow:
    """After a reset the run gets a new randomness seed (an UpdateRandomSeed job)."""

    def __init__(self) -> None:
        self.released = False
        self.seeds: list[int] = []

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.run
    async def run(self) -> list[Any]:
        workflow.register_random_seed_callback(self.seeds.append)
        stream = workflow.new_random("named")
        first = workflow.random().random()
        await workflow.sleep(0.01)
        await workflow.wait_condition(lambda: self.released)
        return [
            len(self.seeds),
            workflow.random().random() != first,
            0 <= stream.random() < 1,
            workflow.random_seed() == (self.seeds[-1] if self.seeds else workflow.random_seed()),
        ]


async def _drive_reset(d: Drive) -> Any:
    handle = await d.start(ResettableWorkflow.run, name="reset")
    completed = temporalio.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    fired = temporalio.api.enums.v1.EventType.EVENT_TYPE_TIMER_FIRED
    events: list[Any] = []
    tasks: list[int] = []
    for _ in range(400):
        events = list((await handle.fetch_history()).events)
        tasks = [e.event_id for e in events if e.event_type == completed]
        if any(e.event_type == fired for e in events) and len(tasks) >= 2:
            break
        await asyncio.sleep(0.05)
    # Reset to the task after the timer: the new seed arrives as an UpdateRandomSeed job.
    reset_point = tasks[1]
    response = await d.client.workflow_service.reset_workflow_execution(
        temporalio.api.workflowservice.v1.ResetWorkflowExecutionRequest(
            namespace=d.client.namespace,
            workflow_execution=temporalio.api.common.v1.WorkflowExecution(
                workflow_id=handle.id, run_id=handle.result_run_id
            ),
            reason="differential reset",
            workflow_task_finish_event_id=reset_point,
            request_id=str(uuid.uuid4()),
        )
    )
    new_run = d.client.get_workflow_handle(handle.id, run_id=response.run_id)
    await new_run.signal(ResettableWorkflow.release)
    return await outcome_of(new_run)


_SPANS = InMemorySpanExporter()
# Span ids drawn from the workflow's deterministic random stream (keyed on workflow.instance()).
_TRACER_PROVIDER = TracerProvider(id_generator=TemporalIdGenerator(RandomIdGenerator()))
_TRACER_PROVIDER.add_span_processor(SimpleSpanProcessor(_SPANS))


@workflow.defn
class TracedWorkflow:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(echo, 1, start_to_close_timeout=timedelta(seconds=5))
        await workflow.execute_child_workflow(
            ChildWorkflow.run, "ok", id=f"{workflow.info().workflow_id}-child"
        )
        return "traced"


async def _drive_tracing(d: Drive) -> Any:
    _SPANS.clear()
    result = await d.execute(TracedWorkflow.run, name="traced")
    # Spans finished in workflows travel through the OpenTelemetry extern function.
    return {
        "result": result,
        "spans": sorted(span.name.split(":")[0] for span in _SPANS.get_finished_spans()),
    }


SCENARIOS = [
    Scenario("event_groups", [EventGroupsWorkflow, ChildWorkflow], _drive_event_groups, [echo]),
    Scenario(
        "dynamic_config",
        [DynamicConfigWorkflow],
        _drive_dynamic_config,
    ),
    Scenario("workflow_retry_last_failure", [RetriedWorkflow], _drive_retried),
    Scenario("condition_checks", [ConditionChecksWorkflow], _drive_condition_checks),
    Scenario(
        "worker_failure_types",
        [WorkerFailureTypesWorkflow],
        _drive_worker_failure_types,
        worker_kwargs={"workflow_failure_exception_types": [WorkerLevelFailure]},
    ),
    Scenario("random_seeds", [SeedsWorkflow], _drive_seeds),
    Scenario("reset_new_seed", [ResettableWorkflow], _drive_reset),
    Scenario(
        "opentelemetry_tracing",
        [TracedWorkflow, ChildWorkflow],
        _drive_tracing,
        [echo],
        worker_kwargs={
            "interceptors": [
                TracingInterceptor(
                    _TRACER_PROVIDER.get_tracer("temporay-test"), always_create_workflow_spans=True
                )
            ]
        },
    ),
]
