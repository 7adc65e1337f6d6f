"""The run's implementation of ``temporalio.workflow._Runtime``: what every ``workflow.*`` call
reaches.

User code finds it through the running loop (``_Runtime.current()`` reads an attribute of
``asyncio.get_running_loop()``), so the environment's loop carries it. ``WorkflowContext`` holds
the per-run facts the contract needs and answers the calls about the run itself (info, state,
randomness, patches, metrics, handlers); the rest of ``_Runtime`` comes from its per-area parts:
``outbound.py`` (starting operations), ``timers.py`` (sleep and wait conditions) and
``upserts.py`` (memo and search attributes). The handler tables are ``handler_tables.py``'s, the
running handlers ``handlers.py``'s, the pending operations ``operations/pending.py``'s; payloads
are decoded by ``encoding.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from random import Random
from typing import Any

import temporalio.bridge.proto.common
import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.worker import (
    ExecuteWorkflowInput,
    PatchActivationInput,
    WorkflowInboundInterceptor,
    WorkflowInstanceDetails,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine import builtin_queries
from temporay.runtime.engine.command_contexts import default_contexts
from temporay.runtime.engine.environment import RunEnvironment
from temporay.runtime.engine.handler_tables import HandlerTables
from temporay.runtime.engine.handlers import RunningHandlers, run_signal_handler
from temporay.runtime.engine.interceptors import build_interceptor_chain
from temporay.runtime.engine.loop_swap import running
from temporay.runtime.engine.metrics import ReplaySafeMetricMeter
from temporay.runtime.engine.operations.external_workflows import ExternalWorkflowHandle
from temporay.runtime.engine.operations.pending import PendingOperations
from temporay.runtime.engine.outbound import OutboundCalls
from temporay.runtime.engine.timers import TimersAndConditions
from temporay.runtime.engine.upserts import MemoAndSearchAttributes
from temporay.runtime.run_info import RunDetails


class WorkflowContext(OutboundCalls, TimersAndConditions, MemoAndSearchAttributes):
    """Serves the ``temporalio.workflow`` API for one run."""

    # Slots: a cached run's state is mostly these fields, and a worker caches many runs.
    __slots__ = (
        "_random",
        "context_free_failure_converter",
        "context_free_payload_converter",
        "continue_as_new_suggested",
        "current_details",
        "current_seed",
        "default_flags",
        "defn",
        "deployment_version",
        "disable_eager_activity_execution",
        "dynamic_failure_exception_types",
        "env",
        "extern_functions",
        "failure_converter",
        "handlers",
        "history_length",
        "history_size",
        "inbound",
        "info",
        "interceptor_classes",
        "last_completion_result",
        "last_failure",
        "metric_meter",
        "object",
        "outbound",
        "patch_activation_callback",
        "patches_memoized",
        "patches_notified",
        "payload_converter",
        "pending",
        "run_serialization_context",
        "run_store_context",
        "running_handlers",
        "seed_callbacks",
        "target_version_changed",
        "untyped_memo",
        "versioning_behavior",
        "worker_level_failure_exception_types",
        "workflow_input",
    )

    def __init__(self, env: RunEnvironment, det: WorkflowInstanceDetails) -> None:
        """Everything of a run but which run it is (``bind``): ``det``'s run fields (``info``,
        ``randomness_seed``, ``last_completion_result``, ``last_failure``) are not read, so a
        host can make this before the run arrives."""
        super().__init__()
        self.env = env
        self.defn = det.defn
        self.context_free_payload_converter = det.payload_converter_factory()
        self.context_free_failure_converter = det.failure_converter_class()
        self.extern_functions = det.extern_functions
        self.disable_eager_activity_execution = det.disable_eager_activity_execution
        self.worker_level_failure_exception_types = det.worker_level_failure_exception_types
        self.patch_activation_callback = det.patch_activation_callback
        self.default_flags = det.default_workflow_logic_flags
        self.interceptor_classes = det.interceptor_classes

        self.workflow_input: ExecuteWorkflowInput | None = None
        self.object: Any = None
        self.deployment_version: temporalio.bridge.proto.common.WorkerDeploymentVersion | None = (
            None
        )
        self.history_length = 0
        self.history_size = 0
        self.continue_as_new_suggested = False
        self.target_version_changed = False
        self.untyped_memo: MutableMapping[str, Any] | None = None
        self.seed_callbacks: list[Callable[[int], None]] = []
        self.patches_notified: set[str] = set()
        self.patches_memoized: dict[str, bool] = {}
        self.metric_meter: ReplaySafeMetricMeter | None = None
        self.current_details = ""
        self.versioning_behavior: temporalio.common.VersioningBehavior | None = None
        self.dynamic_failure_exception_types: Sequence[type[BaseException]] | None = None

        self.handlers = HandlerTables(self.defn, builtin_queries.DEFINITIONS)
        self.running_handlers = RunningHandlers()
        self.pending = PendingOperations()
        temporalio.workflow._Runtime.set_on_loop(env, self)
        self.inbound: WorkflowInboundInterceptor
        self.outbound: WorkflowOutboundInterceptor
        if not self.interceptor_classes:
            # Only our own roots, which ask nothing of the run: made now, not on its arrival.
            self._build_interceptors()

    def bind(self, run: RunDetails) -> None:
        """Make this ``run``'s context: what its first activation says, and the interceptors
        (whose ``init`` may ask for ``workflow.info()``)."""
        info = self.info = run.info
        # The run's own contexts depend only on its identity, which never changes: made once,
        # they also answer the Worker's and the host's context questions (contexts are frozen).
        # The run itself is the default store target, activities included: they live and die
        # with it.
        self.run_serialization_context, self.run_store_context = default_contexts(info)
        self.payload_converter = self.payload_converter_with_context(self.run_serialization_context)
        self.failure_converter = self.failure_converter_with_context(self.run_serialization_context)
        self.last_completion_result = run.last_completion_result
        self.last_failure = run.last_failure
        self._random: Random | None = None  # made on first use (most runs never ask)
        self.current_seed = run.randomness_seed
        if self.interceptor_classes:
            self._build_interceptors()

    @property
    def random(self) -> Random:
        """The run's ``workflow.random()``, seeded with its current seed."""
        rng = self._random
        if rng is None:
            rng = self._random = Random(self.current_seed)
        return rng

    def _build_interceptors(self) -> None:
        # Interceptors may call workflow.info() in init(): make our loop, carrying this run,
        # the thread's running loop meanwhile (the SDK borrows the caller's running loop).
        with running(self.env):
            self.inbound, self.outbound = build_interceptor_chain(self, self.interceptor_classes)

    # --- converters -----------------------------------------------------------------------

    def payload_converter_with_context(
        self, context: temporalio.converter.SerializationContext
    ) -> temporalio.converter.PayloadConverter:
        converter = self.context_free_payload_converter
        if isinstance(converter, temporalio.converter.WithSerializationContext):
            converter = converter.with_context(context)
        return converter

    def failure_converter_with_context(
        self, context: temporalio.converter.SerializationContext
    ) -> temporalio.converter.FailureConverter:
        converter = self.context_free_failure_converter
        if isinstance(converter, temporalio.converter.WithSerializationContext):
            converter = converter.with_context(context)
        return converter

    def set_workflow_failure(self, err: BaseException) -> None:
        """Fail the workflow (a FailWorkflowExecution command) with ``err``."""
        failure = self.env.add_command().fail_workflow_execution.failure
        failure.SetInParent()
        try:
            self.failure_converter.to_failure(err, self.payload_converter, failure)
        except Exception as inner:
            raise ValueError("Failed converting workflow exception") from inner

    # --- _Runtime: info and state ---------------------------------------------------------------

    def workflow_all_handlers_finished(self) -> bool:
        return self.running_handlers.all_finished()

    def workflow_cancellation_reason(self) -> str | None:
        return self.env.cancel_reason

    def workflow_extern_functions(self) -> Mapping[str, Callable[..., Any]]:
        return self.extern_functions

    def workflow_get_current_build_id(self) -> str:
        if not self.deployment_version:
            return ""
        return self.deployment_version.build_id

    def workflow_get_current_deployment_version(
        self,
    ) -> temporalio.common.WorkerDeploymentVersion | None:
        if not self.deployment_version:
            return None
        return temporalio.common.WorkerDeploymentVersion(
            build_id=self.deployment_version.build_id,
            deployment_name=self.deployment_version.deployment_name,
        )

    def workflow_get_current_history_length(self) -> int:
        return self.history_length

    def workflow_get_current_history_size(self) -> int:
        return self.history_size

    def workflow_info(self) -> temporalio.workflow.Info:
        try:
            outbound = self.outbound
        except AttributeError:
            # Called by an interceptor's init() before the chain exists: the SDK's instance
            # fails the same way (and so the workflow task).
            raise AttributeError(
                "'_WorkflowInstanceImpl' object has no attribute '_outbound'"
            ) from None
        return outbound.info()

    def workflow_instance(self) -> Any:
        return self.object

    def workflow_is_continue_as_new_suggested(self) -> bool:
        return self.continue_as_new_suggested

    def workflow_is_target_worker_deployment_version_changed(self) -> bool:
        return self.target_version_changed

    def workflow_is_replaying(self) -> bool:
        return self.env.is_replaying

    def workflow_is_replaying_history_events(self) -> bool:
        return self.env.is_replaying and not self.env.in_query_or_validator

    def workflow_is_read_only(self) -> bool:
        return self.env.read_only

    def workflow_payload_converter(self) -> temporalio.converter.PayloadConverter:
        return self.payload_converter

    def workflow_time_ns(self) -> int:
        return self.env.time_ns

    def workflow_get_current_details(self) -> str:
        return self.current_details

    def workflow_set_current_details(self, details: str) -> None:
        self.env.assert_not_read_only("set current details")
        self.current_details = details

    def workflow_is_failure_exception(self, err: BaseException) -> bool:
        types = self.defn.failure_exception_types
        if self.dynamic_failure_exception_types is not None:
            types = self.dynamic_failure_exception_types
        return (
            isinstance(err, (temporalio.exceptions.FailureError, TimeoutError))
            or any(isinstance(err, typ) for typ in types)
            or any(isinstance(err, typ) for typ in self.worker_level_failure_exception_types)
        )

    def workflow_has_last_completion_result(self) -> bool:
        return len(self.last_completion_result.payloads) > 0

    def workflow_last_completion_result(self, type_hint: type | None) -> Any | None:
        payloads = self.last_completion_result.payloads
        if len(payloads) == 0:
            return None
        if len(payloads) > 1:
            warnings.warn(
                f"Expected single last completion result, got {len(payloads)}", stacklevel=2
            )
            return None
        if type_hint is None:
            return self.payload_converter.from_payload(payloads[0])
        return self.payload_converter.from_payload(payloads[0], type_hint)

    def workflow_last_failure(self) -> BaseException | None:
        if self.last_failure:
            return self.failure_converter.from_failure(self.last_failure, self.payload_converter)
        return None

    # --- randomness -------------------------------------------------------------------------

    def workflow_random(self) -> Random:
        self.env.assert_not_read_only("random")
        return self.random

    def workflow_random_seed(self) -> int:
        return self.current_seed

    def workflow_register_random_seed_callback(self, callback: Callable[[int], None]) -> None:
        self.env.assert_not_read_only("register random seed callback")
        self.seed_callbacks.append(callback)

    def reseed(self, seed: int) -> None:
        """An UpdateRandomSeed job (after a reset): new stream, callbacks told, errors ignored."""
        self._random = None  # the next use starts the new seed's stream
        self.current_seed = seed
        for callback in self.seed_callbacks:
            try:
                callback(seed)
            except Exception:
                pass

    # --- metrics ---------------------------------------------------------------------------

    def workflow_metric_meter(self) -> temporalio.common.MetricMeter:
        if not self.metric_meter:
            meter = self.extern_functions["__temporal_get_metric_meter"]()
            meter = meter.with_additional_attributes(
                {
                    "namespace": self.info.namespace,
                    "task_queue": self.info.task_queue,
                    "workflow_type": self.info.workflow_type,
                }
            )
            self.metric_meter = ReplaySafeMetricMeter(meter)
        return self.metric_meter

    # --- patches -----------------------------------------------------------------------------

    def workflow_patch(
        self,
        id: str,
        *,
        deprecated: bool,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> bool:
        env = self.env
        env.assert_not_read_only("patch")
        # Memoized per run: the first answer holds for the rest of the run, even a False seen
        # during replay after the run goes live.
        use_patch = self.patches_memoized.get(id)
        if use_patch is not None:
            return use_patch
        if deprecated or env.is_replaying or id in self.patches_notified:
            # History decides: while replaying, only a marker announced by core counts.
            use_patch = not env.is_replaying or id in self.patches_notified
        elif self.patch_activation_callback is not None:
            with env.read_only_scope(in_query_or_validator=False):
                use_patch = self.patch_activation_callback(
                    PatchActivationInput(workflow_info=self.info, patch_id=id)
                )
            if type(use_patch) is not bool:
                raise TypeError("Patch activation callback must return true or false")
        else:
            use_patch = True
        self.patches_memoized[id] = use_patch
        if use_patch:
            markers = _capture_event_group_markers(event_groups)
            command = env.add_command()
            command.event_group_markers.extend(markers)
            command.set_patch_marker.patch_id = id
            command.set_patch_marker.deprecated = deprecated
        return use_patch

    # --- handlers ----------------------------------------------------------------------------

    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.query_handler(name, self.object)

    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.signal_handler(name, self.object)

    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.update_handler(name, self.object)

    def workflow_get_update_validator(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.update_validator(name, self.object)

    def workflow_set_query_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.env.assert_not_read_only("set query handler")
        self.handlers.set_query_handler(name, handler)

    def workflow_set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.env.assert_not_read_only("set signal handler")
        defn = self.handlers.set_signal_handler(name, handler)
        if defn is None:
            return
        # Deliver the signals that arrived before a handler existed: each runs in its own task;
        # one whose input cannot be decoded is dropped with an error log, as the SDK does.
        for job in self.handlers.take_buffered_signals(name):
            run_signal_handler(self, defn, job)

    def workflow_set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None:
        self.env.assert_not_read_only("set update handler")
        self.handlers.set_update_handler(name, handler, validator)

    # --- other workflows ---------------------------------------------------------------------

    def workflow_get_external_workflow_handle(
        self, id: str, *, run_id: str | None
    ) -> temporalio.workflow.ExternalWorkflowHandle[Any]:
        return ExternalWorkflowHandle(self, id, run_id, self.pending.external_cancels)
