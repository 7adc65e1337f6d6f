"""The workflow object's creation: its input decoded from ``InitializeWorkflow``, the instance
made on the first run of the loop (``__init__`` may use the workflow API, and ``@workflow.init``
receives the arguments), and the dynamic workflow's config read from it."""

from __future__ import annotations

from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.common
from temporalio.worker import ExecuteWorkflowInput

from temporay.runtime.engine import encoding
from temporay.runtime.engine.context import WorkflowContext
from temporay.runtime.engine.logs import sdk_logger as logger  # the SDK runner's records


def make_workflow_input(
    ctx: WorkflowContext, job: wfact.InitializeWorkflow
) -> ExecuteWorkflowInput:
    """The interceptors' input for the workflow function, from the run's first job."""
    defn = ctx.defn
    arg_types = defn.arg_types
    if not defn.name:
        # A dynamic workflow receives the raw values, as one sequence argument.
        arg_types = [temporalio.common.RawValue] * len(job.arguments)
    args: list[Any] = encoding.decode_payloads(
        job.arguments, arg_types, ctx.payload_converter, ctx.workflow_is_failure_exception
    )
    if not defn.name:
        args = [args]
    return ExecuteWorkflowInput(
        type=defn.cls,
        run_fn=defn.run_fn,
        args=args,
        headers=job.headers,
    )


def ensure_object(ctx: WorkflowContext) -> None:
    """Instantiate the workflow class on the first run of the loop (``__init__`` may use the
    workflow API, and ``@workflow.init`` receives the arguments)."""
    # Truthiness, not identity, exactly as the SDK checks it.
    if not ctx.object and not ctx.env.deleting:
        ctx.object = _instantiate(ctx)


def _instantiate(ctx: WorkflowContext) -> Any:
    if not ctx.workflow_input:
        raise RuntimeError("Expected workflow input. This is a temporay bug.")
    defn = ctx.defn
    cls = defn.cls
    if hasattr(getattr(cls, "__init__"), "__temporal_workflow_init"):
        obj = cls(*ctx.workflow_input.args)
    else:
        obj = cls()
    if defn.versioning_behavior:
        ctx.versioning_behavior = defn.versioning_behavior
    if defn.name is None and defn.dynamic_config_fn is not None:
        config = None
        try:
            with ctx.env.read_only_scope(in_query_or_validator=False):
                config = defn.dynamic_config_fn(obj)
        except Exception as err:
            logger.exception(
                f"Failed to run dynamic config function in workflow {ctx.info.workflow_type}"
            )
            ctx.env.activation_error = err
            raise
        if config:
            if config.failure_exception_types is not None:
                ctx.dynamic_failure_exception_types = config.failure_exception_types
            if config.versioning_behavior != temporalio.common.VersioningBehavior.UNSPECIFIED:
                ctx.versioning_behavior = config.versioning_behavior
    return obj
