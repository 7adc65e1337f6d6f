"""One workflow run hosted away from its Worker: the "run actor" that owns the run's environment.

A ``HostedRun`` is created from a ``RunTemplate`` (what every run of one workflow type on one Worker
shares, shipped once per hosting process) and ``RunDetails`` (what is particular to this run,
rebuilt from its first activation: ``runtime/hosting/run_info.py``). It turns activation bytes
into a completion plus the side information the Worker needs but cannot ask for remotely: the
serialization contexts the activation touched, recorded metric operations and the log records
it made (``log_shipping``). It knows nothing
of Ray; shards and tests drive it alike.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow
from temporalio.worker import (
    PatchActivationInput,
    WorkflowInstance,
    WorkflowRunner,
)
from temporalio.worker._workflow_instance import _WorkflowLogicFlag

from temporay.runtime.engine.command_contexts import (
    ContextDelta,
    ContextTracker,
    touched_commands,
)
from temporay.runtime.hosting.externs import (
    LocalActivityCatalog,
    MetricOp,
    MetricRecorder,
    hosted_extern_functions,
)
from temporay.runtime.hosting.failures import failed_completion
from temporay.runtime.hosting.log_shipping import LogCapture, LogLevels
from temporay.runtime.prepared import prepare_instance, shared_details
from temporay.runtime.run_info import RunDetails

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RunTemplate:
    """What all runs of one workflow definition on one Worker share; pickled once per host."""

    workflow_class: type
    payload_converter_factory: Callable[[], temporalio.converter.PayloadConverter]
    failure_converter_class: type[temporalio.converter.FailureConverter]
    interceptor_classes: Sequence[type]
    worker_level_failure_exception_types: Sequence[type[BaseException]]
    disable_eager_activity_execution: bool
    patch_activation_callback: Callable[[PatchActivationInput], bool] | None
    default_workflow_logic_flags: frozenset[_WorkflowLogicFlag]
    extern_names: tuple[str, ...]
    local_activities: LocalActivityCatalog
    log_levels: LogLevels = field(default_factory=LogLevels.snapshot)

    def definition(self) -> temporalio.workflow._Definition:
        return temporalio.workflow._Definition.must_from_class(self.workflow_class)


@dataclass(frozen=True)
class ReadyConverters:
    """A run's own converters, made by its template's factories before the run arrives.

    Engines build a run's converters once, when they create it; a host that waits for work
    makes the next runs' ahead (``make``), which takes that step out of a new run's first
    activation. Each run still gets converters of its own, as from the SDK."""

    payload: temporalio.converter.PayloadConverter
    failure: temporalio.converter.FailureConverter

    @staticmethod
    def make(template: RunTemplate) -> ReadyConverters:
        payload = template.payload_converter_factory()
        if isinstance(payload, temporalio.converter.WithSerializationContext):
            # with_context has no side effects (engines call it for every command); one call now
            # lets the SDK's composite converter find out, once, which of its parts take one.
            payload.with_context(_WARM_UP_CONTEXT)
        return ReadyConverters(payload, template.failure_converter_class())


_WARM_UP_CONTEXT = temporalio.converter.WorkflowSerializationContext(namespace="", workflow_id="")


def takes_ready_converters(runner: WorkflowRunner) -> bool:
    """Whether ``runner``'s engine calls each converter factory once per run, at creation, and
    nothing else (ours and the SDK's unsandboxed instance do; a user's runner may not)."""
    from temporalio.worker import UnsandboxedWorkflowRunner

    from temporay.runtime.engine.runner import TemporayWorkflowRunner

    engine = getattr(runner, "engine", runner)  # the engine inside our isolation runner
    return isinstance(engine, (TemporayWorkflowRunner, UnsandboxedWorkflowRunner))


@dataclass
class HostedResult:
    completion: wfcomp.WorkflowActivationCompletion
    contexts: ContextDelta
    metric_ops: list[MetricOp] = field(default_factory=list)
    log_records: list[dict[str, Any]] = field(default_factory=list)


_placeholder_loops = threading.local()


class running_loop_for_creation:
    """Engines are created "inside a running loop" (the SDK's instance registers itself on it
    while its interceptors initialise). Hosts create them on plain threads, so give the thread a
    never-run placeholder loop for the duration, restoring whatever was there before. (A class,
    not a generator: it is on the path of a new run's first activation.)"""

    __slots__ = ("_previous",)

    def __enter__(self) -> None:
        loop = getattr(_placeholder_loops, "loop", None)
        if loop is None:
            loop = _placeholder_loops.loop = asyncio.new_event_loop()
        self._previous = asyncio._get_running_loop()
        asyncio._set_running_loop(loop)

    def __exit__(self, *_: object) -> None:
        asyncio._set_running_loop(self._previous)


def _returning(value: T) -> Callable[[], T]:
    def made_ahead() -> T:
        return value

    return made_ahead


class ReadyRun:
    """A hosted run made before it is known: everything but what its first activation says.

    A host that waits for work makes the next runs of recently used templates this way
    (``actors/run_factory.py``), which takes the making of the instance (module copies,
    converters, handler tables, environment) out of a new run's first activation; ``bind`` then
    adds the run's details. Each is bound once. ``converters_ahead``: also call the template's converter
    factories now (only for engines that call them once, at creation: ``takes_ready_converters``).
    """

    __slots__ = ("_prepared", "_recorder", "_template")

    def __init__(
        self,
        runner: WorkflowRunner,
        template: RunTemplate,
        defn: temporalio.workflow._Definition,
        *,
        converters_ahead: bool = False,
    ) -> None:
        self._template = template
        self._recorder = MetricRecorder()
        payload_converter_factory = template.payload_converter_factory
        failure_converter_class = template.failure_converter_class
        if converters_ahead:
            converters = ReadyConverters.make(template)
            payload_converter_factory = _returning(converters.payload)
            failure_converter_class = _returning(converters.failure)  # type: ignore[assignment]
        det = shared_details(
            payload_converter_factory=payload_converter_factory,
            failure_converter_class=failure_converter_class,
            interceptor_classes=template.interceptor_classes,
            defn=defn,
            extern_functions=hosted_extern_functions(
                template.extern_names, self._recorder, template.local_activities
            ),
            disable_eager_activity_execution=template.disable_eager_activity_execution,
            worker_level_failure_exception_types=template.worker_level_failure_exception_types,
            patch_activation_callback=template.patch_activation_callback,
            default_workflow_logic_flags=template.default_workflow_logic_flags,
        )
        with running_loop_for_creation():
            self._prepared = prepare_instance(runner, det)

    def bind(self, details: RunDetails) -> HostedRun:
        with running_loop_for_creation():
            instance = self._prepared.bind(details)
        return HostedRun(instance, details.info, self._recorder, self._template)


class HostedRun:
    """Owns one run's engine instance and answers activations for it."""

    def __init__(
        self,
        instance: WorkflowInstance,
        info: temporalio.workflow.Info,
        recorder: MetricRecorder,
        template: RunTemplate,
    ) -> None:
        self.instance = instance
        self.info = info
        self._recorder = recorder
        self._template = template
        self._contexts = ContextTracker(info)
        self.activations = 0

    @staticmethod
    def create(
        runner: WorkflowRunner,
        template: RunTemplate,
        details: RunDetails,
        defn: temporalio.workflow._Definition,
    ) -> HostedRun:
        """A run made at once (when none was made ready for it)."""
        return ReadyRun(runner, template, defn).bind(details)

    def activate(self, activation: wfact.WorkflowActivation) -> HostedResult:
        capture = LogCapture.installed()
        if capture is None:
            completion = self.instance.activate(activation)
            records: list[dict[str, Any]] = []
        else:
            with capture.activation() as scope:
                completion = self.instance.activate(activation)
            records = scope.records
        # sdk-core leaves run_id to the Worker; set it so the completion stands on its own.
        completion.run_id = activation.run_id
        delta = self._contexts.capture(self.instance, touched_commands(activation, completion))
        self.activations += 1
        return HostedResult(completion, delta, self._recorder.drain(), records)

    def evict(self, message: str = "evicted by temporay") -> None:
        """Let the engine unwind every coroutine now, on this thread (never leave them to the GC)."""
        activation = wfact.WorkflowActivation(run_id=self.info.run_id, is_replaying=False)
        job = activation.jobs.add()
        job.remove_from_cache.message = message
        job.remove_from_cache.reason = wfact.RemoveFromCache.EvictionReason.LANG_REQUESTED
        try:
            completion = self.instance.activate(activation)
            if completion.HasField("failed"):
                logger.warning(
                    "Evicting run %s of %s reported: %s",
                    self.info.run_id,
                    self.info.workflow_type,
                    completion.failed.failure.message,
                )
        except BaseException:
            logger.exception("Evicting run %s failed", self.info.run_id)

    def failed_completion(self, err: BaseException) -> wfcomp.WorkflowActivationCompletion:
        """A task failure for this run, converted with the run's own converters."""
        return failed_completion(
            self.info.run_id,
            err,
            self._template.failure_converter_class(),
            self._template.payload_converter_factory(),
        )

    @property
    def thread_id(self) -> int | None:
        return self.instance.get_thread_id()
