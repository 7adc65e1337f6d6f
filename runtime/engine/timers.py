"""The ``workflow.*`` calls that wait for time or for a condition: ``workflow.sleep`` (a timer
command) and ``workflow.wait_condition`` (re-checked by the loop after each job set, with an
optional timeout timer), including how a workflow cancellation that arrives meanwhile wins."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence

import temporalio.api.sdk.v1
import temporalio.converter
import temporalio.workflow
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine.environment import RunEnvironment, TimerOptions, timer_options


class TimersAndConditions(temporalio.workflow._Runtime):
    """The waiting part of the run's ``workflow._Runtime`` (``WorkflowContext`` is made of it
    and its siblings; it declares what of the context it reads)."""

    __slots__ = ()

    env: RunEnvironment
    payload_converter: temporalio.converter.PayloadConverter

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
