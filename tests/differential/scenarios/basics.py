"""Start, return, fail; init; dynamic workflows; info, memo, search attributes, logger, metrics,
deterministic random/uuid/time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import temporalio.common
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from ..harness import Drive, Scenario, outcome_of, wait_for_task_failure

KEYWORD = temporalio.common.SearchAttributeKey.for_keyword("TemporayKeyword")
INT = temporalio.common.SearchAttributeKey.for_int("TemporayInt")
TEXT = temporalio.common.SearchAttributeKey.for_text("TemporayText")


@dataclass
class Order:
    item: str
    quantity: int


@workflow.defn
class ReturnWorkflow:
    @workflow.run
    async def run(self, name: str, count: int) -> str:
        return f"{name}:{count}"


@workflow.defn
class DataclassWorkflow:
    @workflow.run
    async def run(self, order: Order) -> Order:
        return Order(order.item.upper(), order.quantity * 2)


@workflow.defn
class NoneWorkflow:
    @workflow.run
    async def run(self) -> None:
        pass


@workflow.defn
class AppErrorWorkflow:
    @workflow.run
    async def run(self, kind: str) -> None:
        if kind == "plain":
            raise ApplicationError("app failed", {"detail": 1}, type="MyError")
        if kind == "non_retryable":
            raise ApplicationError("fatal", non_retryable=True)
        if kind == "chained":
            try:
                raise ValueError("inner cause")
            except ValueError as err:
                raise ApplicationError("outer") from err
        if kind == "timeout":
            raise TimeoutError("asyncio timeout fails the workflow")
        raise ApplicationError("unknown kind")


class MyFailure(Exception):
    pass


@workflow.defn(failure_exception_types=[MyFailure])
class FailureTypesWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise MyFailure("declared failure type fails the workflow")


@workflow.defn
class TaskFailureWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("plain exception fails the task")


@workflow.defn
class InitWorkflow:
    @workflow.init
    def __init__(self, name: str) -> None:
        self.greeting = f"hello {name}"
        self.info_type = workflow.info().workflow_type

    @workflow.run
    async def run(self, name: str) -> str:
        return f"{self.greeting} / {name} / {self.info_type}"


@workflow.defn
class InitFailsWorkflow:
    def __init__(self) -> None:
        raise ApplicationError("init failed")

    @workflow.run
    async def run(self) -> None:
        pass


@workflow.defn(dynamic=True)
class DynamicWorkflow:
    @workflow.run
    async def run(self, args: Sequence[temporalio.common.RawValue]) -> str:
        values = [workflow.payload_converter().from_payload(a.payload) for a in args]
        return f"{workflow.info().workflow_type}:{values}"


@workflow.defn
class InfoWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        info = workflow.info()
        return {
            "attempt": info.attempt,
            "type": info.workflow_type,
            "task_queue_ok": bool(info.task_queue),
            "namespace": info.namespace,
            "run_timeout": str(info.run_timeout),
            "execution_timeout": str(info.execution_timeout),
            "task_timeout": str(info.task_timeout),
            "parent": info.parent,
            "cron": info.cron_schedule,
            "continued": info.continued_run_id,
            "headers": len(info.headers),
            "history_length": workflow.info().get_current_history_length(),
            "history_size_positive": workflow.info().get_current_history_size() > 0,
            "can_suggested": workflow.info().is_continue_as_new_suggested(),
            "replaying": workflow.unsafe.is_replaying(),
            "replaying_events": workflow.unsafe.is_replaying_history_events(),
            "read_only": workflow.unsafe.is_read_only(),
            "in_workflow": workflow.in_workflow(),
            "instance_is_self": workflow.instance() is self,
            "build_id": workflow.info().get_current_build_id(),
            "deployment": str(workflow.info().get_current_deployment_version()),
            "has_last": workflow.has_last_completion_result(),
            "last_failure": workflow.get_last_failure(),
            "cancellation_reason": workflow.cancellation_reason(),
            "all_handlers_finished": workflow.all_handlers_finished(),
            "update_info": workflow.current_update_info(),
            "details": workflow.get_current_details(),
            "time_ok": workflow.time() > 0 and workflow.time_ns() > 0,
            "now_tz": str(workflow.now().tzinfo),
        }


@workflow.defn
class MemoWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        before = dict(workflow.memo())
        value = workflow.memo_value("color", "none")
        missing = workflow.memo_value("missing", "default")
        typed = workflow.memo_value("count", type_hint=int)
        workflow.upsert_memo({"color": "blue", "added": [1, 2], "count": None})
        workflow.upsert_memo({})
        await workflow.sleep(0.01)
        workflow.upsert_memo({"gone": None})
        after = dict(workflow.memo())
        try:
            workflow.memo_value("count")
            raised = False
        except KeyError:
            raised = True
        return {
            "before": before,
            "value": value,
            "missing": missing,
            "typed": typed,
            "after": after,
            "raised": raised,
            "raw_keys": sorted(workflow.info().raw_memo),
        }


@workflow.defn
class SearchAttributesWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        workflow.upsert_search_attributes([KEYWORD.value_set("k1"), INT.value_set(7)])
        first = workflow.info().typed_search_attributes.get(KEYWORD)
        workflow.upsert_search_attributes([INT.value_unset(), TEXT.value_set("some text")])
        await workflow.sleep(0.01)
        workflow.upsert_search_attributes({"TemporayKeyword": ["k2"]})  # deprecated untyped form
        workflow.upsert_search_attributes({"TemporayText": []})
        typed = workflow.info().typed_search_attributes
        return {
            "first": first,
            "keyword": typed.get(KEYWORD),
            "int": typed.get(INT),
            "text": typed.get(TEXT),
            "untyped": {k: list(v) for k, v in sorted(workflow.info().search_attributes.items())},
        }


@workflow.defn
class LoggerMetricsWorkflow:
    @workflow.run
    async def run(self) -> int:
        workflow.logger.info("starting %s", "now")
        counter = workflow.metric_meter().create_counter("temporay_test_counter", "desc", "1")
        counter.add(1, {"kind": "a"})
        hist = (
            workflow.metric_meter()
            .with_additional_attributes({"x": "y"})
            .create_histogram("temporay_test_hist")
        )
        hist.record(5)
        workflow.metric_meter().create_gauge_float("temporay_test_gauge").set(1.5)
        workflow.metric_meter().create_histogram_timedelta("temporay_test_td").record(
            timedelta(milliseconds=3)
        )
        await workflow.sleep(0.01)
        workflow.logger.warning("after sleep")
        workflow.set_current_details("details now")
        return 1


@workflow.defn
class DeterminismWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        rnd = workflow.random()
        values = [rnd.randint(0, 1000000) for _ in range(3)]
        uuids = [str(workflow.uuid4()) for _ in range(2)]
        uuid7 = str(workflow.uuid7())
        named = workflow.new_random("stream").random()
        t1 = workflow.time()
        await workflow.sleep(0.01)
        t2 = workflow.time()
        seed = workflow.random_seed()
        return {
            "values": values,
            "uuids": uuids,
            "uuid7_len": len(uuid7),
            "named": named,
            "advanced": t2 > t1,
            "seed_int": isinstance(seed, int),
        }


async def _drive_return(d: Drive) -> Any:
    return [
        await d.execute(ReturnWorkflow.run, "a", 3, name="ret"),
        await d.execute(DataclassWorkflow.run, Order("x", 2), name="dc"),
        await d.execute(NoneWorkflow.run, name="none"),
    ]


async def _drive_failures(d: Drive) -> Any:
    out = [
        await d.execute(AppErrorWorkflow.run, kind, name=f"fail-{kind}")
        for kind in ("plain", "non_retryable", "chained", "timeout")
    ]
    out.append(await d.execute(FailureTypesWorkflow.run, name="ftypes"))
    return out


async def _drive_task_failure(d: Drive) -> Any:
    handle = await d.start(TaskFailureWorkflow.run, name="taskfail")
    return await wait_for_task_failure(handle)


async def _drive_init(d: Drive) -> Any:
    out = [await d.execute(InitWorkflow.run, "bob", name="init")]
    out.append(await d.execute(InitFailsWorkflow.run, name="initfail"))
    return out


async def _drive_dynamic(d: Drive) -> Any:
    return await d.execute("SomeUnknownType", "x", 2, name="dyn")


async def _drive_info(d: Drive) -> Any:
    result = await d.execute(
        InfoWorkflow.run,
        name="info",
        execution_timeout=timedelta(minutes=5),
        run_timeout=timedelta(minutes=4),
        task_timeout=timedelta(seconds=7),
    )
    return result


async def _drive_memo(d: Drive) -> Any:
    return await d.execute(
        MemoWorkflow.run, name="memo", memo={"color": "red", "count": 5, "gone": "x"}
    )


async def _drive_search_attributes(d: Drive) -> Any:
    handle = await d.start(SearchAttributesWorkflow.run, name="sa")
    return await outcome_of(handle)


async def _drive_logger(d: Drive) -> Any:
    return await d.execute(LoggerMetricsWorkflow.run, name="log")


async def _drive_determinism(d: Drive) -> Any:
    result = await d.execute(DeterminismWorkflow.run, name="det")
    # Seed-derived values differ per run: only their shape is engine-independent.
    return {
        k: (v if k not in ("values", "uuids", "named") else type(v).__name__)
        for k, v in result["result"].items()
    }


SCENARIOS = [
    Scenario("return", [ReturnWorkflow, DataclassWorkflow, NoneWorkflow], _drive_return),
    Scenario("failures", [AppErrorWorkflow, FailureTypesWorkflow], _drive_failures),
    Scenario("task_failure", [TaskFailureWorkflow], _drive_task_failure),
    Scenario("init", [InitWorkflow, InitFailsWorkflow], _drive_init),
    Scenario("dynamic_workflow", [DynamicWorkflow], _drive_dynamic),
    Scenario("info", [InfoWorkflow], _drive_info),
    Scenario("memo", [MemoWorkflow], _drive_memo),
    Scenario("search_attributes", [SearchAttributesWorkflow], _drive_search_attributes),
    Scenario("logger_metrics", [LoggerMetricsWorkflow], _drive_logger),
    Scenario("determinism", [DeterminismWorkflow], _drive_determinism),
]
