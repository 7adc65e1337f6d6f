"""Running the workflow's code: the workflow function and the signal, update and query handlers,
each in its own task, and what each outcome means (a completion command, a workflow failure, a
cancellation, an update's acceptance or rejection, a query's answer, or a task failure).

The handlers that are running are tracked (``RunningHandlers``) for
``workflow.all_handlers_finished()`` and for the warnings about handlers a finished workflow
left unfinished.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import temporalio.api.common.v1
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow
from temporalio.worker import (
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    WorkflowInboundInterceptor,
)
from temporalio.workflow._event_groups import _inbound_event_group, _inbound_update_event_group

from temporay.runtime.engine import encoding
from temporay.runtime.engine.environment import RunEnvironment
from temporay.runtime.engine.handler_tables import HandlerTables
from temporay.runtime.engine.logs import sdk_logger as logger  # the SDK runner's records
from temporay.runtime.engine.operations.continue_as_new import ContinueAsNewRequest


@dataclass
class HandlerExecution:
    """A signal or update handler that has started and not yet finished."""

    name: str
    unfinished_policy: temporalio.workflow.HandlerUnfinishedPolicy
    id: str | None = None


class RunningHandlers:
    """The signal and update handlers that have started and not yet finished."""

    __slots__ = ("handled_signals_seq", "signals", "updates")

    def __init__(self) -> None:
        self.handled_signals_seq = 0
        self.signals: dict[int, HandlerExecution] = {}
        self.updates: dict[str, HandlerExecution] = {}

    def all_finished(self) -> bool:
        return not self.updates and not self.signals

    def warn_if_unfinished(self) -> None:
        """Warn about the handlers still running when the workflow completes (those whose
        policy says to); called by the activator, whose caller the warnings name."""
        if not self.updates and not self.signals:
            return  # the usual case, at every workflow completion

        def warnable(executions: Iterable[HandlerExecution]) -> list[HandlerExecution]:
            return [
                ex
                for ex in executions
                if ex.unfinished_policy
                == temporalio.workflow.HandlerUnfinishedPolicy.WARN_AND_ABANDON
            ]

        updates = warnable(self.updates.values())
        if updates:
            warnings.warn(
                temporalio.workflow.UnfinishedUpdateHandlersWarning(
                    _unfinished_updates_message(updates)
                ),
                stacklevel=2,
            )
        signals = warnable(self.signals.values())
        if signals:
            warnings.warn(
                temporalio.workflow.UnfinishedSignalHandlersWarning(
                    _unfinished_signals_message(signals)
                ),
                stacklevel=2,
            )


class HandlerHost(Protocol):
    """What running workflow code needs of its run (the context implements it)."""

    @property
    def env(self) -> RunEnvironment: ...

    @property
    def info(self) -> temporalio.workflow.Info: ...

    @property
    def inbound(self) -> WorkflowInboundInterceptor: ...

    @property
    def payload_converter(self) -> temporalio.converter.PayloadConverter: ...

    @property
    def failure_converter(self) -> temporalio.converter.FailureConverter: ...

    @property
    def handlers(self) -> HandlerTables: ...

    @property
    def running_handlers(self) -> RunningHandlers: ...

    def workflow_is_failure_exception(self, err: BaseException) -> bool: ...

    def set_workflow_failure(self, err: BaseException) -> None: ...


def _handler_args(
    ctx: HandlerHost,
    job_name: str,
    job_input: Sequence[temporalio.api.common.v1.Payload],
    defn: Any,
) -> list[Any]:
    """A handler's arguments, decoded with the run's converter."""
    return encoding.handler_args(
        ctx.payload_converter,
        ctx.workflow_is_failure_exception,
        job_name,
        job_input,
        defn.name,
        defn.arg_types,
        defn.dynamic_vararg,
    )


# --- top-level functions (main run and signal handlers) -----------------------------------------


async def run_top_level(ctx: HandlerHost, coro: Awaitable[None]) -> None:
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
    ctx: HandlerHost,
    defn: temporalio.workflow._SignalDefinition,
    job: wfact.SignalWorkflow,
) -> None:
    """Start a signal handler task (a signal whose input cannot be decoded is dropped)."""
    try:
        args = _handler_args(ctx, job.signal_name, job.input, defn)
    except Exception:
        logger.exception(
            f"Failed deserializing signal input for {job.signal_name}"
            f" on workflow {ctx.info.workflow_type} with ID {ctx.info.workflow_id}"
            f" and run ID {ctx.info.run_id}, dropping the signal",
            extra={"temporal_workflow": ctx.info._logger_details()},
        )
        return
    input = HandleSignalInput(signal=job.signal_name, args=args, headers=job.headers)
    running = ctx.running_handlers
    running.handled_signals_seq += 1
    handler_id = running.handled_signals_seq
    running.signals[handler_id] = HandlerExecution(job.signal_name, defn.unfinished_policy)

    async def run_signal() -> None:
        with _inbound_event_group(job.originating_event_id).scope():
            await ctx.inbound.handle_signal(input)

    task = ctx.env.create_task(run_top_level(ctx, run_signal()), name=f"signal: {job.signal_name}")
    task.add_done_callback(lambda _task: running.signals.pop(handler_id, None))


async def run_update(ctx: HandlerHost, job: wfact.DoUpdate) -> None:
    """Validate, accept, run and answer one update (all inside the update's own task)."""
    env = ctx.env
    temporalio.workflow._set_current_update_info(
        temporalio.workflow.UpdateInfo(id=job.id, name=job.name)
    )
    command: Any = env.add_command()
    command.update_response.protocol_instance_id = job.protocol_instance_id
    past_validation = False
    try:
        updates = ctx.handlers.updates
        defn = updates.get(job.name) or updates.get(None)
        if not defn:
            known = sorted([k for k in updates if k])
            raise RuntimeError(
                f"Update handler for '{job.name}' expected but not found, and there is no "
                f"dynamic handler. known updates: [{' '.join(known)}]"
            )
        ctx.running_handlers.updates[job.id] = HandlerExecution(
            job.name, defn.unfinished_policy, job.id
        )
        args = _handler_args(ctx, job.name, job.input, defn)
        handler_input = HandleUpdateInput(
            id=job.id, update=job.name, args=args, headers=job.headers
        )
        if job.run_validator and defn.validator is not None:
            with env.read_only_scope(in_query_or_validator=True):
                ctx.inbound.handle_update_validator(handler_input)
                # Decode again: the validator may have mutated the arguments.
                handler_input.args = _handler_args(ctx, job.name, job.input, defn)
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
        ctx.running_handlers.updates.pop(job.id, None)


async def run_query(ctx: HandlerHost, job: wfact.QueryWorkflow) -> None:
    """Answer one query, read-only; any failure becomes a failed query answer."""
    env = ctx.env
    try:
        with env.read_only_scope(in_query_or_validator=True):
            queries = ctx.handlers.queries
            defn = queries.get(job.query_type) or queries.get(None)
            if not defn:
                known = sorted([k for k in queries if k])
                raise RuntimeError(
                    f"Query handler for '{job.query_type}' expected but not found, "
                    f"known queries: [{' '.join(known)}]"
                )
            args = _handler_args(ctx, job.query_type, job.arguments, defn)
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
