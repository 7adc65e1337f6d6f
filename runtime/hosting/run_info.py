"""A hosted run's details, rebuilt where it is hosted from its first activation.

Every new run's first activation carries ``InitializeWorkflow``, from which the Worker builds the
run's ``workflow.Info`` (``_WorkflowWorker._create_workflow_instance``). Shipping that ``Info``
pickled was costly to write on the Worker and as costly to read in the shard on a cold process
(its datetimes, timezone and dataclasses are each a pickled global); the shard already has the
activation, so it rebuilds the same ``Info`` with the SDK's own recipe, given the two things the
activation does not say (the Worker's namespace and task queue, sent as plain strings).
``tests/runtime/test_run_info.py`` checks, on real runs of every shape, that the result equals the
``Info`` the Worker handed the runner: a change in the SDK's recipe fails there first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import google.protobuf.duration_pb2
import google.protobuf.timestamp_pb2
import temporalio.api.common.v1
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.common
import temporalio.converter
import temporalio.workflow

from temporay.runtime.run_info import RunDetails

__all__ = ["details_from_activation", "duration", "initialize_job", "utc_datetime"]


def initialize_job(act: wfact.WorkflowActivation) -> wfact.InitializeWorkflow | None:
    for job in act.jobs:
        if job.HasField("initialize_workflow"):
            return job.initialize_workflow
    return None


def details_from_activation(
    act: wfact.WorkflowActivation, *, namespace: str, task_queue: str
) -> RunDetails:
    """The run's details exactly as the SDK's Worker derives them (temporalio 1.35)."""
    init = initialize_job(act)
    if init is None:
        raise ValueError(
            f"the first activation of run {act.run_id} has no InitializeWorkflow job: "
            "the run cannot be created from it"
        )
    return RunDetails(
        info=_info(act, init, namespace=namespace, task_queue=task_queue),
        randomness_seed=init.randomness_seed,
        last_completion_result=init.last_completion_result,
        last_failure=init.continued_failure if init.HasField("continued_failure") else None,
    )


def _info(
    act: wfact.WorkflowActivation,
    init: wfact.InitializeWorkflow,
    *,
    namespace: str,
    task_queue: str,
) -> temporalio.workflow.Info:
    """The SDK's recipe (``_WorkflowWorker._create_workflow_instance``), field for field."""
    return temporalio.workflow.Info(
        attempt=init.attempt,
        continued_run_id=init.continued_from_execution_run_id or None,
        cron_schedule=init.cron_schedule or None,
        execution_timeout=(
            duration(init.workflow_execution_timeout)
            if init.HasField("workflow_execution_timeout")
            else None
        ),
        first_execution_run_id=init.first_execution_run_id,
        headers=dict(init.headers),
        namespace=namespace,
        original_execution_run_id=init.original_execution_run_id or act.run_id,
        parent=_parent(init),
        root=_root(init),
        priority=_priority(init.priority),
        raw_memo=dict(init.memo.fields),
        retry_policy=(
            temporalio.common.RetryPolicy.from_proto(init.retry_policy)
            if init.HasField("retry_policy")
            else None
        ),
        run_id=act.run_id,
        run_timeout=(
            duration(init.workflow_run_timeout) if init.HasField("workflow_run_timeout") else None
        ),
        search_attributes=_search_attributes(init),
        start_time=utc_datetime(act.timestamp),
        task_queue=task_queue,
        task_timeout=duration(init.workflow_task_timeout),
        typed_search_attributes=_typed_search_attributes(init),
        workflow_id=init.workflow_id,
        workflow_start_time=utc_datetime(init.start_time),
        workflow_type=init.workflow_type,
    )


def _parent(init: wfact.InitializeWorkflow) -> temporalio.workflow.ParentInfo | None:
    if not init.HasField("parent_workflow_info"):
        return None
    parent = init.parent_workflow_info
    return temporalio.workflow.ParentInfo(
        namespace=parent.namespace, run_id=parent.run_id, workflow_id=parent.workflow_id
    )


def _root(init: wfact.InitializeWorkflow) -> temporalio.workflow.RootInfo | None:
    if not init.HasField("root_workflow"):
        return None
    return temporalio.workflow.RootInfo(
        run_id=init.root_workflow.run_id, workflow_id=init.root_workflow.workflow_id
    )


def _search_attributes(init: wfact.InitializeWorkflow) -> Any:
    sa = init.search_attributes
    return temporalio.converter.decode_search_attributes(sa) if sa.indexed_fields else {}


def _typed_search_attributes(init: wfact.InitializeWorkflow) -> Any:
    sa = init.search_attributes
    if not sa.indexed_fields:
        return temporalio.common.TypedSearchAttributes([])  # each run its own: upserts change it
    return temporalio.converter.decode_typed_search_attributes(sa)


# --- cheaper equivalents of the SDK's steps, for a new run's first activation ----------------------
# A new run's Info is built while its first activation waits, on a shard process that has usually
# been idle; each step below gives the same value as the SDK's (checked in
# tests/runtime/test_run_info.py) with less code run.

_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_NANOS_PER_SECOND = 1_000_000_000


def utc_datetime(ts: google.protobuf.timestamp_pb2.Timestamp) -> datetime:
    """``ts.ToDatetime().replace(tzinfo=UTC)`` without its validation and naive detour."""
    nanos = ts.nanos
    if not 0 <= nanos < _NANOS_PER_SECOND:
        return ts.ToDatetime().replace(tzinfo=UTC)  # let protobuf judge an odd timestamp
    return _EPOCH_UTC + timedelta(seconds=ts.seconds, microseconds=nanos // 1000)


def duration(d: google.protobuf.duration_pb2.Duration) -> timedelta:
    """``d.ToTimedelta()``, called directly (protobuf's rounding toward zero is floor division
    for the usual non-negative nanos; anything else is left to protobuf)."""
    nanos = d.nanos
    if nanos < 0:
        return d.ToTimedelta()
    return timedelta(seconds=d.seconds, microseconds=nanos // 1000)


def _priority(proto: temporalio.api.common.v1.Priority) -> temporalio.common.Priority:
    """``Priority._from_proto``, sharing the SDK's default for the common unset case (frozen)."""
    if not (proto.priority_key or proto.fairness_key or proto.fairness_weight):
        return temporalio.common.Priority.default
    return temporalio.common.Priority._from_proto(proto)
