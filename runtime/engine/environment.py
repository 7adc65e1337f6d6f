"""The per-run environment: a deterministic asyncio event loop and the run's bookkeeping.

Workflow code is ordinary ``async`` Python, so determinism comes from the loop it runs on: this
loop never waits, its clock is the activation's timestamp, ``call_later`` turns into a Temporal
timer command, and it only runs callbacks that are ready. It also owns what the SDK's instance
keeps beside its loop — the commands of the current activation, the pending timers, the
sequence numbers, the run's tasks and wait conditions — because timers and task creation need
them from inside loop methods. (The run's other pending operations are the context's:
``operations/pending.py``.)

Every rule here mirrors ``temporalio.worker._workflow_instance`` (read-only checks, the eviction
error, timer seq allocation, handle execution order), because the same history must yield the same
commands whichever engine runs it.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import traceback
from collections.abc import Callable, Coroutine, Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import temporalio.api.sdk.v1
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_commands as wfcmd
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.workflow
from temporalio.worker._workflow_instance import _WorkflowBeingEvictedError
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine.logs import sdk_logger as logger  # the SDK runner's records
from temporay.runtime.engine.loop_swap import running
from temporay.runtime.run_info import timestamp_ns

_T = TypeVar("_T")
ExceptionContext: TypeAlias = dict[str, Any]
ExceptionHandler: TypeAlias = Callable[[asyncio.AbstractEventLoop, ExceptionContext], Any]


@dataclass(frozen=True)
class TimerOptions:
    """What a timer command carries besides its duration (summary, event groups)."""

    user_metadata: temporalio.api.sdk.v1.UserMetadata | None = None
    event_group_markers: Sequence[temporalio.api.sdk.v1.EventGroupMarker] | None = None


timer_options: contextvars.ContextVar[TimerOptions] = contextvars.ContextVar(
    "temporay_timer_options",
    default=TimerOptions(),  # noqa: B039 (frozen)
)
"""Options for timers that asyncio itself creates (``wait_for`` inside ``wait_condition``)."""


class WorkflowTimer(asyncio.TimerHandle):
    """A ``call_later`` handle that is also a Temporal timer, known by its sequence number."""

    __slots__ = ("options", "seq")

    def __init__(
        self,
        seq: int,
        when: float,
        options: TimerOptions,
        callback: Callable[..., Any],
        args: Sequence[Any],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        super().__init__(when, callback, args, loop, context)
        self.seq = seq
        self.options = options


class RunEnvironment(asyncio.AbstractEventLoop):
    """One run's event loop plus the state of its current activation.

    Only ``run_once`` executes workflow code; everything else just records what the code asked
    for. The thread's previous running loop is restored after each ``run_once``, so an
    activation can run on any thread, including one that is itself running a loop.
    """

    # Slots: a cached run's state is mostly these fields, and a worker caches many runs. (The
    # loop keeps a __dict__ too, for the runtime attribute temporalio looks up on it.)
    __slots__ = (
        "_exception_handler",
        "activation_error",
        "available_flags",
        "cancel_reason",
        "completion",
        "conditions",
        "deleting",
        "in_query_or_validator",
        "is_replaying",
        "pending_timers",
        "read_only",
        "ready",
        "seqs",
        "single_batch",
        "task_name_suffix",
        "tasks",
        "thread_id",
        "time_ns",
    )

    def __init__(self, task_name_suffix: str) -> None:
        self.ready: collections.deque[asyncio.Handle] = collections.deque()
        self.time_ns = 0
        self.completion = wfcomp.WorkflowActivationCompletion()
        self.is_replaying = False
        self.read_only = False
        self.in_query_or_validator = False
        self.deleting = False
        self.single_batch = False
        self.available_flags: Sequence[int] = ()
        self.activation_error: Exception | None = None
        self.cancel_reason: str | None = None
        self.thread_id: int | None = None
        # Pending timers by sequence number.
        self.pending_timers: dict[int, WorkflowTimer] = {}
        self.seqs: dict[str, int] = {}
        # asyncio keeps tasks weakly; we keep them strongly so none is collected mid-run (a
        # collected coroutine could resume on another run's thread).
        self.tasks: set[asyncio.Task[Any]] = set()
        self.conditions: list[tuple[Callable[[], bool], asyncio.Future[Any]]] = []
        self.task_name_suffix = task_name_suffix
        self._exception_handler: ExceptionHandler | None = None

    # --- commands and guards ------------------------------------------------------------------

    def start_activation(self, act: wfact.WorkflowActivation) -> None:
        """Reset the per-activation state from a new activation."""
        self.completion = wfcomp.WorkflowActivationCompletion()
        self.completion.successful.SetInParent()
        self.activation_error = None
        self.time_ns = timestamp_ns(act.timestamp)
        self.is_replaying = act.is_replaying
        self.available_flags = act.available_internal_flags

    def add_command(self) -> wfcmd.WorkflowCommand:
        if self.deleting or self.read_only:  # checked here first: the usual case makes no call
            self.assert_not_read_only("add command")
        return self.completion.successful.commands.add()

    def assert_not_read_only(self, action: str, *, allow_during_delete: bool = False) -> None:
        if self.deleting and not allow_during_delete:
            raise _WorkflowBeingEvictedError(
                f"Ignoring {action} while evicting workflow. This is not an error."
            )
        if self.read_only:
            raise temporalio.workflow.ReadOnlyContextError(
                f"While in read-only function, action attempted: {action}"
            )

    @contextmanager
    def read_only_scope(self, *, in_query_or_validator: bool) -> Iterator[None]:
        prev_read_only, prev_in_query = self.read_only, self.in_query_or_validator
        self.read_only = True
        self.in_query_or_validator = in_query_or_validator
        try:
            yield None
        finally:
            self.read_only, self.in_query_or_validator = prev_read_only, prev_in_query

    def next_seq(self, kind: str) -> int:
        seq = self.seqs.get(kind, 0) + 1
        self.seqs[kind] = seq
        return seq

    # --- timers -------------------------------------------------------------------------------

    def start_timer(
        self,
        delay: float,
        options: TimerOptions,
        callback: Callable[..., Any],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> WorkflowTimer:
        """Schedule ``callback`` after ``delay`` seconds of workflow time: a StartTimer command."""
        self.assert_not_read_only("schedule timer")
        if delay < 0:
            raise RuntimeError("Attempting to schedule timer with negative delay")
        if options.event_group_markers is None:
            options = TimerOptions(
                user_metadata=options.user_metadata,
                event_group_markers=_capture_event_group_markers(None),
            )
        seq = self.next_seq("timer")
        handle = WorkflowTimer(seq, self.time() + delay, options, callback, args, self, context)
        command = self.add_command()
        command.start_timer.seq = seq
        if options.user_metadata:
            command.user_metadata.CopyFrom(options.user_metadata)
        command.event_group_markers.extend(options.event_group_markers or ())
        command.start_timer.start_to_fire_timeout.FromNanoseconds(int(delay * 1e9))
        self.pending_timers[seq] = handle
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if not isinstance(handle, WorkflowTimer):
            raise TypeError("Expected Temporal timer handle")
        if not self.pending_timers.pop(handle.seq, None):
            return
        command = self.add_command()
        command.cancel_timer.seq = handle.seq
        command.event_group_markers.extend(handle.options.event_group_markers or ())

    def fire_timer(self, seq: int) -> None:
        """A FireTimer job: the timer's callback becomes ready (unless it was cancelled)."""
        handle = self.pending_timers.pop(seq, None)
        if handle:
            self.ready.append(handle)

    # --- asyncio.AbstractEventLoop ------------------------------------------------------------

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        # Allowed while evicting: that is how tasks deliver their cancellation.
        if self.read_only:  # checked here first: the usual case makes no call
            self.assert_not_read_only("schedule task", allow_during_delete=True)
        handle = asyncio.Handle(callback, args, self, context)
        self.ready.append(handle)
        return handle

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.start_timer(delay, timer_options.get(), callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        # asyncio.timeout (and wait_for from 3.12) schedule at loop.time() + delay; the clock is
        # nanoseconds as a float, so round the delay to milliseconds as the SDK does.
        return self.call_later(round(when - self.time(), 3), callback, *args, context=context)

    def time(self) -> float:
        return self.time_ns / 1e9

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, _T] | Generator[Any, None, _T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[_T]:
        task: asyncio.Task[_T] = asyncio.Task(coro, loop=self, context=context)
        self.register_task(task, name=name)
        return task

    def register_task(self, task: asyncio.Task[Any], *, name: str | None) -> None:
        """Track a task of this run (also used for activity and child handles, which are tasks)."""
        self.assert_not_read_only("create task")
        task.set_name((name or task.get_name()) + self.task_name_suffix)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.remove)
        # A task still pending when the run is dropped must not log "Task was destroyed".
        if hasattr(task, "_log_destroy_pending"):
            task._log_destroy_pending = False

    def get_exception_handler(self) -> ExceptionHandler | None:
        return self._exception_handler

    def set_exception_handler(self, handler: ExceptionHandler | None) -> None:
        self._exception_handler = handler

    def get_task_factory(self) -> None:
        return None

    def default_exception_handler(self, context: ExceptionContext) -> None:
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any = (
            (type(exception), exception, exception.__traceback__)
            if exception is not None
            else False
        )
        lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                value = (
                    "Object created at (most recent call last):\n"
                    + "".join(traceback.format_list(value)).rstrip()
                )
            elif key == "handle_traceback":
                value = (
                    "Handle created at (most recent call last):\n"
                    + "".join(traceback.format_list(value)).rstrip()
                )
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: ExceptionContext) -> None:
        if self.deleting:
            return
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler while handling an unexpected "
                    "error in custom exception handler",
                    exc_info=True,
                )

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return True

    # --- running ------------------------------------------------------------------------------

    def run_once(
        self,
        *,
        check_conditions: bool,
        jobs: Sequence[wfact.WorkflowActivationJob],
        before: Callable[[], None],
    ) -> None:
        """Run everything that is ready until nothing is, re-checking wait conditions.

        ``before`` runs first with this loop current (it instantiates the workflow object, whose
        ``__init__`` may use the workflow API). Conditions are not re-checked after an
        activation whose only jobs are updates that were all rejected: rejections leave nothing
        in history, so a condition they let through could not unblock the same way on replay.
        """
        with running(self):
            before()
            ready = self.ready
            not_only_updates: bool | None = None
            while ready:
                while ready:
                    ready.popleft()._run()
                    # Set by a top-level function that failed the task; stop right there.
                    if self.activation_error and not self.deleting:
                        raise self.activation_error
                if not check_conditions:
                    continue
                if not_only_updates is None:
                    not_only_updates = any(not job.HasField("do_update") for job in jobs)
                if not_only_updates or self._some_update_accepted():
                    self.conditions[:] = [
                        entry
                        for entry in self.conditions
                        if not entry[1].done() and not _check_condition(*entry)
                    ]

    def _some_update_accepted(self) -> bool:
        return any(
            command.update_response.HasField("accepted")
            for command in self.completion.successful.commands
        )


def _check_condition(fn: Callable[[], bool], fut: asyncio.Future[Any]) -> bool:
    if fn():
        fut.set_result(True)
        return True
    return False


# Reported under the SDK's class name: timer handles show up in logs and error messages.
WorkflowTimer.__name__ = WorkflowTimer.__qualname__ = "_TimerHandle"
