"""The engine's contract with the Worker, without a server: picklability, no Ray import, the
``WorkflowInstance`` answers (info, thread id, serialization contexts), the thread's running loop,
eviction. Each behaviour is checked against the SDK's own instance on the same activations."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import cloudpickle
import pytest
import temporalio.api.common.v1
import temporalio.api.failure.v1
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio import workflow
from temporalio.api.enums.v1.command_type_pb2 import CommandType
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo

from bench.workloads.instance_details import instance_details
from temporay.runtime.engine.runner import TemporayWorkflowInstance, TemporayWorkflowRunner
from temporay.runtime.engines import EngineFactory, resolve_engine
from tests.differential.harness import normalize_completion
from tests.support.activations import (
    activation,
    cancel_workflow,
    evict,
    initialize,
    resolve_activity,
    signal,
    update,
)

RUN_ID = "run-1"
WORKFLOW_ID = "wf-1"
SEED = 42
START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = START + timedelta(seconds=1)


@workflow.defn
class SleepyWorkflow:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    @workflow.run
    async def run(self, name: str) -> str:
        self.tasks = [asyncio.create_task(workflow.sleep(100)) for _ in range(3)]
        await workflow.execute_activity(
            "some_activity", name, start_to_close_timeout=timedelta(seconds=5)
        )
        await asyncio.gather(*self.tasks)
        return name


@workflow.defn
class StubbornWorkflow:
    """Swallows the eviction's cancellation and waits on: eviction cannot unwind it."""

    @workflow.run
    async def run(self) -> None:
        try:
            await workflow.sleep(100)
        except asyncio.CancelledError:
            pass
        await asyncio.get_running_loop().create_future()


@workflow.defn(versioning_behavior=temporalio.common.VersioningBehavior.PINNED)
class PinnedWorkflow:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        return "pinned"


@workflow.defn(dynamic=True)
class DynamicAutoUpgradeWorkflow:
    @workflow.dynamic_config
    def config(self) -> workflow.DynamicWorkflowConfig:
        return workflow.DynamicWorkflowConfig(
            versioning_behavior=temporalio.common.VersioningBehavior.AUTO_UPGRADE
        )

    @workflow.run
    async def run(self, args: Sequence[temporalio.common.RawValue]) -> str:
        await workflow.sleep(1)
        return "upgraded"


def details(cls: type, *args: Any) -> WorkflowInstanceDetails:
    return instance_details(
        cls,
        run_id=RUN_ID,
        workflow_id=WORKFLOW_ID,
        task_queue="tq",
        randomness_seed=SEED,
        start_time=START,
        extern_functions={"__temporal_assert_local_activity_valid": lambda name: None},
    )


def init(cls: type, *args: Any) -> wfact.WorkflowActivationJob:
    """The initialize job of this module's run (the one ``details`` describes)."""
    return initialize(cls, *args, workflow_id=WORKFLOW_ID, randomness_seed=SEED)


def on_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a fresh thread whose running loop is a placeholder (as Workers do)."""
    result: list[Any] = []

    def target() -> None:
        placeholder = asyncio.new_event_loop()
        asyncio._set_running_loop(placeholder)
        try:
            result.append(fn())
        except BaseException as err:
            result.append(err)
        finally:
            asyncio._set_running_loop(None)
            placeholder.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result[0]


def _activate_with_thread(
    instance: WorkflowInstance, act: wfact.WorkflowActivation
) -> tuple[wfcomp.WorkflowActivationCompletion, int]:
    return instance.activate(act), threading.get_ident()


def both(cls: type, *args: Any) -> dict[str, WorkflowInstance]:
    return {
        "sdk": on_thread(lambda: UnsandboxedWorkflowRunner().create_instance(details(cls, *args))),
        "temporay": on_thread(
            lambda: TemporayWorkflowRunner().create_instance(details(cls, *args))
        ),
    }


def test_runner_pickles_and_resolves_by_name() -> None:
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        assert isinstance(loads(dumps(TemporayWorkflowRunner())), TemporayWorkflowRunner)
        assert isinstance(loads(dumps(EngineFactory("temporay")))(), TemporayWorkflowRunner)
    assert isinstance(resolve_engine("temporay"), TemporayWorkflowRunner)


def test_runtime_never_imports_ray() -> None:
    code = (
        "import sys, temporay.runtime.engine.runner, temporay.runtime.history, "
        "temporay.runtime.engine.activator; assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_instance_answers_match_the_sdk() -> None:
    instances = both(SleepyWorkflow, "x")
    first = activation(RUN_ID, init(SleepyWorkflow, "x"), at=START)
    answers: dict[str, Any] = {}
    for name, instance in instances.items():
        before = instance.get_thread_id()
        completion = on_thread(functools.partial(_activate_with_thread, instance, first))
        act_completion, thread_id = completion
        info = instance.get_info()
        activity = CommandInfo(
            command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,  # type: ignore[arg-type]
            command_seq=1,
        )
        unknown = CommandInfo(
            command_type=CommandType.COMMAND_TYPE_START_TIMER,  # type: ignore[arg-type]
            command_seq=99,
        )
        answers[name] = {
            "before": before,
            "after_is_activating_thread": instance.get_thread_id() == thread_id,
            "completion": normalize_completion(first, act_completion),
            "info": (info.workflow_id, info.run_id, info.workflow_type),
            "contexts": [
                instance.get_serialization_context(None),
                instance.get_serialization_context(activity),
                instance.get_serialization_context(unknown),
                instance.get_external_store_context(None),
                instance.get_external_store_context(activity),
            ],
        }
    assert answers["sdk"]["before"] is None
    assert answers["sdk"]["after_is_activating_thread"]
    assert answers["temporay"] == answers["sdk"]


def test_previous_running_loop_is_restored_after_each_activation() -> None:
    instance = on_thread(
        lambda: TemporayWorkflowRunner().create_instance(details(SleepyWorkflow, "x"))
    )

    def activate_and_check() -> bool:
        previous = asyncio._get_running_loop()
        instance.activate(activation(RUN_ID, init(SleepyWorkflow, "x"), at=START))
        return asyncio._get_running_loop() is previous and previous is not None

    assert on_thread(activate_and_check) is True


def test_eviction_unwinds_every_task() -> None:
    instances = both(SleepyWorkflow, "x")
    outcomes = {}
    for name, instance in instances.items():
        on_thread(
            functools.partial(
                instance.activate, activation(RUN_ID, init(SleepyWorkflow, "x"), at=START)
            )
        )
        completion = on_thread(
            functools.partial(instance.activate, activation(RUN_ID, evict(), at=LATER))
        )
        assert isinstance(completion, wfcomp.WorkflowActivationCompletion)
        outcomes[name] = str(completion)
    assert not instances["temporay"]._env.tasks  # type: ignore[attr-defined]
    assert outcomes["temporay"] == outcomes["sdk"]


def test_eviction_that_cannot_unwind_raises_like_the_sdk() -> None:
    instances = both(StubbornWorkflow)
    raised = {}
    for name, instance in instances.items():
        on_thread(
            functools.partial(
                instance.activate, activation(RUN_ID, init(StubbornWorkflow), at=START)
            )
        )
        result = on_thread(
            functools.partial(instance.activate, activation(RUN_ID, evict(), at=LATER))
        )
        assert isinstance(result, RuntimeError)
        raised[name] = str(result).split("Stack traces below")[0]
    assert raised["temporay"] == raised["sdk"]
    assert "tasks remain" in raised["sdk"]


def test_instance_is_the_workflow_runtime_on_its_loop() -> None:
    instance = on_thread(
        lambda: TemporayWorkflowRunner().create_instance(details(SleepyWorkflow, "x"))
    )
    assert isinstance(instance, TemporayWorkflowInstance)
    on_thread(lambda: instance.activate(activation(RUN_ID, init(SleepyWorkflow, "x"), at=START)))
    assert isinstance(instance.context.workflow_instance(), SleepyWorkflow)
    assert instance.context.workflow_info() is instance.get_info()


@pytest.mark.parametrize("engine", ["sdk", "temporay"])
def test_creation_needs_no_running_loop_for_ours(engine: str) -> None:
    """The SDK's instance needs a running loop at creation; ours does not (hosts may create
    runs on plain threads)."""
    runner = UnsandboxedWorkflowRunner() if engine == "sdk" else TemporayWorkflowRunner()
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(runner.create_instance(details(SleepyWorkflow, "x")))
        except RuntimeError as err:
            result.append(err)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if engine == "sdk":
        assert isinstance(result[0], RuntimeError)
    else:
        assert isinstance(result[0], TemporayWorkflowInstance)


@pytest.mark.parametrize("cls", [PinnedWorkflow, DynamicAutoUpgradeWorkflow])
def test_versioning_behavior_is_set_on_completions(cls: type) -> None:
    """A versioning behaviour (declared, or from a dynamic config function) goes on every
    completion; live runs need a versioned deployment, so this is checked offline."""
    completions = {}
    for name, instance in both(cls).items():
        first = activation(RUN_ID, init(cls), at=START)
        completion = on_thread(functools.partial(instance.activate, first))
        assert completion.successful.versioning_behavior != 0
        completions[name] = normalize_completion(first, completion)
    assert completions["temporay"] == completions["sdk"]


@workflow.defn
class LastResultWorkflow:
    @workflow.run
    async def run(self) -> Any:
        failure = workflow.get_last_failure()
        return {
            "has_last": workflow.has_last_completion_result(),
            "last": workflow.get_last_completion_result(),
            "last_typed": workflow.get_last_completion_result(int),
            "failure": None if failure is None else (type(failure).__name__, str(failure)),
        }


def test_last_completion_result_and_last_failure() -> None:
    """What cron runs and retried workflows see (hard to produce quickly on a server)."""
    converter = temporalio.converter.default()
    failure = temporalio.api.failure.v1.Failure()
    converter.failure_converter.to_failure(
        temporalio.exceptions.ApplicationError("previous attempt", type="Prev"),
        converter.payload_converter,
        failure,
    )
    completions = {}
    for name, runner in (
        ("sdk", UnsandboxedWorkflowRunner()),
        ("temporay", TemporayWorkflowRunner()),
    ):
        det = dataclasses.replace(
            details(LastResultWorkflow),
            last_completion_result=temporalio.api.common.v1.Payloads(
                payloads=converter.payload_converter.to_payloads([41])
            ),
            last_failure=failure,
        )
        instance = on_thread(functools.partial(runner.create_instance, det))
        first = activation(RUN_ID, init(LastResultWorkflow), at=START)
        completions[name] = normalize_completion(
            first, on_thread(functools.partial(instance.activate, first))
        )
    assert "previous attempt" in completions["sdk"]
    assert completions["temporay"] == completions["sdk"]


# --- internal flags and job ordering on hand-made activations -----------------------------------


@workflow.defn
class AwaitActivityWorkflow:
    def __init__(self) -> None:
        self.events: list[str] = []

    @workflow.signal
    def note(self, value: str) -> None:
        self.events.append(f"signal {value}")

    @workflow.update
    def bump(self, value: str) -> str:
        self.events.append(f"update {value}")
        return value

    @workflow.run
    async def run(self) -> list[str]:
        self.events.append("run started")
        try:
            result = await workflow.execute_activity(
                "some_activity", start_to_close_timeout=timedelta(seconds=5)
            )
            self.events.append(f"activity {result}")
        except asyncio.CancelledError:
            self.events.append("cancelled")
            raise
        await workflow.wait_condition(lambda: len(self.events) > 5)
        return self.events


def note(value: str) -> wfact.WorkflowActivationJob:
    """``AwaitActivityWorkflow``'s signal."""
    return signal("note", value, originating_event_id=5)


def bump(value: str, update_id: str) -> wfact.WorkflowActivationJob:
    """``AwaitActivityWorkflow``'s update."""
    return update("bump", update_id, value)


def run_both(
    cls: type,
    activations: list[wfact.WorkflowActivation],
    default_flags: frozenset[int] = frozenset(),
) -> list[str]:
    """Feed the same activations to both engines; the normalised completions must be equal."""
    results: dict[str, list[str]] = {}
    for name, runner in (
        ("sdk", UnsandboxedWorkflowRunner()),
        ("temporay", TemporayWorkflowRunner()),
    ):
        det = dataclasses.replace(details(cls), default_workflow_logic_flags=default_flags)  # type: ignore[arg-type]
        instance = on_thread(functools.partial(runner.create_instance, det))
        out = []
        for act in activations:
            completion = on_thread(functools.partial(instance.activate, copy.deepcopy(act)))
            out.append(normalize_completion(act, completion))
        results[name] = out
    assert results["temporay"] == results["sdk"]
    return results["sdk"]


@pytest.mark.parametrize(
    ("replaying", "available"),
    [(False, []), (True, []), (True, [1])],
    ids=["live", "replaying-without-flag", "replaying-with-flag"],
)
def test_flag_1_cancel_meeting_a_completed_activity(replaying: bool, available: list[int]) -> None:
    first = activation(RUN_ID, init(AwaitActivityWorkflow), at=START)
    second = activation(RUN_ID, resolve_activity(1, "done"), cancel_workflow(), at=LATER)
    second.is_replaying = replaying
    second.available_internal_flags.extend(available)
    completions = run_both(AwaitActivityWorkflow, [first, second])
    recorded = "used_internal_flags: 1" in completions[1]
    assert recorded == (not replaying or 1 in available)


@pytest.mark.parametrize("replaying", [False, True])
@pytest.mark.parametrize("available", [[], [2]])
@pytest.mark.parametrize("default_on", [False, True])
def test_flag_2_single_batch(replaying: bool, available: list[int], default_on: bool) -> None:
    first = activation(
        RUN_ID,
        init(AwaitActivityWorkflow),
        note("early"),
        bump("u", "u1"),
        cancel_workflow(),
        at=START,
    )
    first.is_replaying = replaying
    first.available_internal_flags.extend(available)
    second = activation(RUN_ID, resolve_activity(1, "done"), note("late"), at=LATER)
    second.is_replaying = replaying
    second.available_internal_flags.extend(available)
    defaults = frozenset({2}) if default_on else frozenset()
    completions = run_both(AwaitActivityWorkflow, [first, second], default_flags=defaults)
    recorded = "used_internal_flags: 2" in completions[0]
    assert recorded == (default_on and not replaying and not available)


def test_job_set_order_signals_and_updates_before_the_run() -> None:
    first = activation(
        RUN_ID, note("a"), init(AwaitActivityWorkflow), bump("u", "u1"), note("b"), at=START
    )
    second = activation(RUN_ID, resolve_activity(1, "x"), note("c"), bump("v", "u2"), at=LATER)
    run_both(AwaitActivityWorkflow, [first, second])
