"""Internal workflow logic flags: behaviour changes that must replay the way they were recorded.

A flag is a number shared with the SDK (and stored in history by sdk-core), so the numbers and the
recording rules are the SDK's:

- a flag is on if the activation lists it as available (it was recorded when the history was
  made); otherwise it is on only when not replaying and the worker enables it by default, and
  then it is recorded in the completion (``used_internal_flags``) so replays see it;
- flag 1 has its own rule, applied where a cancellation meets an already-completed operation
  (see ``handles.await_temporal_operation``).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from temporay.runtime.engine.environment import RunEnvironment


class LogicFlag(IntEnum):
    """The SDK's ``_WorkflowLogicFlag`` values (same numbers: they are stored in histories)."""

    RAISE_ON_CANCELLING_COMPLETED_ACTIVITY = 1
    """Cancelling an operation whose result already arrived raises the cancellation."""

    PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH = 2
    """Apply every job of an activation before running workflow code once."""


def flag_enabled(env: RunEnvironment, flag: LogicFlag, defaults: Collection[int]) -> bool:
    """Whether ``flag`` is on for this activation, recording it when newly turned on."""
    if flag in env.available_flags:
        return True
    if env.is_replaying or flag not in defaults:
        return False
    env.completion.successful.used_internal_flags.append(flag)
    return True


def record_completed_cancellation(env: RunEnvironment, flag: LogicFlag | None) -> bool:
    """Flag 1's rule: a cancellation that arrives after the result raises (and is recorded)
    unless we are replaying a history made before the flag existed."""
    if flag is not None and (not env.is_replaying or flag in env.available_flags):
        env.completion.successful.used_internal_flags.append(flag)
        return True
    return False
