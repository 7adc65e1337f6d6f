"""The run's implementation of ``temporalio.workflow._Runtime``: what every ``workflow.*`` call
reaches.

User code finds it through the running loop (``_Runtime.current()`` reads an attribute of
``asyncio.get_running_loop()``), so the environment's loop carries it. Besides the abstract
methods it holds the per-run facts the rest of the contract needs: handler tables, buffered
signals, in-progress handlers (``all_handlers_finished`` and the unfinished-handler warnings),
patch memoization, the randomness seed and its callbacks, memo and search attributes (updated in
``info`` in place, as the SDK does), the dynamic-config outcome, and the interceptor chain.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from random import Random
from typing import Any, NoReturn, cast

import nexusrpc
import temporalio.activity
import temporalio.api.common.v1
import temporalio.api.failure.v1
import temporalio.api.sdk.v1
import temporalio.bridge.proto.common
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.nexus.system
import temporalio.workflow
from temporalio.nexus.system.workflow_service._system_nexus_interceptor import (
    _start_system_nexus_operation,
)
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    PatchActivationInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    StartNexusOperationInput,
    WorkflowInboundInterceptor,
    WorkflowInstanceDetails,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine import builtin_queries
from temporay.runtime.engine.command_contexts import default_contexts
from temporay.runtime.engine.environment import RunEnvironment, TimerOptions, timer_options
from temporay.runtime.engine.handles import ExternalWorkflowHandle
from temporay.runtime.engine.interceptors import build_interceptor_chain
from temporay.runtime.engine.metrics import ReplaySafeMetricMeter
from temporay.runtime.run_info import RunDetails

logger = logging.getLogger("temporay.runtime")


@dataclass
class HandlerExecution:
    """A signal or update handler that has started and not yet finished."""

    name: str
    unfinished_policy: temporalio.workflow.HandlerUnfinishedPolicy
    id: str | None = None


class WorkflowContext(temporalio.workflow._Runtime):
    """Serves the ``temporalio.workflow`` API for one run."""

    # Slots: a cached run's state is mostly these fields, and a worker caches many runs.
    __slots__ = (
        "_random",
        "buffered_signals",
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
        "handled_signals_seq",
        "history_length",
        "history_size",
        "in_progress_signals",
        "in_progress_updates",
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
        "queries",
        "run_serialization_context",
        "run_store_context",
        "seed_callbacks",
        "signals",
        "target_version_changed",
        "untyped_memo",
        "updates",
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

        # Handlers can be added and removed while the workflow runs.
        self.signals = dict(self.defn.signals)
        # The built-in queries are registered here (not answered by the activator) so that they
        # show up in the list of known queries when a query is not found, and can be
        # overridden, as with the SDK.
        self.queries = {**self.defn.queries, **builtin_queries.DEFINITIONS}
        self.updates = dict(self.defn.updates)
        self.buffered_signals: dict[str, list[wfact.SignalWorkflow]] = {}
        self.handled_signals_seq = 0
        self.in_progress_signals: dict[int, HandlerExecution] = {}
        self.in_progress_updates: dict[str, HandlerExecution] = {}
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
        previous = asyncio._get_running_loop()
        asyncio._set_running_loop(self.env)
        try:
            self.inbound, self.outbound = build_interceptor_chain(self, self.interceptor_classes)
        finally:
            asyncio._set_running_loop(previous)

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

    def convert_payloads(
        self,
        payloads: Sequence[temporalio.api.common.v1.Payload],
        types: list[type] | None,
        converter: temporalio.converter.PayloadConverter,
    ) -> list[Any]:
        """Decode payloads; a decoding error fails the task unless it is a failure type."""
        if not payloads:
            return []
        if types and len(types) != len(payloads):
            types = None
        try:
            return converter.from_payloads(payloads, type_hints=types)
        except temporalio.exceptions.FailureError:
            raise
        except Exception as err:
            if self.workflow_is_failure_exception(err):
                raise
            raise RuntimeError("Failed decoding arguments") from err

    def handler_args(
        self,
        job_name: str,
        job_input: Sequence[temporalio.api.common.v1.Payload],
        defn_name: str | None,
        defn_arg_types: list[type] | None,
        defn_dynamic_vararg: bool,
    ) -> list[Any]:
        """Arguments for a signal/query/update handler (dynamic handlers get name + values)."""
        converter = self.payload_converter
        if not defn_name and defn_dynamic_vararg:
            arg_types = defn_arg_types[1:] if defn_arg_types else None
            return [job_name, *self.convert_payloads(job_input, arg_types, converter)]
        if not defn_name:
            return [
                job_name,
                self.convert_payloads(
                    job_input, [temporalio.common.RawValue] * len(job_input), converter
                ),
            ]
        return self.convert_payloads(job_input, defn_arg_types, converter)

    # --- workflow object and lifecycle ----------------------------------------------------------

    def ensure_object(self) -> None:
        """Instantiate the workflow class on the first run of the loop (``__init__`` may use the
        workflow API, and ``@workflow.init`` receives the arguments)."""
        # Truthiness, not identity, exactly as the SDK checks it.
        if not self.object and not self.env.deleting:
            self.object = self._instantiate()

    def _instantiate(self) -> Any:
        if not self.workflow_input:
            raise RuntimeError("Expected workflow input. This is a temporay bug.")
        cls = self.defn.cls
        if hasattr(getattr(cls, "__init__"), "__temporal_workflow_init"):
            obj = cls(*self.workflow_input.args)
        else:
            obj = cls()
        if self.defn.versioning_behavior:
            self.versioning_behavior = self.defn.versioning_behavior
        if self.defn.name is None and self.defn.dynamic_config_fn is not None:
            config = None
            try:
                with self.env.read_only_scope(in_query_or_validator=False):
                    config = self.defn.dynamic_config_fn(obj)
            except Exception as err:
                logger.exception(
                    f"Failed to run dynamic config function in workflow {self.info.workflow_type}"
                )
                self.env.activation_error = err
                raise
            if config:
                if config.failure_exception_types is not None:
                    self.dynamic_failure_exception_types = config.failure_exception_types
                if config.versioning_behavior != temporalio.common.VersioningBehavior.UNSPECIFIED:
                    self.versioning_behavior = config.versioning_behavior
        return obj

    def make_workflow_input(self, job: wfact.InitializeWorkflow) -> ExecuteWorkflowInput:
        arg_types = self.defn.arg_types
        if not self.defn.name:
            # A dynamic workflow receives the raw values, as one sequence argument.
            arg_types = [temporalio.common.RawValue] * len(job.arguments)
        args: list[Any] = self.convert_payloads(job.arguments, arg_types, self.payload_converter)
        if not self.defn.name:
            args = [args]
        return ExecuteWorkflowInput(
            type=self.defn.cls,
            run_fn=self.defn.run_fn,
            args=args,
            headers=job.headers,
        )

    def set_workflow_failure(self, err: BaseException) -> None:
        """Fail the workflow (a FailWorkflowExecution command) with ``err``."""
        failure = self.env.add_command().fail_workflow_execution.failure
        failure.SetInParent()
        try:
            self.failure_converter.to_failure(err, self.payload_converter, failure)
        except Exception as inner:
            raise ValueError("Failed converting workflow exception") from inner

    def warn_if_unfinished_handlers(self) -> None:
        if not self.in_progress_updates and not self.in_progress_signals:
            return  # the usual case, at every workflow completion

        def warnable(executions: Iterable[HandlerExecution]) -> list[HandlerExecution]:
            return [
                ex
                for ex in executions
                if ex.unfinished_policy
                == temporalio.workflow.HandlerUnfinishedPolicy.WARN_AND_ABANDON
            ]

        updates = warnable(self.in_progress_updates.values())
        if updates:
            warnings.warn(
                temporalio.workflow.UnfinishedUpdateHandlersWarning(
                    _unfinished_updates_message(updates)
                ),
                stacklevel=2,
            )
        signals = warnable(self.in_progress_signals.values())
        if signals:
            warnings.warn(
                temporalio.workflow.UnfinishedSignalHandlersWarning(
                    _unfinished_signals_message(signals)
                ),
                stacklevel=2,
            )

    # --- _Runtime: info and state ---------------------------------------------------------------

    def workflow_all_handlers_finished(self) -> bool:
        return not self.in_progress_updates and not self.in_progress_signals

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

    # --- memo and search attributes --------------------------------------------------------------

    def workflow_memo(self) -> Mapping[str, Any]:
        if self.untyped_memo is None:
            self.untyped_memo = {
                key: self.payload_converter.from_payload(value)
                for key, value in self.info.raw_memo.items()
            }
        return self.untyped_memo

    def workflow_memo_value(self, key: str, default: Any, *, type_hint: type | None) -> Any:
        payload = self.info.raw_memo.get(key)
        if not payload:
            if default is temporalio.common._arg_unset:
                raise KeyError(f"Memo does not have a value for key {key}")
            return default
        return self.payload_converter.from_payload(payload, type_hint)  # type: ignore[arg-type]

    def workflow_upsert_memo(
        self,
        updates: Mapping[str, Any],
        *,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        # Convert before adding the command: a conversion error must leave no partial command.
        upserts: dict[str, temporalio.api.common.v1.Payload] = {}
        removals: list[str] = []
        for key, value in updates.items():
            if value is None:
                # Removals of absent keys still go to history, as the SDK sends them.
                removals.append(key)
            else:
                upserts[key] = self.payload_converter.to_payload(value)
        if not upserts and not removals:
            return
        markers = _capture_event_group_markers(event_groups)
        command = self.env.add_command()
        command.event_group_markers.extend(markers)
        fields = command.modify_workflow_properties.upserted_memo.fields
        raw_memo = cast(MutableMapping[str, temporalio.api.common.v1.Payload], self.info.raw_memo)
        for key, payload in upserts.items():
            fields[key].CopyFrom(payload)
            raw_memo[key] = payload
        if removals:
            null = self.payload_converter.to_payload(None)
            for key in removals:
                fields[key].CopyFrom(null)
                raw_memo.pop(key, None)
        if self.untyped_memo is not None:
            for key, payload in upserts.items():
                self.untyped_memo[key] = self.payload_converter.from_payload(payload)
            for key in removals:
                self.untyped_memo.pop(key, None)

    def workflow_upsert_search_attributes(
        self,
        attributes: temporalio.common.SearchAttributes
        | Sequence[temporalio.common.SearchAttributeUpdate],
        *,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        markers = _capture_event_group_markers(event_groups)
        command = self.env.add_command()
        command.event_group_markers.extend(markers)
        fields = command.upsert_workflow_search_attributes.search_attributes.indexed_fields
        untyped = cast(
            MutableMapping[str, temporalio.common.SearchAttributeValues],
            self.info.search_attributes,
        )
        typed = cast(
            list[temporalio.common.SearchAttributePair],
            self.info.typed_search_attributes.search_attributes,
        )

        def index_of(name: str) -> int | None:
            return next((i for i, pair in enumerate(typed) if pair.key.name == name), None)

        if isinstance(attributes, Mapping):
            # Deprecated untyped form: values are kept exactly as given (an empty list stays an
            # empty list, as on the server); typed view updated on a best-effort guess.
            untyped.update(attributes)
            for name, values in attributes.items():
                fields[name].CopyFrom(temporalio.converter.encode_search_attribute_values(values))
                index = index_of(name)
                if not values:
                    if index is not None:
                        del typed[index]
                    continue
                key = temporalio.common.SearchAttributeKey._guess_from_untyped_values(name, values)
                if not key:
                    continue
                value: Any = values
                if (
                    key.indexed_value_type
                    != temporalio.common.SearchAttributeIndexedValueType.KEYWORD_LIST
                ):
                    if len(values) != 1:
                        continue
                    value = values[0]
                pair = temporalio.common.SearchAttributePair(key, value)
                if index is None:
                    typed.append(pair)
                else:
                    typed[index] = pair
            return
        for update in attributes:
            name = update.key.name
            fields[name].CopyFrom(
                temporalio.converter.encode_typed_search_attribute_value(update.key, update.value)
            )
            index = index_of(name)
            if update.value is None:
                if index is not None:
                    del typed[index]
                untyped[name] = cast(list[str], [])
                continue
            pair = temporalio.common.SearchAttributePair(update.key, update.value)
            if index is None:
                typed.append(pair)
            else:
                typed[index] = pair
            untyped[name] = (
                list(update.value)
                if update.key.indexed_value_type
                == temporalio.common.SearchAttributeIndexedValueType.KEYWORD_LIST
                else [update.value]
            )

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

    def _bound(self, defn: Any) -> Callable[..., Any] | None:
        if not defn:
            return None
        return defn.bind_fn(self.object) if defn.is_method else defn.fn

    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self._bound(self.queries.get(name))

    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self._bound(self.signals.get(name))

    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self._bound(self.updates.get(name))

    def workflow_get_update_validator(self, name: str | None) -> Callable[..., Any] | None:
        defn = self.updates.get(name) or self.updates.get(None)
        if not defn or not defn.validator:
            return None
        return defn.bind_validator(self.object) if defn.is_method else defn.validator

    def workflow_set_query_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.env.assert_not_read_only("set query handler")
        if not handler:
            self.queries.pop(name, None)
            return
        if inspect.iscoroutinefunction(handler):
            warnings.warn(
                "Queries as async def functions are deprecated", DeprecationWarning, stacklevel=3
            )
        defn = temporalio.workflow._QueryDefinition(name=name, fn=handler, is_method=False)
        self.queries[name] = defn
        if defn.dynamic_vararg:
            warnings.warn(
                "Dynamic queries with vararg third param is deprecated, use Sequence[RawValue]",
                DeprecationWarning,
                stacklevel=3,
            )

    def workflow_set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.env.assert_not_read_only("set signal handler")
        if not handler:
            self.signals.pop(name, None)
            return
        defn = temporalio.workflow._SignalDefinition(name=name, fn=handler, is_method=False)
        self.signals[name] = defn
        if defn.dynamic_vararg:
            warnings.warn(
                "Dynamic signals with vararg third param is deprecated, use Sequence[RawValue]",
                DeprecationWarning,
                stacklevel=3,
            )
        # Deliver the signals that arrived before a handler existed.
        if name:
            for job in self.buffered_signals.pop(name, []):
                self.start_signal_handler(defn, job)
        else:
            for jobs in self.buffered_signals.values():
                for job in jobs:
                    self.start_signal_handler(defn, job)
            self.buffered_signals.clear()

    def workflow_set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None:
        self.env.assert_not_read_only("set update handler")
        if not handler:
            self.updates.pop(name, None)
            return
        defn = temporalio.workflow._UpdateDefinition(name=name, fn=handler, is_method=False)
        if validator is not None:
            defn.set_validator(validator)
        self.updates[name] = defn
        if defn.dynamic_vararg:
            raise RuntimeError(
                "Dynamic updates do not support a vararg third param, use Sequence[RawValue]"
            )

    def start_signal_handler(
        self, defn: temporalio.workflow._SignalDefinition, job: wfact.SignalWorkflow
    ) -> None:
        """Run a signal handler in its own task; a signal whose input cannot be decoded is
        dropped with an error log, as the SDK does."""
        # Imported here: the activator imports this module.
        from temporay.runtime.engine.activator import run_signal_handler

        run_signal_handler(self, defn, job)

    # --- timers and conditions ---------------------------------------------------------------

    async def workflow_sleep(
        self,
        duration: float,
        *,
        summary: str | None = None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        user_metadata = (
            temporalio.api.sdk.v1.UserMetadata(summary=self.payload_converter.to_payload(summary))
            if summary
            else None
        )
        markers = _capture_event_group_markers(event_groups)
        fut = self.env.create_future()
        timer = self.env.start_timer(
            duration,
            TimerOptions(user_metadata=user_metadata, event_group_markers=markers),
            lambda: fut.set_result(None) if not fut.done() else None,
        )
        fut.add_done_callback(lambda f: timer.cancel() if f.cancelled() else None)
        await fut

    async def workflow_wait_condition(
        self,
        fn: Callable[[], bool],
        *,
        timeout: float | None = None,
        timeout_summary: str | None = None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        env = self.env
        env.assert_not_read_only("wait condition")
        cancel_requested_before = env.cancel_reason is not None

        # wait_for may prefer a ready result or timeout over a task cancellation that became
        # ready in the same loop turn; in single-batch mode a newly arrived workflow
        # cancellation wins, so workflows can catch it and keep going.
        def cancellation_arrived() -> bool:
            return (
                env.single_batch and not cancel_requested_before and env.cancel_reason is not None
            )

        fut = env.create_future()
        env.conditions.append((fn, fut))
        user_metadata = (
            temporalio.api.sdk.v1.UserMetadata(
                summary=self.payload_converter.to_payload(timeout_summary)
            )
            if timeout_summary
            else None
        )
        markers = _capture_event_group_markers(event_groups)
        ctxvars = contextvars.copy_context()

        async def in_context() -> None:
            timer_options.set(
                TimerOptions(user_metadata=user_metadata, event_group_markers=markers)
            )
            await asyncio.wait_for(fut, timeout)

        try:
            await ctxvars.run(in_context)
        except TimeoutError:
            if cancellation_arrived():
                raise asyncio.CancelledError()  # noqa: B904 (as the SDK raises it)
            raise
        if cancellation_arrived():
            raise asyncio.CancelledError()

    # --- outbound operations ----------------------------------------------------------------

    def workflow_continue_as_new(
        self,
        *args: Any,
        workflow: Callable[..., Any] | str | None,
        task_queue: str | None,
        run_timeout: timedelta | None,
        task_timeout: timedelta | None,
        backoff_start_interval: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        memo: Mapping[str, Any] | None,
        search_attributes: temporalio.common.SearchAttributes
        | temporalio.common.TypedSearchAttributes
        | None,
        versioning_intent: temporalio.workflow.VersioningIntent | None,
        initial_versioning_behavior: temporalio.workflow.ContinueAsNewVersioningBehavior | None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> NoReturn:
        self.env.assert_not_read_only("continue as new")
        name: str | None = None
        arg_types: list[type] | None = None
        if isinstance(workflow, str):
            name = workflow
        elif callable(workflow):
            defn = temporalio.workflow._Definition.must_from_run_fn(workflow)  # type: ignore[arg-type]
            name = defn.name
            arg_types = defn.arg_types
        elif workflow is not None:
            raise TypeError("Workflow must be None, a string, or callable")
        self.outbound.continue_as_new(
            ContinueAsNewInput(
                workflow=name,
                args=args,
                task_queue=task_queue,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                backoff_start_interval=backoff_start_interval,
                retry_policy=retry_policy,
                memo=memo,
                search_attributes=search_attributes,
                headers={},
                arg_types=arg_types,
                versioning_intent=versioning_intent,
                initial_versioning_behavior=initial_versioning_behavior,
                event_groups=event_groups,
            )
        )

    def workflow_get_external_workflow_handle(
        self, id: str, *, run_id: str | None
    ) -> temporalio.workflow.ExternalWorkflowHandle[Any]:
        return ExternalWorkflowHandle(self, id, run_id)

    def workflow_start_activity(
        self,
        activity: Any,
        *args: Any,
        task_queue: str | None,
        result_type: type | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        heartbeat_timeout: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        cancellation_type: temporalio.workflow.ActivityCancellationType,
        activity_id: str | None,
        versioning_intent: temporalio.workflow.VersioningIntent | None,
        summary: str | None = None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
        priority: temporalio.common.Priority = temporalio.common.Priority.default,
    ) -> temporalio.workflow.ActivityHandle[Any]:
        self.env.assert_not_read_only("start activity")
        name, arg_types, ret_type = _activity_name_and_types(activity, result_type)
        return self.outbound.start_activity(
            StartActivityInput(
                activity=name,
                args=args,
                activity_id=activity_id,
                task_queue=task_queue,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                heartbeat_timeout=heartbeat_timeout,
                retry_policy=retry_policy,
                cancellation_type=cancellation_type,
                headers={},
                disable_eager_execution=self.disable_eager_activity_execution,
                arg_types=arg_types,
                ret_type=ret_type,
                versioning_intent=versioning_intent,
                summary=summary,
                event_groups=event_groups,
                priority=priority,
            )
        )

    def workflow_start_local_activity(
        self,
        activity: Any,
        *args: Any,
        result_type: type | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        local_retry_threshold: timedelta | None,
        cancellation_type: temporalio.workflow.ActivityCancellationType,
        activity_id: str | None,
        summary: str | None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> temporalio.workflow.ActivityHandle[Any]:
        # No read-only check here (the SDK has none); scheduling the task refuses instead.
        name, arg_types, ret_type = _activity_name_and_types(activity, result_type)
        self.extern_functions["__temporal_assert_local_activity_valid"](name)
        return self.outbound.start_local_activity(
            StartLocalActivityInput(
                activity=name,
                args=args,
                activity_id=activity_id,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                retry_policy=retry_policy,
                local_retry_threshold=local_retry_threshold,
                cancellation_type=cancellation_type,
                summary=summary,
                event_groups=event_groups,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
            )
        )

    async def workflow_start_child_workflow(
        self,
        workflow: Any,
        *args: Any,
        id: str,
        task_queue: str | None,
        result_type: type | None,
        cancellation_type: temporalio.workflow.ChildWorkflowCancellationType,
        parent_close_policy: temporalio.workflow.ParentClosePolicy,
        execution_timeout: timedelta | None,
        run_timeout: timedelta | None,
        task_timeout: timedelta | None,
        id_reuse_policy: temporalio.common.WorkflowIDReusePolicy,
        retry_policy: temporalio.common.RetryPolicy | None,
        cron_schedule: str,
        memo: Mapping[str, Any] | None,
        search_attributes: temporalio.common.SearchAttributes
        | temporalio.common.TypedSearchAttributes
        | None,
        versioning_intent: temporalio.workflow.VersioningIntent | None,
        static_summary: str | None = None,
        static_details: str | None = None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
        priority: temporalio.common.Priority = temporalio.common.Priority.default,
        versioning_override: temporalio.common.VersioningOverride | None = None,
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        name: str
        arg_types: list[type] | None = None
        ret_type = result_type
        if isinstance(workflow, str):
            name = workflow
        elif callable(workflow):
            defn = temporalio.workflow._Definition.must_from_run_fn(workflow)
            if not defn.name:
                raise TypeError("Cannot invoke dynamic workflow explicitly")
            name = defn.name
            arg_types = defn.arg_types
            ret_type = defn.ret_type
        else:
            raise TypeError("Workflow must be a string or callable")
        return await self.outbound.start_child_workflow(
            StartChildWorkflowInput(
                workflow=name,
                args=args,
                id=id,
                task_queue=task_queue,
                cancellation_type=cancellation_type,
                parent_close_policy=parent_close_policy,
                execution_timeout=execution_timeout,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                id_reuse_policy=id_reuse_policy,
                retry_policy=retry_policy,
                cron_schedule=cron_schedule,
                memo=memo,
                search_attributes=search_attributes,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
                versioning_intent=versioning_intent,
                versioning_override=versioning_override,
                static_summary=static_summary,
                static_details=static_details,
                event_groups=event_groups,
                priority=priority,
            )
        )

    async def workflow_start_nexus_operation(
        self,
        endpoint: str,
        service: str,
        operation: nexusrpc.Operation[Any, Any] | str | Callable[..., Any],
        input: Any,
        output_type: type[Any] | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        cancellation_type: temporalio.workflow.NexusOperationCancellationType,
        headers: Mapping[str, str] | None,
        summary: str | None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> temporalio.workflow.NexusOperationHandle[Any]:
        if temporalio.nexus.system.is_system_endpoint(endpoint):
            # System operations go through the interceptors' typed system hooks.
            return await _start_system_nexus_operation(
                self.outbound,
                StartNexusOperationInput(
                    endpoint=temporalio.nexus.system.TEMPORAL_SYSTEM_ENDPOINT,
                    service=service,
                    operation=operation,
                    input=input,
                    output_type=output_type,
                    schedule_to_close_timeout=schedule_to_close_timeout,
                    schedule_to_start_timeout=schedule_to_start_timeout,
                    start_to_close_timeout=start_to_close_timeout,
                    cancellation_type=cancellation_type,
                    headers=None,
                    summary=summary,
                    event_groups=event_groups,
                ),
            )
        return await self.outbound.start_nexus_operation(
            StartNexusOperationInput(
                endpoint=endpoint,
                service=service,
                operation=operation,
                input=input,
                output_type=output_type,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                cancellation_type=cancellation_type,
                headers=headers,
                summary=summary,
                event_groups=event_groups,
            )
        )


def _activity_name_and_types(
    activity: Any, result_type: type | None
) -> tuple[str, list[type] | None, type | None]:
    if isinstance(activity, str):
        return activity, None, result_type
    if callable(activity):
        defn = temporalio.activity._Definition.must_from_callable(activity)
        if not defn.name:
            raise ValueError("Cannot invoke dynamic activity explicitly")
        return defn.name, defn.arg_types, defn.ret_type
    raise TypeError("Activity must be a string or callable")


def _unfinished_updates_message(executions: list[HandlerExecution]) -> str:
    message = (
        "[TMPRL1102] Workflow finished while update handlers are still running. This may have "
        "interrupted work that the update handler was doing, and the client that sent the update "
        "will receive a 'workflow execution already completed' RPCError instead of the update "
        "result. You can wait for all update and signal handlers to complete by using `await "
        "workflow.wait_condition(lambda: workflow.all_handlers_finished())`. Alternatively, if "
        "both you and the clients sending the update are okay with interrupting running handlers "
        "when the workflow finishes, and causing clients to receive errors, then you can disable "
        "this warning via the update handler decorator: "
        "`@workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)`."
    )
    return (
        f"{message} The following updates were unfinished (and warnings were not disabled for "
        "their handler): " + json.dumps([{"name": ex.name, "id": ex.id} for ex in executions])
    )


def _unfinished_signals_message(executions: list[HandlerExecution]) -> str:
    message = (
        "[TMPRL1102] Workflow finished while signal handlers are still running. This may have "
        "interrupted work that the signal handler was doing. You can wait for all update and "
        "signal handlers to complete by using `await workflow.wait_condition(lambda: "
        "workflow.all_handlers_finished())`. Alternatively, if both you and the clients sending "
        "the signal are okay with interrupting running handlers when the workflow finishes, then "
        "you can disable this warning via the signal handler decorator: "
        "`@workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)`."
    )
    names = Counter(ex.name for ex in executions)
    return (
        f"{message} The following signals were unfinished (and warnings were not disabled for "
        "their handler): "
        + json.dumps([{"name": name, "count": count} for name, count in names.most_common()])
    )
