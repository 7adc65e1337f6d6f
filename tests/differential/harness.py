"""Differential harness: the same activations through the SDK's instance and through ours.

1. A scenario's workflows run for real against the dev server on a Worker whose runner is a
   ``RecordingRunner`` around one engine (the SDK's ``UnsandboxedWorkflowRunner`` or ours). Every
   instance records its ``WorkflowInstanceDetails`` (``info`` copied before any activation
   mutates it) and every (activation, completion) pair, as protobuf bytes.
2. Each recorded instance is replayed, activation by activation, into a fresh instance of *both*
   engines on a plain thread. The completions must equal the live ones, command by command, and
   the two replays must also agree on warnings and log lines. Only stack traces (and code
   locations inside messages) are normalised.
3. The histories the server recorded are replayed with ``temporalio.worker.Replayer`` under both
   engines, which must reach the same outcome.

Running every scenario live under each engine gives both directions: SDK-recorded activations
through our engine, and ours through the SDK's.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import gc
import logging
import re
import threading
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import temporalio.api.common.v1
import temporalio.api.enums.v1
import temporalio.api.failure.v1
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.client
import temporalio.converter
import temporalio.exceptions
from google.protobuf import text_format
from google.protobuf.message import Message
from temporalio.worker import (
    Replayer,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker._workflow_instance import _WorkflowLogicFlag

from temporay.runtime.engine.runner import TemporayWorkflowRunner
from temporay.runtime.hosting.externs import MetricRecorder

ENGINES: dict[str, Callable[[], WorkflowRunner]] = {
    "sdk": UnsandboxedWorkflowRunner,
    "temporay": TemporayWorkflowRunner,
}

# --- recording ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    activation: bytes
    completion: bytes | None
    raised: str | None = None


CODE_VERSIONS: dict[str, int] = {}
"""Which version of their code versioned scenario workflows run (patching scenarios change it
while a run is open). Captured with each instance and restored when it is replayed."""


@dataclasses.dataclass
class RecordedInstance:
    """One instance the Worker created (a run can have several: after eviction, task failure)."""

    details: WorkflowInstanceDetails
    steps: list[Step]
    code_versions: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def workflow_id(self) -> str:
        return self.details.info.workflow_id

    @property
    def run_id(self) -> str:
        return self.details.info.run_id


class RecordingInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance, record: RecordedInstance) -> None:
        self._inner = inner
        self._record = record

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        data = act.SerializeToString()
        try:
            completion = self._inner.activate(act)
        except BaseException as err:
            self._record.steps.append(Step(data, None, f"{type(err).__name__}: {err}"))
            raise
        self._record.steps.append(Step(data, completion.SerializeToString()))
        return completion

    def get_serialization_context(self, command_info: CommandInfo | None) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: CommandInfo | None) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


class RecordingRunner(WorkflowRunner):
    """Wraps an engine and records every instance it creates."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner
        self.instances: list[RecordedInstance] = []
        self._lock = threading.Lock()

    def prepare_workflow(self, defn: Any) -> None:
        self.inner.prepare_workflow(defn)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        # The engines mutate info (memo, search attributes) in place: keep the original.
        record = RecordedInstance(
            dataclasses.replace(det, info=copy.deepcopy(det.info)), [], dict(CODE_VERSIONS)
        )
        with self._lock:
            self.instances.append(record)
        return RecordingInstance(self.inner.create_instance(det), record)

    def snapshot(self) -> list[RecordedInstance]:
        with self._lock:
            return [
                RecordedInstance(r.details, list(r.steps), r.code_versions) for r in self.instances
            ]


# --- replay ------------------------------------------------------------------------------------

_CAPTURED_LOGGERS = (
    "temporalio.workflow",
    "temporalio.worker._workflow_instance",
    "temporay.runtime",
)


@dataclasses.dataclass
class ReplayOutcome:
    completions: list[str | None]
    raised: list[str | None]
    warnings: list[str]
    logs: list[str]
    creation_error: str | None = None
    metrics: list[str] = dataclasses.field(default_factory=list)


class _ThreadRecords(logging.Handler):
    def __init__(self, thread_id: int) -> None:
        super().__init__(logging.DEBUG)
        self.thread_id = thread_id
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread_id:
            return
        # Logger names are compared as they are: the engine logs the SDK runner's records on
        # the SDK's logger (runtime/engine/logs.py).
        self.lines.append(f"{record.levelname} {record.name}: {normalize_text(record.getMessage())}")


@contextlib.contextmanager
def _capture_logs(thread_id: int) -> Iterator[_ThreadRecords]:
    handler = _ThreadRecords(thread_id)
    loggers = [logging.getLogger(name) for name in _CAPTURED_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


def _replay_on_this_thread(runner: WorkflowRunner, recorded: RecordedInstance) -> ReplayOutcome:
    # Metrics go to a recorder instead of the Worker's meter, to be compared too.
    recorder = MetricRecorder()
    det = dataclasses.replace(
        recorded.details,
        info=copy.deepcopy(recorded.details.info),
        extern_functions={
            **recorded.details.extern_functions,
            "__temporal_get_metric_meter": recorder.meter,
        },
    )
    # Instances are created inside a running loop (a placeholder, as hosts do).
    placeholder = asyncio.new_event_loop()
    outcome = ReplayOutcome([], [], [], [])
    # Leftovers of earlier replays must not warn (GC) inside this one.
    gc.collect()
    try:
        with (
            _capture_logs(threading.get_ident()) as logs,
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            asyncio._set_running_loop(placeholder)
            try:
                instance = runner.create_instance(det)
            except Exception as err:
                outcome.creation_error = normalize_text(f"{type(err).__name__}: {err}")
                outcome.logs = list(logs.lines)
                return outcome
            finally:
                asyncio._set_running_loop(None)
            for step in recorded.steps:
                act = wfact.WorkflowActivation()
                act.ParseFromString(step.activation)
                try:
                    completion = instance.activate(act)
                except Exception as err:
                    outcome.completions.append(None)
                    outcome.raised.append(normalize_text(f"{type(err).__name__}: {err}"))
                    continue
                outcome.completions.append(normalize_completion(act, completion))
                outcome.raised.append(None)
            # This instance's own leftovers warn now, attributed to it.
            del instance
            gc.collect()
            outcome.warnings = [
                f"{w.category.__name__}: {normalize_text(str(w.message))}"
                for w in caught
                if not issubclass(w.category, DeprecationWarning | ResourceWarning)
            ]
            outcome.logs = list(logs.lines)
            outcome.metrics = [repr(op) for op in recorder.drain()]
    finally:
        placeholder.close()
    return outcome


def replay(runner: WorkflowRunner, recorded: RecordedInstance) -> ReplayOutcome:
    """Feed a recorded instance's activations to a fresh instance of ``runner``, on a new thread
    (engines own the thread's running loop while they activate)."""
    result: list[ReplayOutcome] = []
    errors: list[BaseException] = []

    def target() -> None:
        saved = dict(CODE_VERSIONS)
        CODE_VERSIONS.clear()
        CODE_VERSIONS.update(recorded.code_versions)
        try:
            result.append(_replay_on_this_thread(runner, recorded))
        except BaseException as err:
            errors.append(err)
        finally:
            CODE_VERSIONS.clear()
            CODE_VERSIONS.update(saved)

    thread = threading.Thread(target=target, name="differential-replay")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


# --- normalisation -----------------------------------------------------------------------------

_STACK_QUERIES = ("__stack_trace", "__enhanced_stack_trace")
_FAILURE = temporalio.api.failure.v1.Failure.DESCRIPTOR.full_name


def normalize_text(text: str) -> str:
    """Code locations are not behaviour: drop addresses, coroutine reprs, file:line pairs and
    stack dumps embedded in messages."""
    text = re.sub(r"Stack traces below:.*", "Stack traces below: <stacks>", text, flags=re.S)
    text = re.sub(r"coroutine '[^']*' was never awaited", "coroutine <...> was never awaited", text)
    text = re.sub(r"coro=<.*?>( running at \S+)?", "coro=<...>", text)
    text = re.sub(r" at 0x[0-9a-f]+", " at 0x?", text)
    text = re.sub(r"[\w./\\-]+\.py:\d+", "<file>:<line>", text)
    return text


def _strip_stack_traces(message: Message) -> None:
    if message.DESCRIPTOR.full_name == _FAILURE:
        message.stack_trace = ""  # type: ignore[attr-defined]
        message.message = normalize_text(message.message)  # type: ignore[attr-defined]
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            if field.message_type.GetOptions().map_entry:
                values = (
                    value.values()
                    if field.message_type.fields_by_name["value"].message_type
                    else []
                )
                for item in values:
                    _strip_stack_traces(item)
            else:
                for item in value:
                    _strip_stack_traces(item)
        else:
            _strip_stack_traces(value)


def normalize_completion(
    act: wfact.WorkflowActivation, completion: wfcomp.WorkflowActivationCompletion
) -> str:
    completion = copy.deepcopy(completion)
    completion.run_id = ""
    stack_queries = {
        job.query_workflow.query_id
        for job in act.jobs
        if job.HasField("query_workflow") and job.query_workflow.query_type in _STACK_QUERIES
    }
    for command in completion.successful.commands:
        response = command.respond_to_query
        if (
            command.HasField("respond_to_query")
            and response.query_id in stack_queries
            and response.HasField("succeeded")
        ):
            response.succeeded.response.data = b"<stack trace>"
    _strip_stack_traces(completion)
    return text_format.MessageToString(completion)


def recorded_completions(recorded: RecordedInstance) -> tuple[list[str | None], list[str | None]]:
    completions: list[str | None] = []
    raised: list[str | None] = []
    for step in recorded.steps:
        act = wfact.WorkflowActivation()
        act.ParseFromString(step.activation)
        if step.completion is None:
            completions.append(None)
            raised.append(normalize_text(step.raised or ""))
            continue
        completion = wfcomp.WorkflowActivationCompletion()
        completion.ParseFromString(step.completion)
        completions.append(normalize_completion(act, completion))
        raised.append(None)
    return completions, raised


def describe_activation(data: bytes) -> str:
    act = wfact.WorkflowActivation()
    act.ParseFromString(data)
    jobs = [job.WhichOneof("variant") for job in act.jobs]
    return f"replaying={act.is_replaying} flags={list(act.available_internal_flags)} jobs={jobs}"


def assert_same_completions(
    label: str,
    recorded: RecordedInstance,
    expected: list[str | None],
    expected_raised: list[str | None],
    actual: ReplayOutcome,
) -> None:
    for index, step in enumerate(recorded.steps):
        where = (
            f"{label}: workflow {recorded.details.info.workflow_type} "
            f"id={recorded.workflow_id} activation #{index} ({describe_activation(step.activation)})"
        )
        assert actual.raised[index] == expected_raised[index], (
            f"{where}: raised {actual.raised[index]!r}, expected {expected_raised[index]!r}"
        )
        if expected[index] != actual.completions[index]:
            raise AssertionError(
                f"{where}: completions differ\n--- expected\n{expected[index]}\n--- actual\n"
                f"{actual.completions[index]}"
            )


def check_instance(recorded: RecordedInstance, live_engine: str) -> None:
    """The core differential check for one recorded instance."""
    expected, expected_raised = recorded_completions(recorded)
    outcomes = {name: replay(factory(), recorded) for name, factory in ENGINES.items()}
    creation = {name: outcome.creation_error for name, outcome in outcomes.items()}
    assert creation["temporay"] == creation["sdk"], f"creating the instance differs: {creation}"
    if creation["sdk"] is not None:
        assert not recorded.steps
        return
    # The recording itself must be deterministic (a scenario bug otherwise).
    assert_same_completions(
        f"{live_engine} live vs {live_engine} replay",
        recorded,
        expected,
        expected_raised,
        outcomes[live_engine],
    )
    for name, outcome in outcomes.items():
        if name != live_engine:
            assert_same_completions(
                f"{live_engine} live vs {name} replay", recorded, expected, expected_raised, outcome
            )
    sdk, ours = outcomes["sdk"], outcomes["temporay"]
    assert ours.warnings == sdk.warnings, (
        f"warnings differ: sdk={sdk.warnings} ours={ours.warnings}"
    )
    assert ours.metrics == sdk.metrics, f"metrics differ: sdk={sdk.metrics} ours={ours.metrics}"
    assert ours.logs == sdk.logs, "log lines differ:\n" + "\n".join(
        [f"sdk : {line}" for line in sdk.logs] + [f"ours: {line}" for line in ours.logs]
    )


# --- live runs ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Drive:
    """What a scenario's driver gets: a client, the task queue, and unique workflow ids."""

    client: temporalio.client.Client
    task_queue: str
    prefix: str
    state: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Left by the scenario's ``before_worker`` step for its driver."""

    def id(self, name: str = "wf") -> str:
        return f"{self.prefix}-{name}"

    async def start(self, workflow: Any, *args: Any, name: str = "wf", **kwargs: Any) -> Any:
        return await self.client.start_workflow(
            workflow,
            args=list(args),
            id=self.id(name),
            task_queue=self.task_queue,
            **kwargs,
        )

    async def execute(self, workflow: Any, *args: Any, name: str = "wf", **kwargs: Any) -> Any:
        handle = await self.start(workflow, *args, name=name, **kwargs)
        return await outcome_of(handle)


@dataclasses.dataclass
class Scenario:
    name: str
    workflows: Sequence[type]
    drive: Callable[[Drive], Awaitable[Any]]
    activities: Sequence[Any] = ()
    worker_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    single_batch: bool = False
    """Turn internal flag 2 on by default (the SDK's coming default)."""
    expect_instances: bool = True
    """False when the Worker is expected to refuse the workflow before creating an instance."""
    replay_histories: bool = True
    """False when the Replayer cannot reproduce the run (it depended on changing code versions)."""
    data_converter: temporalio.converter.DataConverter | None = None
    """The client's (and so the Worker's) data converter, codec included."""
    before_worker: Callable[[Drive], Awaitable[None]] | None = None
    """Runs before the Worker starts (to pile up work for its first workflow task)."""

    def __str__(self) -> str:
        return self.name


def describe_error(err: BaseException | None) -> Any:
    """An engine-independent description of an exception chain (types, messages, key fields)."""
    chain = []
    while err is not None:
        entry: dict[str, Any] = {"type": type(err).__name__, "message": normalize_text(str(err))}
        if isinstance(err, temporalio.exceptions.ApplicationError):
            entry["app_type"] = err.type
            entry["non_retryable"] = err.non_retryable
            entry["details"] = list(err.details)
        if isinstance(err, temporalio.exceptions.ActivityError):
            entry["activity_type"] = err.activity_type
            entry["retry_state"] = err.retry_state
        if isinstance(err, temporalio.exceptions.ChildWorkflowError):
            entry["workflow_type"] = err.workflow_type
            entry["retry_state"] = err.retry_state
        if isinstance(err, temporalio.exceptions.TimeoutError):
            entry["timeout_type"] = err.type
        chain.append(entry)
        err = err.__cause__
    return chain


async def outcome_of(handle: temporalio.client.WorkflowHandle[Any, Any]) -> Any:
    try:
        return {"result": await handle.result(follow_runs=True)}
    except temporalio.client.WorkflowFailureError as err:
        return {"failure": describe_error(err.cause)}


async def wait_for_task_failure(
    handle: temporalio.client.WorkflowHandle[Any, Any], *, terminate: bool = True
) -> str:
    """Wait until the workflow's task has failed once (the server retries it), return the
    failure message and terminate the workflow."""
    failed = temporalio.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    for _ in range(600):
        history = await handle.fetch_history()
        for event in history.events:
            if event.event_type == failed:
                message = event.workflow_task_failed_event_attributes.failure.message
                if terminate:
                    await handle.terminate("scenario done")
                return normalize_text(message)
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow {handle.id} never failed its task")


@dataclasses.dataclass
class LiveRun:
    engine: str
    observation: Any
    instances: list[RecordedInstance]
    histories: list[temporalio.client.WorkflowHistory]


async def observe(
    client: temporalio.client.Client, scenario: Scenario, runner: WorkflowRunner, label: str
) -> Any:
    """Run the scenario's driver against a Worker using ``runner``; what the clients saw."""
    task_queue = f"diff-{scenario.name}-{label}-{uuid.uuid4().hex[:8]}"
    if scenario.data_converter is not None:
        client = temporalio.client.Client(
            client.service_client,
            namespace=client.namespace,
            data_converter=scenario.data_converter,
        )
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=list(scenario.workflows),
        activities=list(scenario.activities),
        workflow_runner=runner,
        unsandboxed_workflow_runner=runner,
        **scenario.worker_kwargs,
    )
    if scenario.single_batch:
        worker._set_default_workflow_logic_flag(
            _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH, enabled=True
        )
    drive = Drive(client, task_queue, task_queue)
    if scenario.before_worker is not None:
        await scenario.before_worker(drive)
    async with worker:
        return await scenario.drive(drive)


async def run_live(client: temporalio.client.Client, scenario: Scenario, engine: str) -> LiveRun:
    runner = RecordingRunner(ENGINES[engine]())
    observation = await observe(client, scenario, runner, engine)
    instances = runner.snapshot()
    histories = []
    seen: set[tuple[str, str]] = set()
    for instance in instances:
        key = (instance.workflow_id, instance.run_id)
        if key in seen:
            continue
        seen.add(key)
        handle = client.get_workflow_handle(instance.workflow_id, run_id=instance.run_id)
        histories.append(await handle.fetch_history())
    return LiveRun(engine, observation, instances, histories)


async def replay_histories(
    scenario: Scenario, histories: Sequence[temporalio.client.WorkflowHistory], engine: str
) -> dict[str, str | None]:
    """Replay server histories with ``Replayer`` under ``engine``; outcome per run id."""
    runner = ENGINES[engine]()
    kwargs = {
        k: v
        for k, v in scenario.worker_kwargs.items()
        if k in ("interceptors", "workflow_failure_exception_types", "debug_mode")
    }
    if scenario.data_converter is not None:
        kwargs["data_converter"] = scenario.data_converter
    replayer = Replayer(
        workflows=list(scenario.workflows),
        workflow_runner=runner,
        unsandboxed_workflow_runner=runner,
        **kwargs,
    )
    if scenario.single_batch:
        replayer._set_default_workflow_logic_flag(
            _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH, enabled=True
        )
    outcomes: dict[str, str | None] = {}
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        outcomes[history.run_id] = (
            None if failure is None else normalize_text(f"{type(failure).__name__}: {failure}")
        )
    return outcomes


async def check_scenario(
    client: temporalio.client.Client, scenario: Scenario
) -> dict[str, LiveRun]:
    """Run a scenario live under each engine and hold both engines to the same behaviour."""
    runs: dict[str, LiveRun] = {}
    for engine in ENGINES:
        live = await run_live(client, scenario, engine)
        assert bool(live.instances) == scenario.expect_instances, (
            f"{scenario.name}: {len(live.instances)} workflow instances recorded under {engine}"
        )
        for instance in live.instances:
            await asyncio.to_thread(check_instance, instance, engine)
        if scenario.replay_histories:
            replays = {
                name: await replay_histories(scenario, live.histories, name) for name in ENGINES
            }
            assert replays["temporay"] == replays["sdk"], (
                f"{scenario.name}: replaying histories recorded under {engine} differs: "
                f"sdk={replays['sdk']} temporay={replays['temporay']}"
            )
        runs[engine] = live
    assert runs["temporay"].observation == runs["sdk"].observation, (
        f"{scenario.name}: what clients saw differs: sdk={runs['sdk'].observation} "
        f"temporay={runs['temporay'].observation}"
    )
    return runs


def short_timeout(seconds: float = 10) -> timedelta:
    return timedelta(seconds=seconds)
