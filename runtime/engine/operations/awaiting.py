"""Waiting for an operation's result, where a task cancellation becomes a cancel command.

Shared by every operation whose result comes in a later activation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from temporay.runtime.engine.environment import RunEnvironment
from temporay.runtime.engine.flags import LogicFlag, record_completed_cancellation

_T = TypeVar("_T")


def fail_started_or_not(
    start: asyncio.Future[Any], result: asyncio.Future[Any], err: BaseException
) -> None:
    """Fail an operation that has a start future and a result future (child workflows, Nexus).

    Once started, only the result fails. Before that, the start fails and the result is
    resolved with ``None``, or asyncio would warn about a future nobody retrieved.
    """
    if start.done():
        result.set_exception(err)
    else:
        start.set_exception(err)
        result.set_result(None)


async def shield_await(fut: asyncio.Future[_T]) -> _T:
    """Await ``fut`` without cancelling it when the awaiting task is cancelled.

    ``asyncio.shield`` would do, but logs a spurious "exception in shielded future" on 3.11+.
    """
    await asyncio.wait([fut])
    return fut.result()


async def await_temporal_operation(
    env: RunEnvironment,
    fut: asyncio.Future[_T],
    apply_cancel: Callable[[asyncio.CancelledError], None],
    *,
    completed_cancellation_flag: LogicFlag | None = None,
    reraise_on_workflow_cancellation: bool = False,
) -> _T:
    """Wait for an operation's result; a task cancellation issues the cancel command instead.

    The operation's own result (often a cancellation failure from the server) then decides
    what the awaiting code sees.
    """
    while True:
        try:
            return await shield_await(fut)
        except asyncio.CancelledError as err:
            if fut.done():
                # Retrying the shield now would return the result and swallow the cancellation.
                if env.single_batch:
                    raise
                if record_completed_cancellation(env, completed_cancellation_flag):
                    raise
            apply_cancel(err)
            # Clear the task's cancellation count so the next await does not re-raise at once.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if reraise_on_workflow_cancellation and (env.cancel_reason is not None or env.deleting):
                raise
