"""Signals (named, dynamic, buffered until a handler exists, undecodable) and queries (named,
dynamic, failing, read-only violations, built-in)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import temporalio.api.sdk.v1
import temporalio.common
from temporalio import workflow
from temporalio.client import WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError

from ..harness import Drive, Scenario, describe_error, outcome_of, wait_for_task_failure
from .activities import echo


@dataclass
class Point:
    x: int
    y: int


@workflow.defn
class SignalsWorkflow:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.done = False

    @workflow.signal
    def plain(self, value: str) -> None:
        self.events.append(("plain", value))

    @workflow.signal(name="custom-name")
    async def async_signal(self, point: Point) -> None:
        await workflow.sleep(0.01)
        self.events.append(("async", point.x + point.y))

    @workflow.signal
    def multi(self, a: int, b: str) -> None:
        self.events.append(("multi", a, b))

    @workflow.signal(dynamic=True)
    def dynamic(self, name: str, args: Sequence[temporalio.common.RawValue]) -> None:
        self.events.append(
            ("dynamic", name, [workflow.payload_converter().from_payload(a.payload) for a in args])
        )

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def get_events(self) -> list[Any]:
        return self.events

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.wait_condition(lambda: self.done)
        return self.events


@workflow.defn
class BufferedSignalsWorkflow:
    def __init__(self) -> None:
        self.events: list[Any] = []

    @workflow.run
    async def run(self) -> list[Any]:
        await workflow.sleep(0.5)
        # Signals that arrived before the handler existed are delivered now, in order.
        workflow.set_signal_handler("late", lambda v: self.events.append(("late", v)))
        await asyncio.sleep(0.01)

        def dyn(name: str, *args: Any) -> None:
            self.events.append(("dyn", name, args))

        workflow.set_dynamic_signal_handler(dyn)
        await asyncio.sleep(0.01)
        workflow.set_signal_handler("late", None)
        await workflow.sleep(0.5)
        return self.events


@workflow.defn
class SignalAtStartWorkflow:
    """Signal-with-start: the signal job shares the first activation with initialize."""

    def __init__(self) -> None:
        self.got: list[str] = []

    @workflow.signal
    def hello(self, value: str) -> None:
        self.got.append(value)

    @workflow.run
    async def run(self) -> list[str]:
        self.got.append("run started")
        await workflow.wait_condition(lambda: len(self.got) >= 2)
        return self.got


@workflow.defn
class UnfinishedSignalWorkflow:
    @workflow.signal
    async def slow_signal(self) -> None:
        await workflow.sleep(100)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def abandoned_signal(self) -> None:
        await workflow.sleep(100)

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(0.5)
        return "finished with handlers running"


@workflow.defn
class QueriesWorkflow:
    def __init__(self) -> None:
        self.counter = 0

    @workflow.query
    def count(self) -> int:
        return self.counter

    @workflow.query(name="custom_query", description="a described query")
    def with_args(self, a: int, b: int) -> int:
        return a * b + self.counter

    @workflow.query
    def failing(self) -> None:
        raise ValueError("query failed")

    @workflow.query
    def mutating(self) -> int:
        # Read-only context: starting work from a query is refused.
        workflow.start_activity(echo, 1, start_to_close_timeout=timedelta(seconds=1))
        return 1

    @workflow.query
    def sneaky_mutation(self) -> int:
        # Plain attribute writes cannot be refused by either engine: the query succeeds.
        self.counter += 100
        return self.counter

    @workflow.query
    def sleep_in_query(self) -> None:
        asyncio.get_running_loop().call_later(1, lambda: None)  # a timer: refused

    @workflow.query
    def random_in_query(self) -> float:
        return workflow.random().random()

    @workflow.query(dynamic=True)
    def dynamic(self, name: str, args: Sequence[temporalio.common.RawValue]) -> str:
        return f"dynamic {name} {len(args)}"

    @workflow.signal
    def bump(self) -> None:
        self.counter += 1

    @workflow.run
    async def run(self) -> int:
        workflow.set_query_handler("runtime_query", lambda: "registered at runtime")
        await workflow.wait_condition(lambda: self.counter >= 2)
        return self.counter


@workflow.defn
class FailingSignalWorkflow:
    @workflow.signal
    async def fail_workflow(self) -> None:
        await workflow.sleep(0.01)
        raise ApplicationError("a signal handler failed the workflow")

    @workflow.signal
    def fail_task(self) -> None:
        raise ValueError("a plain exception in a signal handler fails the task")

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(100)


async def _drive_failing_signals(d: Drive) -> Any:
    handle = await d.start(FailingSignalWorkflow.run, name="sigfail")
    await handle.signal(FailingSignalWorkflow.fail_workflow)
    out: list[Any] = [await outcome_of(handle)]
    handle = await d.start(FailingSignalWorkflow.run, name="sigtask")
    await handle.signal(FailingSignalWorkflow.fail_task)
    out.append(await wait_for_task_failure(handle))
    return out


async def _drive_signals(d: Drive) -> Any:
    handle = await d.start(SignalsWorkflow.run, name="signals")
    await handle.signal(SignalsWorkflow.plain, "one")
    await handle.signal("custom-name", Point(1, 2))
    await handle.signal(SignalsWorkflow.multi, args=[3, "three"])
    await handle.signal("unknown-signal", 1)
    await handle.signal("unknown-signal-2")
    # Undecodable for the handler's type hint: dropped with an error log.
    await handle.signal(SignalsWorkflow.plain, {"not": "a string"})
    await asyncio.sleep(0.2)
    events = await handle.query(SignalsWorkflow.get_events)
    await handle.signal(SignalsWorkflow.finish)
    return {"queried": events, "result": await handle.result()}


async def _drive_buffered(d: Drive) -> Any:
    handle = await d.start(BufferedSignalsWorkflow.run, name="buffered")
    await handle.signal("late", 1)
    await handle.signal("late", 2)
    await handle.signal("other", 3)
    await asyncio.sleep(0.6)
    await handle.signal("late", 4)
    return await handle.result()


async def _drive_signal_at_start(d: Drive) -> Any:
    handle = await d.client.start_workflow(
        SignalAtStartWorkflow.run,
        id=d.id("sigstart"),
        task_queue=d.task_queue,
        start_signal="hello",
        start_signal_args=["from start"],
    )
    return await handle.result()


async def _drive_unfinished(d: Drive) -> Any:
    handle = await d.start(UnfinishedSignalWorkflow.run, name="unfinished")
    await handle.signal(UnfinishedSignalWorkflow.slow_signal)
    await handle.signal(UnfinishedSignalWorkflow.slow_signal)
    await handle.signal(UnfinishedSignalWorkflow.abandoned_signal)
    return await handle.result()


async def _query(handle: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return {"ok": await handle.query(*args, **kwargs)}
    except WorkflowQueryFailedError as err:
        return {"failed": describe_error(err)}


async def _drive_queries(d: Drive) -> Any:
    handle = await d.start(QueriesWorkflow.run, name="queries")
    out: list[Any] = [await _query(handle, QueriesWorkflow.count)]
    await handle.signal(QueriesWorkflow.bump)
    out.append(await _query(handle, "custom_query", args=[3, 4]))
    out.append(await _query(handle, QueriesWorkflow.failing))
    out.append(await _query(handle, QueriesWorkflow.mutating))
    out.append(await _query(handle, QueriesWorkflow.random_in_query))
    out.append(await _query(handle, QueriesWorkflow.sleep_in_query))
    out.append(await _query(handle, "whatever", 1))
    out.append(await _query(handle, "runtime_query"))
    stack = await handle.query("__stack_trace")
    out.append("Stack for" in stack)
    enhanced = await handle.query(
        "__enhanced_stack_trace", result_type=temporalio.api.sdk.v1.EnhancedStackTrace
    )
    out.append((enhanced.sdk.name, len(enhanced.stacks)))
    metadata = await handle.query(
        "__temporal_workflow_metadata", result_type=temporalio.api.sdk.v1.WorkflowMetadata
    )
    out.append(str(metadata.definition))
    await handle.signal(QueriesWorkflow.bump)
    out.append(await handle.result())
    # A query on a closed workflow replays its whole history first.
    out.append(await _query(handle, QueriesWorkflow.count))
    # A query that mutates state: neither engine can tell.
    out.append(await _query(handle, QueriesWorkflow.sneaky_mutation))
    return out


async def _drive_query_unknown(d: Drive) -> Any:
    handle = await d.start(SignalsWorkflow.run, name="qunknown")
    out = [await _query(handle, "no_such_query_but_dynamic_exists")]
    handle2 = await d.start(QueriesWorkflow.run, name="qunknown2")
    await handle.signal(SignalsWorkflow.finish)
    out.append(await _query(handle2, QueriesWorkflow.count))
    await handle2.terminate("done")
    out.append(await handle.result())
    return out


@workflow.defn
class NoDynamicQueryWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(100)


async def _drive_query_not_found(d: Drive) -> Any:
    handle = await d.start(NoDynamicQueryWorkflow.run, name="qnotfound")
    out = await _query(handle, "nope")
    await handle.terminate("done")
    return out


SCENARIOS = [
    Scenario("signals", [SignalsWorkflow], _drive_signals),
    Scenario("signals_buffered", [BufferedSignalsWorkflow], _drive_buffered),
    Scenario("signal_with_start", [SignalAtStartWorkflow], _drive_signal_at_start),
    Scenario("signals_unfinished", [UnfinishedSignalWorkflow], _drive_unfinished),
    Scenario("queries", [QueriesWorkflow], _drive_queries, [echo]),
    Scenario("queries_dynamic", [SignalsWorkflow, QueriesWorkflow], _drive_query_unknown),
    Scenario("query_not_found", [NoDynamicQueryWorkflow], _drive_query_not_found),
    Scenario("signal_handler_failures", [FailingSignalWorkflow], _drive_failing_signals),
]
