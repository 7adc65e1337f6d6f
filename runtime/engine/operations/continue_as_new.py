"""Continue-as-new: ``workflow.continue_as_new`` raises the request, and the top-level function
that catches it (the workflow's own, never a handler's) turns it into the command."""

from __future__ import annotations

from typing import NoReturn, cast

import temporalio.api.enums.v1
import temporalio.common
import temporalio.workflow
from temporalio.worker import ContinueAsNewInput
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine import encoding
from temporay.runtime.engine.operations.host import OperationHost


class ContinueAsNewRequest(temporalio.workflow.ContinueAsNewError):
    """Raised by ``workflow.continue_as_new``; the top-level function turns it into the command."""

    def __init__(self, ctx: OperationHost, input: ContinueAsNewInput) -> None:
        super().__init__("Continue as new")
        self._ctx = ctx
        self._input = input
        self._event_group_markers = _capture_event_group_markers(input.event_groups)

    def apply_command(self) -> None:
        input = self._input
        converter = self._ctx.workflow_payload_converter()
        payloads = converter.to_payloads(input.args) if input.args else None
        memo = (
            {key: converter.to_payloads([value])[0] for key, value in input.memo.items()}
            if input.memo
            else None
        )
        command = self._ctx.env.add_command()
        v = command.continue_as_new_workflow_execution
        v.SetInParent()
        if input.workflow:
            v.workflow_type = input.workflow
        if input.task_queue:
            v.task_queue = input.task_queue
        if payloads:
            v.arguments.extend(payloads)
        if input.run_timeout:
            v.workflow_run_timeout.FromTimedelta(input.run_timeout)
        if input.task_timeout:
            v.workflow_task_timeout.FromTimedelta(input.task_timeout)
        if input.backoff_start_interval:
            v.backoff_start_interval.FromTimedelta(input.backoff_start_interval)
        if input.headers:
            temporalio.common._apply_headers(input.headers, v.headers)
        if input.retry_policy:
            input.retry_policy.apply_to_proto(v.retry_policy)
        if memo:
            for key, payload in memo.items():
                v.memo[key].CopyFrom(payload)
        if input.search_attributes:
            encoding.encode_search_attributes(
                input.search_attributes, v.search_attributes.indexed_fields
            )
        if input.versioning_intent:
            v.versioning_intent = input.versioning_intent._to_proto()
        if input.initial_versioning_behavior:
            v.initial_versioning_behavior = cast(
                "temporalio.api.enums.v1.ContinueAsNewVersioningBehavior.ValueType",
                int(input.initial_versioning_behavior),
            )
        command.event_group_markers.extend(self._event_group_markers)


def continue_as_new(ctx: OperationHost, input: ContinueAsNewInput) -> NoReturn:
    raise ContinueAsNewRequest(ctx, input)


# Class names are observable (``type(err).__name__``, in logs and error messages): report the
# SDK's.
ContinueAsNewRequest.__name__ = ContinueAsNewRequest.__qualname__ = "_ContinueAsNewError"
