"""Task-failure completions built outside an engine (hosting errors, deadlocks, lost runs).

They go through the same failure converter the SDK's worker uses for its own activation errors,
so a user sees the same shape of failure whichever side produced it.
"""

from __future__ import annotations

import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
from temporalio.worker._workflow import _DeadlockError


def failed_completion(
    run_id: str,
    err: BaseException,
    failure_converter: temporalio.converter.FailureConverter | None = None,
    payload_converter: temporalio.converter.PayloadConverter | None = None,
) -> wfcomp.WorkflowActivationCompletion:
    """A completion failing the workflow task with ``err`` (the server retries the task)."""
    default = temporalio.converter.DataConverter.default
    completion = wfcomp.WorkflowActivationCompletion(run_id=run_id)
    completion.failed.failure.SetInParent()
    try:
        (failure_converter or default.failure_converter).to_failure(
            err, payload_converter or default.payload_converter, completion.failed.failure
        )
    except Exception as inner:
        completion.failed.failure.message = f"Failed converting activation exception: {inner}"
    return completion


class _ThreadRef:
    def __init__(self, thread_id: int | None) -> None:
        self._thread_id = thread_id

    def get_thread_id(self) -> int | None:
        return self._thread_id


def deadlock_error(thread_id: int | None, seconds: float) -> BaseException:
    """The SDK's own deadlock error, carrying the stuck thread's stack as its traceback.

    Must be called in the process that owns the thread, while it is stuck.
    """
    err = _DeadlockError.from_deadlocked_workflow(_ThreadRef(thread_id), seconds)  # type: ignore[arg-type]
    err.swap_traceback()
    return err

