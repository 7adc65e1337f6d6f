"""Applies an activation's jobs to a run, in the SDK's order, then collects the commands.

Job sets, each applied and then followed by running the loop until it is idle:
``notify_has_patch``; ``signal_workflow`` + ``do_update``; everything else (including
``initialize_workflow``); ``query_workflow`` (queries never share an activation with other jobs).
With internal flag 2 every job is applied first and the loop runs once. Signal and update handler
tasks are created before the main ``run`` task, so they take their first step before it.

One method per job kind (``apply_<job field>``), plus the top-level wrappers that decide between a
completion command, a workflow failure, a cancellation and a task failure.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import temporalio.bridge.proto.child_workflow as child_workflow
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.exceptions
import temporalio.nexus.system
import temporalio.workflow
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
)
from temporalio.workflow._event_groups import _inbound_event_group, _inbound_update_event_group

from temporay.runtime.engine import encoding
from temporay.runtime.engine.context import HandlerExecution, WorkflowContext
from temporay.runtime.engine.flags import LogicFlag, flag_enabled
from temporay.runtime.engine.handles import (
    ContinueAsNewRequest,
    activity_serialization_context,
)

logger = logging.getLogger("temporay.runtime")

_JobApplier = Callable[["Activator", Any], None]


class Activator:
    """Drives one run: ``activate`` takes an activation and returns its completion."""

    __slots__ = ("cancel_primary_task_pending", "ctx", "env", "primary_task")

    def __init__(self, ctx: WorkflowContext) -> None:
        self.ctx = ctx
        self.env = ctx.env
        self.primary_task: asyncio.Task[None] | None = None
        self.cancel_primary_task_pending = False

    # --- the activation ------------------------------------------------------------------------

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        ctx, env = self.ctx, self.env
        env.start_activation(act)
        ctx.deployment_version = act.deployment_version_for_current_task
        ctx.history_length = act.history_length
        ctx.history_size = act.history_size_bytes
        ctx.continue_as_new_suggested = act.continue_as_new_suggested
        ctx.target_version_changed = act.target_worker_deployment_version_changed
        env.thread_id = threading.get_ident()
        env.single_batch = flag_enabled(
            env, LogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH, ctx.default_flags
        )
        activation_err: Exception | None = None
        try:
            self._apply_jobs(act)
        except Exception as err:
            # Some activation errors (payload conversion, say) fail the workflow, not the task.
            if ctx.workflow_is_failure_exception(err):
                try:
                    ctx.set_workflow_failure(err)
                except Exception as inner:
                    activation_err = inner
            else:
                activation_err = err
            if env.deleting:
                activation_err = None

        completion = env.completion
        if ctx.versioning_behavior:
            completion.successful.versioning_behavior = ctx.versioning_behavior.value  # type: ignore[assignment]

        # Eviction must leave no task behind: a collected coroutine can wake up on another
        # thread, inside another run. Raising makes the Worker retry the eviction.
        if env.deleting and env.tasks:
            from temporay.runtime.engine.builtin_queries import render_stack_trace

            raise RuntimeError(
                f"Eviction processed, but {len(env.tasks)} tasks remain. "
                + f"Stack traces below:\n\n{render_stack_trace(ctx)}"
            )

        if activation_err:
            encoding.task_failure(
                completion, activation_err, ctx.info, ctx.failure_converter, ctx.payload_converter
            )

        if any(map(_is_completion, completion.successful.commands)):
            ctx.warn_if_unfinished_handlers()
        return completion

    def _apply_jobs(self, act: wfact.WorkflowActivation) -> None:
        # Each job as (kind, message): the kind is looked up once, for sorting and dispatch.
        patches: list[tuple[str, Any]] = []
        messages: list[tuple[str, Any]] = []
        others: list[tuple[str, Any]] = []
        queries: list[tuple[str, Any]] = []
        start_job: wfact.InitializeWorkflow | None = None
        for job in act.jobs:
            kind: str = job.WhichOneof("variant") or ""
            entry = (kind, getattr(job, kind) if kind else None)
            if kind == "notify_has_patch":
                patches.append(entry)
            elif kind == "signal_workflow" or kind == "do_update":
                messages.append(entry)
            elif kind != "query_workflow":
                if kind == "initialize_workflow":
                    start_job = job.initialize_workflow
                others.append(entry)
            else:
                queries.append(entry)
        job_sets = (patches, messages, others, queries)
        # sdk-core guarantees query-only activations; anything else fails the task.
        assert not queries or not (patches or messages or others), (
            "Query jobs must not share an activation with non-query jobs. This is an SDK Core bug."
        )
        if start_job:
            self.ctx.workflow_input = self.ctx.make_workflow_input(start_job)
        run_once = self.env.run_once
        ensure_object = self.ctx.ensure_object
        apply = self._apply
        if self.env.single_batch:
            # Every job lands before workflow code runs, so job order cannot hide state that
            # arrived in the same workflow task.
            for job_set in job_sets:
                for kind, job in job_set:
                    apply(kind, job)
            if patches or messages or others or queries:
                run_once(
                    check_conditions=bool(messages or others), jobs=act.jobs, before=ensure_object
                )
            return
        for index, job_set in enumerate(job_sets):
            if not job_set:
                continue
            for kind, job in job_set:
                apply(kind, job)
            # Conditions are not checked after patches (index 0) or queries (index 3).
            run_once(check_conditions=index in (1, 2), jobs=act.jobs, before=ensure_object)

    def _apply(self, kind: str, job: Any) -> None:
        applier = _APPLIERS.get(kind)
        if applier is None:
            raise RuntimeError(f"Unrecognized job: {kind or None}")
        applier(self, job)

    # --- lifecycle jobs ----------------------------------------------------------------------

    def apply_initialize_workflow(self, _job: wfact.InitializeWorkflow) -> None:
        ctx, env = self.ctx, self.env

        async def run_workflow(input: ExecuteWorkflowInput) -> None:
            try:
                result = await ctx.inbound.execute_workflow(input)
                payload = encoding.single_payload(ctx.payload_converter, result)
                env.add_command().complete_workflow_execution.result.CopyFrom(payload)
            except Exception:
                if env.deleting:
                    return
                raise

        if not ctx.workflow_input:
            raise RuntimeError("Expected workflow input to be set. This is a temporay bug.")
        self.primary_task = env.create_task(
            run_top_level(ctx, run_workflow(ctx.workflow_input)), name="run"
        )
        if self.cancel_primary_task_pending:
            self.cancel_primary_task_pending = False
            env.call_soon(self.primary_task.cancel)

    def apply_cancel_workflow(self, job: wfact.CancelWorkflow) -> None:
        self.env.cancel_reason = job.reason
        if self.primary_task:
            # The primary task may not have started yet; deliver the cancellation on the next
            # loop iteration so the workflow gets a chance to receive it.
            self.env.call_soon(self.primary_task.cancel)
        elif self.env.single_batch:
            # Only initialization creates the primary task: hold the cancellation until then.
            self.cancel_primary_task_pending = True

    def apply_remove_from_cache(self, _job: wfact.RemoveFromCache) -> None:
        env = self.env
        env.deleting = True
        # Eviction counts as replay, so replay-quiet code (logging, metrics) stays quiet.
        env.is_replaying = True
        for task in env.tasks:
            task.cancel()

    def apply_update_random_seed(self, job: wfact.UpdateRandomSeed) -> None:
        self.ctx.reseed(job.randomness_seed)

    def apply_notify_has_patch(self, job: wfact.NotifyHasPatch) -> None:
        self.ctx.patches_notified.add(job.patch_id)

    def apply_fire_timer(self, job: wfact.FireTimer) -> None:
        # An absent timer was cancelled earlier in this activation (by a signal, say).
        self.env.fire_timer(job.seq)

    # --- messages ----------------------------------------------------------------------------

    def apply_signal_workflow(self, job: wfact.SignalWorkflow) -> None:
        ctx = self.ctx
        defn = ctx.signals.get(job.signal_name) or ctx.signals.get(None)
        if not defn:
            # Buffered until a handler for it (or a dynamic one) is registered.
            ctx.buffered_signals.setdefault(job.signal_name, []).append(job)
            return
        run_signal_handler(ctx, defn, job)

    def apply_do_update(self, job: wfact.DoUpdate) -> None:
        # Everything, including finding the handler, happens in the task: the handler may be
        # registered by workflow code that runs after this job is applied.
        self.env.create_task(run_update(self.ctx, job), name=f"update: {job.name}")

    def apply_query_workflow(self, job: wfact.QueryWorkflow) -> None:
        self.env.create_task(run_query(self.ctx, job), name=f"query: {job.query_type}")

    # --- resolutions -------------------------------------------------------------------------

    def apply_resolve_activity(self, job: wfact.ResolveActivity) -> None:
        ctx = self.ctx
        handle = self.env.pending_activities.pop(job.seq, None)
        if not handle:
            raise RuntimeError(f"Failed finding activity handle for sequence {job.seq}")
        context = activity_serialization_context(ctx, handle._input)
        payload_converter = ctx.payload_converter_with_context(context)
        failure_converter = ctx.failure_converter_with_context(context)
        result = job.result
        if result.HasField("completed"):
            value: Any = None
            if result.completed.HasField("result"):
                ret_types = [handle._input.ret_type] if handle._input.ret_type else None
                value = ctx.convert_payloads(
                    [result.completed.result], ret_types, payload_converter
                )[0]
            handle.resolve_success(value)
        elif result.HasField("failed"):
            handle.resolve_failure(
                failure_converter.from_failure(result.failed.failure, payload_converter)
            )
        elif result.HasField("cancelled"):
            handle.resolve_failure(
                failure_converter.from_failure(result.cancelled.failure, payload_converter)
            )
        elif result.HasField("backoff"):
            handle.resolve_backoff(result.backoff)
        else:
            raise RuntimeError("Activity did not have result")

    def apply_resolve_child_workflow_execution_start(
        self, job: wfact.ResolveChildWorkflowExecutionStart
    ) -> None:
        pending = self.env.pending_children
        handle = pending.get(job.seq)
        if not handle:
            raise RuntimeError(f"Failed finding child workflow handle for sequence {job.seq}")
        if job.HasField("succeeded"):
            # Kept pending: the same handle waits for the result.
            handle.resolve_start_success(job.succeeded.run_id)
        elif job.HasField("failed"):
            pending.pop(job.seq)
            cause = job.failed.cause
            causes = child_workflow.StartChildWorkflowExecutionFailedCause
            if cause == causes.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS:
                handle.resolve_failure(
                    temporalio.exceptions.WorkflowAlreadyStartedError(
                        job.failed.workflow_id, job.failed.workflow_type
                    )
                )
            elif (
                cause
                == causes.START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_INVALID_VERSIONING_OVERRIDE
            ):
                handle.resolve_failure(temporalio.exceptions.InvalidVersioningOverrideError())
            else:
                handle.resolve_failure(RuntimeError(f"Unknown child start fail cause: {cause}"))
        elif job.HasField("cancelled"):
            pending.pop(job.seq)
            handle.resolve_failure(
                handle._failure_converter.from_failure(
                    job.cancelled.failure, handle._payload_converter
                )
            )
        else:
            raise RuntimeError("Child workflow start did not have a known status")

    def apply_resolve_child_workflow_execution(
        self, job: wfact.ResolveChildWorkflowExecution
    ) -> None:
        handle = self.env.pending_children.pop(job.seq, None)
        if not handle:
            raise RuntimeError(f"Failed finding child workflow handle for sequence {job.seq}")
        result = job.result
        if result.HasField("completed"):
            value: Any = None
            if result.completed.HasField("result"):
                ret_types = [handle._input.ret_type] if handle._input.ret_type else None
                value = self.ctx.convert_payloads(
                    [result.completed.result], ret_types, handle._payload_converter
                )[0]
            handle.resolve_success(value)
        elif result.HasField("failed"):
            handle.resolve_failure(
                handle._failure_converter.from_failure(
                    result.failed.failure, handle._payload_converter
                )
            )
        elif result.HasField("cancelled"):
            handle.resolve_failure(
                handle._failure_converter.from_failure(
                    result.cancelled.failure, handle._payload_converter
                )
            )
        else:
            raise RuntimeError("Child workflow did not have result")

    def apply_resolve_nexus_operation_start(self, job: wfact.ResolveNexusOperationStart) -> None:
        pending = self.env.pending_nexus
        handle = pending.get(job.seq)
        if not handle:
            raise RuntimeError(
                f"Failed to find nexus operation handle for job sequence number {job.seq}"
            )
        if job.HasField("operation_token"):
            # Started asynchronously: the result comes in a later activation.
            handle.resolve_start_success(job.operation_token)
        elif job.HasField("started_sync"):
            # Completed synchronously: the result is in this same activation.
            handle.resolve_start_success(None)
        elif job.HasField("failed"):
            pending.pop(job.seq, None)
            handle.resolve_failure(
                handle._failure_converter.from_failure(job.failed, handle._payload_converter)
            )
        else:
            raise ValueError(f"Unknown Nexus operation start status: {job}")

    def apply_resolve_nexus_operation(self, job: wfact.ResolveNexusOperation) -> None:
        ctx = self.ctx
        handle = self.env.pending_nexus.pop(job.seq, None)
        if not handle:
            # Already resolved by a cancel-request outcome (WAIT_REQUESTED cancellation): the
            # operation's own completion arrives later and has nobody left to tell.
            return
        result = job.result
        if result.HasField("completed"):
            payload_converter = handle._payload_converter
            input = handle._input
            if temporalio.nexus.system.is_system_endpoint(input.endpoint):
                context = temporalio.nexus.system._get_serialization_context(
                    input.service, input.operation_name, input.input
                )
                if context is not None:
                    payload_converter = temporalio.nexus.system._get_payload_converter(
                        ctx.payload_converter_with_context(context),
                        ctx.failure_converter_with_context(context),
                    )
            [output] = ctx.convert_payloads(
                [result.completed],
                [input.output_type] if input.output_type else None,
                payload_converter,
            )
            handle.resolve_success(output)
            return
        for outcome in ("failed", "cancelled", "timed_out"):
            if result.HasField(outcome):
                handle.resolve_failure(
                    handle._failure_converter.from_failure(
                        getattr(result, outcome), handle._payload_converter
                    )
                )
                return
        raise RuntimeError("Nexus operation did not have a result")

    def apply_resolve_signal_external_workflow(
        self, job: wfact.ResolveSignalExternalWorkflow
    ) -> None:
        pending = self.env.pending_external_signals.pop(job.seq, None)
        if not pending:
            raise RuntimeError(f"Failed finding pending external signal for sequence {job.seq}")
        fut, target = pending
        self._resolve_external(fut, target, job)

    def apply_resolve_request_cancel_external_workflow(
        self, job: wfact.ResolveRequestCancelExternalWorkflow
    ) -> None:
        pending = self.env.pending_external_cancels.pop(job.seq, None)
        if not pending:
            raise RuntimeError(f"Failed finding pending external cancel for sequence {job.seq}")
        fut, target = pending
        # The awaiting task was cancelled (cancelling this future too), but the request went
        # out and core still resolves it.
        if fut.cancelled():
            return
        self._resolve_external(fut, target, job)

    def _resolve_external(
        self,
        fut: asyncio.Future[Any],
        target_workflow_id: str,
        job: wfact.ResolveSignalExternalWorkflow | wfact.ResolveRequestCancelExternalWorkflow,
    ) -> None:
        if job.HasField("failure"):
            context = temporalio.converter.WorkflowSerializationContext(
                namespace=self.ctx.info.namespace, workflow_id=target_workflow_id
            )
            fut.set_exception(
                self.ctx.failure_converter_with_context(context).from_failure(
                    job.failure, self.ctx.payload_converter_with_context(context)
                )
            )
        else:
            fut.set_result(None)


_APPLIERS: dict[str, _JobApplier] = {
    name[len("apply_") :]: fn for name, fn in vars(Activator).items() if name.startswith("apply_")
}


def _is_completion(command: Any) -> bool:
    return (
        command.HasField("complete_workflow_execution")
        or command.HasField("continue_as_new_workflow_execution")
        or command.HasField("fail_workflow_execution")
        or command.HasField("cancel_workflow_execution")
    )


# --- top-level functions (main run and signal handlers) -----------------------------------------


async def run_top_level(ctx: WorkflowContext, coro: Awaitable[None]) -> None:
    """Run the workflow function or a signal handler and decide what its exception means:
    continue-as-new, cancellation, workflow failure, or (anything else) task failure."""
    env = ctx.env
    try:
        await coro
    except ContinueAsNewRequest as err:
        logger.debug("Workflow requested continue as new")
        err.apply_command()
    except (Exception, asyncio.CancelledError) as err:
        if env.deleting:
            return
        logger.debug(f"Workflow raised failure with run ID {ctx.info.run_id}", exc_info=True)
        failure: BaseException = err
        if isinstance(err, asyncio.CancelledError):
            failure = temporalio.exceptions.CancelledError(str(err))
        # Cancellation is a state, not an event: once cancellation was requested, any
        # cancellation error (even from an activity) cancels the workflow.
        if env.cancel_reason is not None and temporalio.exceptions.is_cancelled_exception(failure):
            env.add_command().cancel_workflow_execution.SetInParent()
        elif ctx.workflow_is_failure_exception(failure):
            ctx.set_workflow_failure(failure)
        else:
            env.activation_error = failure  # type: ignore[assignment]


def run_signal_handler(
    ctx: WorkflowContext,
    defn: temporalio.workflow._SignalDefinition,
    job: wfact.SignalWorkflow,
) -> None:
    """Start a signal handler task (a signal whose input cannot be decoded is dropped)."""
    try:
        args = ctx.handler_args(
            job.signal_name, job.input, defn.name, defn.arg_types, defn.dynamic_vararg
        )
    except Exception:
        logger.exception(
            f"Failed deserializing signal input for {job.signal_name}"
            f" on workflow {ctx.info.workflow_type} with ID {ctx.info.workflow_id}"
            f" and run ID {ctx.info.run_id}, dropping the signal",
            extra={"temporal_workflow": ctx.info._logger_details()},
        )
        return
    input = HandleSignalInput(signal=job.signal_name, args=args, headers=job.headers)
    ctx.handled_signals_seq += 1
    handler_id = ctx.handled_signals_seq
    ctx.in_progress_signals[handler_id] = HandlerExecution(job.signal_name, defn.unfinished_policy)

    async def run_signal() -> None:
        with _inbound_event_group(job.originating_event_id).scope():
            await ctx.inbound.handle_signal(input)

    task = ctx.env.create_task(run_top_level(ctx, run_signal()), name=f"signal: {job.signal_name}")
    task.add_done_callback(lambda _task: ctx.in_progress_signals.pop(handler_id, None))


async def run_update(ctx: WorkflowContext, job: wfact.DoUpdate) -> None:
    """Validate, accept, run and answer one update (all inside the update's own task)."""
    env = ctx.env
    temporalio.workflow._set_current_update_info(
        temporalio.workflow.UpdateInfo(id=job.id, name=job.name)
    )
    command: Any = env.add_command()
    command.update_response.protocol_instance_id = job.protocol_instance_id
    past_validation = False
    try:
        defn = ctx.updates.get(job.name) or ctx.updates.get(None)
        if not defn:
            known = sorted([k for k in ctx.updates if k])
            raise RuntimeError(
                f"Update handler for '{job.name}' expected but not found, and there is no "
                f"dynamic handler. known updates: [{' '.join(known)}]"
            )
        ctx.in_progress_updates[job.id] = HandlerExecution(job.name, defn.unfinished_policy, job.id)
        args = ctx.handler_args(job.name, job.input, defn.name, defn.arg_types, defn.dynamic_vararg)
        handler_input = HandleUpdateInput(
            id=job.id, update=job.name, args=args, headers=job.headers
        )
        if job.run_validator and defn.validator is not None:
            with env.read_only_scope(in_query_or_validator=True):
                ctx.inbound.handle_update_validator(handler_input)
                # Decode again: the validator may have mutated the arguments.
                handler_input.args = ctx.handler_args(
                    job.name, job.input, defn.name, defn.arg_types, defn.dynamic_vararg
                )
        past_validation = True
        command.update_response.accepted.SetInParent()
        command = None
        with _inbound_update_event_group(job.id).scope():
            success = await ctx.inbound.handle_update_handler(handler_input)
        payload = encoding.single_payload(ctx.payload_converter, success)
        command = env.add_command()
        command.update_response.protocol_instance_id = job.protocol_instance_id
        command.update_response.completed.CopyFrom(payload)
    except (Exception, asyncio.CancelledError) as err:
        logger.debug(f"Update raised failure with run ID {ctx.info.run_id}", exc_info=True)
        failure: BaseException = err
        if isinstance(err, asyncio.CancelledError):
            failure = temporalio.exceptions.CancelledError(
                f"Cancellation raised within update {err}"
            )
        # A read-only violation in the validator is a bug in the workflow: fail the task.
        if isinstance(failure, temporalio.workflow.ReadOnlyContextError):
            env.activation_error = failure
            return
        # Validation failures always reject; after acceptance only failure types do.
        if not past_validation or ctx.workflow_is_failure_exception(failure):
            if command is None:
                command = env.add_command()
                command.update_response.protocol_instance_id = job.protocol_instance_id
            command.update_response.rejected.SetInParent()
            encoding.failure_into(
                command.update_response.rejected,
                failure,
                ctx.failure_converter,
                ctx.payload_converter,
            )
        else:
            env.activation_error = failure  # type: ignore[assignment]
            return
    except ContinueAsNewRequest:
        # Only the workflow function may continue as new.
        env.activation_error = RuntimeError("Cannot continue as new from an update handler")
        return
    except BaseException:
        if env.deleting:
            return
        raise
    finally:
        ctx.in_progress_updates.pop(job.id, None)


async def run_query(ctx: WorkflowContext, job: wfact.QueryWorkflow) -> None:
    """Answer one query, read-only; any failure becomes a failed query answer."""
    env = ctx.env
    try:
        with env.read_only_scope(in_query_or_validator=True):
            defn = ctx.queries.get(job.query_type) or ctx.queries.get(None)
            if not defn:
                known = sorted([k for k in ctx.queries if k])
                raise RuntimeError(
                    f"Query handler for '{job.query_type}' expected but not found, "
                    f"known queries: [{' '.join(known)}]"
                )
            args = ctx.handler_args(
                job.query_type, job.arguments, defn.name, defn.arg_types, defn.dynamic_vararg
            )
            input = HandleQueryInput(
                id=job.query_id, query=job.query_type, args=args, headers=job.headers
            )
            success = await ctx.inbound.handle_query(input)
            payload = encoding.single_payload(ctx.payload_converter, success)
        command = env.add_command()
        command.respond_to_query.query_id = job.query_id
        command.respond_to_query.succeeded.response.CopyFrom(payload)
    except Exception as err:
        try:
            command = env.add_command()
            command.respond_to_query.query_id = job.query_id
            encoding.failure_into(
                command.respond_to_query.failed, err, ctx.failure_converter, ctx.payload_converter
            )
        except Exception as inner:
            raise ValueError("Failed converting application error") from inner
