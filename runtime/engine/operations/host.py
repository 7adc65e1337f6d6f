"""What an operation needs of the run that starts it (``host.OperationHost``).

The run's context (``context.WorkflowContext``) implements it; the operations are below the
context and only know this much of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import temporalio.converter
import temporalio.workflow
from temporalio.worker import WorkflowOutboundInterceptor

from temporay.runtime.engine.environment import RunEnvironment


class OperationHost(Protocol):
    """The run an operation belongs to: its loop, its identity, its converters, its outbound
    interceptor chain (a child handle's signal goes through it) and its timers (a local
    activity's backoff is a plain timer)."""

    @property
    def env(self) -> RunEnvironment: ...

    @property
    def info(self) -> temporalio.workflow.Info: ...

    @property
    def outbound(self) -> WorkflowOutboundInterceptor: ...

    @property
    def context_free_payload_converter(self) -> temporalio.converter.PayloadConverter: ...

    @property
    def context_free_failure_converter(self) -> temporalio.converter.FailureConverter: ...

    def payload_converter_with_context(
        self, context: temporalio.converter.SerializationContext
    ) -> temporalio.converter.PayloadConverter: ...

    def failure_converter_with_context(
        self, context: temporalio.converter.SerializationContext
    ) -> temporalio.converter.FailureConverter: ...

    def workflow_payload_converter(self) -> temporalio.converter.PayloadConverter: ...

    def workflow_is_failure_exception(self, err: BaseException) -> bool: ...

    async def workflow_sleep(
        self,
        duration: float,
        *,
        summary: str | None = None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None: ...
