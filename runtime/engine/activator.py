"""Applies an activation's jobs to a run, in the SDK's order, then collects the commands.

Job sets, each applied and then followed by running the loop until it is idle:
``notify_has_patch``; ``signal_workflow`` + ``do_update``; everything else (including
``initialize_workflow``); ``query_workflow`` (queries never share an activation with other jobs).
With internal flag 2 every job is applied first and the loop runs once. Signal and update handler
tasks are created before the main ``run`` task, so they take their first step before it.

One method per job kind (``apply_<job field>``), as in the TypeScript SDK's activator. Running the
workflow's code and deciding what its outcome means is ``handlers.py``'s; decoding and applying an
operation's resolution is its handle's (``operations/``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
from temporalio.worker import ExecuteWorkflowInput

from temporay.runtime.engine import encoding
from temporay.runtime.engine.builtin_queries import render_stack_trace
from temporay.runtime.engine.context import WorkflowContext
from temporay.runtime.engine.flags import LogicFlag, flag_enabled
from temporay.runtime.engine.handlers import (
    run_query,
    run_signal_handler,
    run_top_level,
    run_update,
)
from temporay.runtime.engine.lifecycle import ensure_object, make_workflow_input

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
            raise RuntimeError(
                f"Eviction processed, but {len(env.tasks)} tasks remain. "
                + f"Stack traces below:\n\n{render_stack_trace(ctx)}"
            )

        if activation_err:
            encoding.task_failure(
                completion, activation_err, ctx.info, ctx.failure_converter, ctx.payload_converter
            )

        if any(map(_is_completion, completion.successful.commands)):
            ctx.running_handlers.warn_if_unfinished()
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
        ctx = self.ctx
        if start_job:
            ctx.workflow_input = make_workflow_input(ctx, start_job)
        run_once = self.env.run_once

        def before() -> None:
            ensure_object(ctx)

        apply = self._apply
        if self.env.single_batch:
            # Every job lands before workflow code runs, so job order cannot hide state that
            # arrived in the same workflow task.
            for job_set in job_sets:
                for kind, job in job_set:
                    apply(kind, job)
            if patches or messages or others or queries:
                run_once(check_conditions=bool(messages or others), jobs=act.jobs, before=before)
            return
        for index, job_set in enumerate(job_sets):
            if not job_set:
                continue
            for kind, job in job_set:
                apply(kind, job)
            # Conditions are not checked after patches (index 0) or queries (index 3).
            run_once(check_conditions=index in (1, 2), jobs=act.jobs, before=before)

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
        signals = ctx.handlers.signals
        defn = signals.get(job.signal_name) or signals.get(None)
        if not defn:
            # Buffered until a handler for it (or a dynamic one) is registered.
            ctx.handlers.buffer_signal(job)
            return
        run_signal_handler(ctx, defn, job)

    def apply_do_update(self, job: wfact.DoUpdate) -> None:
        # Everything, including finding the handler, happens in the task: the handler may be
        # registered by workflow code that runs after this job is applied.
        self.env.create_task(run_update(self.ctx, job), name=f"update: {job.name}")

    def apply_query_workflow(self, job: wfact.QueryWorkflow) -> None:
        self.env.create_task(run_query(self.ctx, job), name=f"query: {job.query_type}")

    # --- resolutions: each handle decodes and applies its own -----------------------------------

    def apply_resolve_activity(self, job: wfact.ResolveActivity) -> None:
        handle = self.ctx.pending.activities.pop(job.seq, None)
        if not handle:
            raise RuntimeError(f"Failed finding activity handle for sequence {job.seq}")
        handle.resolve(job.result)

    def apply_resolve_child_workflow_execution_start(
        self, job: wfact.ResolveChildWorkflowExecutionStart
    ) -> None:
        pending = self.ctx.pending.children
        handle = pending.get(job.seq)
        if not handle:
            raise RuntimeError(f"Failed finding child workflow handle for sequence {job.seq}")
        # Started, it stays pending: the same handle waits for the result.
        if job.HasField("failed") or job.HasField("cancelled"):
            pending.pop(job.seq)
        handle.resolve_start(job)

    def apply_resolve_child_workflow_execution(
        self, job: wfact.ResolveChildWorkflowExecution
    ) -> None:
        handle = self.ctx.pending.children.pop(job.seq, None)
        if not handle:
            raise RuntimeError(f"Failed finding child workflow handle for sequence {job.seq}")
        handle.resolve(job.result)

    def apply_resolve_nexus_operation_start(self, job: wfact.ResolveNexusOperationStart) -> None:
        pending = self.ctx.pending.nexus
        handle = pending.get(job.seq)
        if not handle:
            raise RuntimeError(
                f"Failed to find nexus operation handle for job sequence number {job.seq}"
            )
        # Started, it stays pending for its result (in this same activation if synchronous).
        if job.HasField("failed"):
            pending.pop(job.seq, None)
        handle.resolve_start(job)

    def apply_resolve_nexus_operation(self, job: wfact.ResolveNexusOperation) -> None:
        handle = self.ctx.pending.nexus.pop(job.seq, None)
        if not handle:
            # Already resolved by a cancel-request outcome (WAIT_REQUESTED cancellation): the
            # operation's own completion arrives later and has nobody left to tell.
            return
        handle.resolve(job.result)

    def apply_resolve_signal_external_workflow(
        self, job: wfact.ResolveSignalExternalWorkflow
    ) -> None:
        request = self.ctx.pending.external_signals.pop(job.seq, None)
        if not request:
            raise RuntimeError(f"Failed finding pending external signal for sequence {job.seq}")
        request.resolve(job)

    def apply_resolve_request_cancel_external_workflow(
        self, job: wfact.ResolveRequestCancelExternalWorkflow
    ) -> None:
        request = self.ctx.pending.external_cancels.pop(job.seq, None)
        if not request:
            raise RuntimeError(f"Failed finding pending external cancel for sequence {job.seq}")
        # The awaiting task was cancelled (cancelling this request's future too), but the
        # request went out and core still resolves it.
        if request.abandoned:
            return
        request.resolve(job)


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
