"""``HopExecutor``: the Worker's workflow-task executor, sending hosted activations at once.

The SDK's Worker hands each activation to ``loop.run_in_executor(executor, running.activate,
act)`` and awaits it. An in-process runner needs that thread: the activation is CPU work. For a
run hosted on a shard the thread only waits for the answer, yet the answer cannot be asked for
until the thread is up, and waking a pool thread is a large part of a hop at low load
(docs/design-notes.md, "A hosted activation leaves from the Worker's event loop"). So ``submit``
sends the activation from the calling thread, the Worker's event loop, when that cannot block
(``RemoteRun.begin``), and the thread only reads the answer (``RemoteRun.finish``, given the same
``InFlightActivation``): the shard works while the thread wakes.

Everything else (in-process runners, evictions, a run still to be placed on a shard that is
starting) goes to the thread as before. ``RayPlugin`` installs this executor when the Worker is
given none; with a ``RayWorkflowRunner`` of your own pass ``workflow_task_executor=HopExecutor()``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from temporalio.worker._workflow import _RunningWorkflow

from temporay.cluster.remote_run import RemoteRun

T = TypeVar("T")

DEFAULT_MAX_WORKERS = 500
"""The SDK's own default for the Worker's executor (``max_concurrent_workflow_tasks or 500``)."""


def hosted_run_of(fn: Callable[..., Any]) -> RemoteRun | None:
    """The ``RemoteRun`` behind the Worker's ``running.activate`` (``None``: anything else).

    ``_RunningWorkflow.activate`` only marks the run interruptible around ``instance.activate``
    (for deadlock interruption, which needs a thread id a hosted run does not have), so calling
    ``begin``/``finish`` instead skips nothing (``tests/runtime/test_sdk_canaries.py`` checks it)."""
    if getattr(fn, "__func__", None) is not _RunningWorkflow.activate:
        return None
    instance = getattr(getattr(fn, "__self__", None), "instance", None)
    return instance if isinstance(instance, RemoteRun) else None


class HopExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` that starts a hosted run's activation before its thread wakes."""

    def __init__(
        self,
        max_workers: int | None = DEFAULT_MAX_WORKERS,
        thread_name_prefix: str = "temporal_workflow_",
    ) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.early = 0
        """Activations sent before their thread woke (for tests and benchmarks)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        run = hosted_run_of(fn) if len(args) == 1 and not kwargs else None
        activation = run.begin(args[0]) if run is not None else None
        if run is None or activation is None:
            return super().submit(fn, *args, **kwargs)
        if activation.sent_early:
            self.early += 1
        try:
            return super().submit(run.finish, activation)  # type: ignore[arg-type]
        except BaseException:
            run.abandon(activation)
            raise
