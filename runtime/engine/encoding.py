"""Workflow results and exceptions into completion payloads and failure protos.

Always through the run's own converters (the workflow-context payload and failure converters, or
the context of the operation concerned), so a custom converter or codec sees exactly what the
SDK's instance would hand it.
"""

from __future__ import annotations

import logging
from typing import Any

import temporalio.api.common.v1
import temporalio.api.failure.v1
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow

logger = logging.getLogger("temporay.runtime")


def single_payload(
    converter: temporalio.converter.PayloadConverter, value: Any
) -> temporalio.api.common.v1.Payload:
    """A workflow/update/query result is exactly one payload."""
    payloads = converter.to_payloads([value])
    if len(payloads) != 1:
        raise ValueError(f"Expected 1 result payload, got {len(payloads)}")
    return payloads[0]


def task_failure(
    completion: wfcomp.WorkflowActivationCompletion,
    err: BaseException,
    info: temporalio.workflow.Info,
    failure_converter: temporalio.converter.FailureConverter,
    payload_converter: temporalio.converter.PayloadConverter,
) -> None:
    """Turn the completion into a workflow-task failure (the server retries the task).

    Logged as a warning with the SDK's wording and ``extra`` keys, since operators grep for it.
    """
    logger.warning(
        f"Failed activation on workflow {info.workflow_type} with ID {info.workflow_id} "
        f"and run ID {info.run_id}",
        exc_info=err,
        extra={
            "temporal_workflow": info._logger_details(),
            "__temporal_error_identifier": "WorkflowTaskFailure",
        },
    )
    completion.failed.failure.SetInParent()
    try:
        failure_converter.to_failure(err, payload_converter, completion.failed.failure)
    except Exception as inner:
        logger.exception(
            f"Failed converting activation exception on workflow with run ID {info.run_id}"
        )
        completion.failed.failure.message = f"Failed converting activation exception: {inner}"
        completion.failed.failure.application_failure_info.SetInParent()


def failure_into(
    target: temporalio.api.failure.v1.Failure,
    err: BaseException,
    failure_converter: temporalio.converter.FailureConverter,
    payload_converter: temporalio.converter.PayloadConverter,
) -> None:
    """Write ``err`` into ``target`` (a workflow failure, update rejection or query failure)."""
    failure_converter.to_failure(err, payload_converter, target)
