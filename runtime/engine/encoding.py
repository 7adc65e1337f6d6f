"""Payloads in and out of a run: results and exceptions into completion payloads and failure
protos, search attributes into their proto map, and payloads decoded into arguments and results.

Always through the run's own converters (the workflow-context payload and failure converters, or
the context of the operation concerned), so a custom converter or codec sees exactly what the
SDK's instance would hand it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import temporalio.api.common.v1
import temporalio.api.failure.v1
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.common
import temporalio.converter
import temporalio.exceptions
import temporalio.workflow

from temporay.runtime.engine.logs import sdk_logger as logger  # the SDK runner's records


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


def encode_search_attributes(
    attributes: temporalio.common.SearchAttributes | temporalio.common.TypedSearchAttributes,
    payloads: Any,
) -> None:
    """Write search attributes (typed or the deprecated untyped mapping) into a proto map."""
    if isinstance(attributes, temporalio.common.TypedSearchAttributes):
        for pair in attributes:
            payloads[pair.key.name].CopyFrom(
                temporalio.converter.encode_typed_search_attribute_value(pair.key, pair.value)
            )
    else:
        for key, values in attributes.items():
            payloads[key].CopyFrom(temporalio.converter.encode_search_attribute_values(values))


# --- decoding ------------------------------------------------------------------------------------

IsFailure = Callable[[BaseException], bool]
"""The run's ``workflow_is_failure_exception``: which errors fail the workflow, not the task."""


def decode_payloads(
    payloads: Sequence[temporalio.api.common.v1.Payload],
    types: list[type] | None,
    converter: temporalio.converter.PayloadConverter,
    is_failure: IsFailure,
) -> list[Any]:
    """Decode payloads; a decoding error fails the task unless it is a failure type."""
    if not payloads:
        return []
    if types and len(types) != len(payloads):
        types = None
    try:
        return converter.from_payloads(payloads, type_hints=types)
    except temporalio.exceptions.FailureError:
        raise
    except Exception as err:
        if is_failure(err):
            raise
        raise RuntimeError("Failed decoding arguments") from err


def handler_args(
    converter: temporalio.converter.PayloadConverter,
    is_failure: IsFailure,
    job_name: str,
    job_input: Sequence[temporalio.api.common.v1.Payload],
    defn_name: str | None,
    defn_arg_types: list[type] | None,
    defn_dynamic_vararg: bool,
) -> list[Any]:
    """Arguments for a signal/query/update handler (dynamic handlers get name + values)."""
    if not defn_name and defn_dynamic_vararg:
        arg_types = defn_arg_types[1:] if defn_arg_types else None
        return [job_name, *decode_payloads(job_input, arg_types, converter, is_failure)]
    if not defn_name:
        return [
            job_name,
            decode_payloads(
                job_input, [temporalio.common.RawValue] * len(job_input), converter, is_failure
            ),
        ]
    return decode_payloads(job_input, defn_arg_types, converter, is_failure)
