"""``WorkflowInstanceDetails`` for driving a workflow runner directly, without a Worker.

What the Worker would build for a run's instance; tests and benchmarks that call
``create_instance`` themselves vary only the run's identity, start time, seed and externs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import temporalio.api.common.v1
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.worker import WorkflowInstanceDetails


def instance_details(
    cls: type,
    *,
    run_id: str,
    workflow_id: str,
    task_queue: str,
    randomness_seed: int,
    start_time: datetime | None = None,
    extern_functions: Mapping[str, Callable[..., Any]] | None = None,
) -> WorkflowInstanceDetails:
    """Details of a first attempt of ``cls`` started at ``start_time`` (default: now)."""
    defn = temporalio.workflow._Definition.must_from_class(cls)
    converter = temporalio.converter.DataConverter.default
    started = start_time or datetime.now(UTC)
    info = temporalio.workflow.Info(
        attempt=1,
        continued_run_id=None,
        cron_schedule=None,
        execution_timeout=None,
        first_execution_run_id=run_id,
        headers={},
        namespace="default",
        original_execution_run_id=run_id,
        parent=None,
        root=None,
        raw_memo={},
        retry_policy=None,
        run_id=run_id,
        run_timeout=None,
        search_attributes={},
        start_time=started,
        workflow_start_time=started,
        task_queue=task_queue,
        task_timeout=timedelta(seconds=10),
        typed_search_attributes=temporalio.common.TypedSearchAttributes.empty,
        workflow_id=workflow_id,
        workflow_type=defn.name or cls.__name__,
        priority=temporalio.common.Priority.default,
    )
    return WorkflowInstanceDetails(
        payload_converter_factory=converter._new_payload_converter,
        failure_converter_class=converter.failure_converter_class,
        interceptor_classes=[],
        defn=defn,
        info=info,
        randomness_seed=randomness_seed,
        extern_functions=dict(extern_functions or {}),
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=temporalio.api.common.v1.Payloads(),
        last_failure=None,
    )
