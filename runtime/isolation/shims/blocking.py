"""Refusals for what would block the worker's thread or escape the run's event loop:
``time.sleep`` and starting threads.

These are restrictions, not shims (there is no deterministic answer): they are delivered through
the stand-in modules because ``from time import sleep`` and ``threading.Thread(...).start()`` never
reach an audit hook. They apply whenever the run restricts I/O, strict or not.
"""

from __future__ import annotations

import _thread
import threading as _threading
import time as _time
from collections.abc import Callable
from typing import Any

from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from temporay.runtime.isolation.run_state import present_as, restricting_run

__all__ = ["SLEEP_OVERRIDES", "THREADING_OVERRIDES", "THREAD_OVERRIDES"]

_real_sleep = _time.sleep


def _refusing() -> bool:
    return restricting_run() is not None


def _sleep(secs: float, /) -> None:
    """``time.sleep``: refused in workflow code (it would block the whole worker thread)."""
    if _refusing():
        raise RestrictedWorkflowAccessError(
            "time.sleep",
            override_message=(
                "Cannot call time.sleep() from workflow code: it blocks the worker and is not "
                "durable. Use `await asyncio.sleep(...)` or `await workflow.sleep(...)` (a "
                "durable timer) instead."
            ),
        )
    _real_sleep(secs)


SLEEP_OVERRIDES: dict[str, Any] = {"sleep": _sleep}
"""Joins the clock stand-ins in the ``time`` stand-in module."""

_THREAD_MESSAGE = (
    "Cannot call {}() from workflow code: workflow code runs on the worker's deterministic event "
    "loop, a thread would escape it. Use asyncio tasks (asyncio.create_task) for concurrency, and "
    "activities for blocking work."
)


def _refuse_thread(qualified_name: str) -> None:
    if _refusing():
        raise RestrictedWorkflowAccessError(
            qualified_name, override_message=_THREAD_MESSAGE.format(qualified_name)
        )


class _GuardedThread(_threading.Thread):
    def start(self) -> None:
        _refuse_thread("threading.Thread.start")
        super().start()


class _GuardedTimer(_threading.Timer):
    def start(self) -> None:
        _refuse_thread("threading.Timer.start")
        super().start()


present_as(_GuardedThread, "Thread", "threading")
present_as(_GuardedTimer, "Timer", "threading")


def _start_new_thread(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any = None
) -> int:
    _refuse_thread("_thread.start_new_thread")
    if kwargs is None:
        return _thread.start_new_thread(function, args)
    return _thread.start_new_thread(function, args, kwargs)


THREADING_OVERRIDES: dict[str, Any] = {"Thread": _GuardedThread, "Timer": _GuardedTimer}
THREAD_OVERRIDES: dict[str, Any] = {
    "start_new_thread": _start_new_thread,
    "start_new": _start_new_thread,
}
