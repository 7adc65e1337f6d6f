"""A hosted run's details, rebuilt where it is hosted from its first activation.

Every new run's first activation carries ``InitializeWorkflow``, from which the Worker builds the
run's ``workflow.Info`` (``_WorkflowWorker._create_workflow_instance``). Shipping that ``Info``
pickled was costly to write on the Worker and as costly to read in the shard on a cold process
(its datetimes, timezone and dataclasses are each a pickled global); the shard already has the
activation, so it rebuilds the same ``Info`` with the SDK's own recipe, given the two things the
activation does not say (the Worker's namespace and task queue, sent as plain strings), each field
when it is first read (``HostedInfo``: its measured gain is in ``docs/design-notes.md``).
``tests/runtime/test_run_info.py`` checks, on real runs of every shape, that the result equals the
``Info`` the Worker handed the runner: a change in the SDK's recipe fails there first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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

__all__ = ["HostedInfo", "details_from_activation", "duration", "initialize_job", "utc_datetime"]


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
    info = object.__new__(HostedInfo)
    info.__dict__.update(
        namespace=namespace,
        task_queue=task_queue,
        run_id=act.run_id,
        workflow_id=init.workflow_id,
        workflow_type=init.workflow_type,
        _temporay_source=(init, act.timestamp, act.run_id),
    )
    return RunDetails(
        info=info,
        randomness_seed=init.randomness_seed,
        last_completion_result=init.last_completion_result,
        last_failure=init.continued_failure if init.HasField("continued_failure") else None,
    )


_Source = tuple[wfact.InitializeWorkflow, google.protobuf.timestamp_pb2.Timestamp, str]


class HostedInfo(temporalio.workflow.Info):
    """A hosted run's ``workflow.Info``: the SDK's, field for field, each field made from the
    run's first activation when it is first read.

    The engine reads five fields, set at once; workflows read a few more, seldom all, and
    making all of them is measurable on a new run's first activation in a shard that has been
    idle (docs/design-notes.md). A field, once made, is kept (upserts change the two search attribute fields in place).
    It compares equal to an ``Info`` with the same fields, as one ``Info`` does to another, and
    pickles and copies as one."""

    def __getattr__(self, name: str) -> Any:
        # Only reached for an attribute not set yet.
        fields = self.__dict__
        make = _LAZY_FIELDS.get(name)
        source: _Source | None = fields.get("_temporay_source")
        if make is None or source is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return fields.setdefault(name, make(*source))  # one value even if two threads race

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, temporalio.workflow.Info):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELD_NAMES)

    __hash__ = temporalio.workflow.Info.__hash__

    def __reduce__(self) -> tuple[type[temporalio.workflow.Info], tuple[Any, ...]]:
        # Pickled or copied it becomes the SDK's Info, whole (the activation's messages, kept
        # for the fields not made yet, do not pickle).
        return temporalio.workflow.Info, tuple(getattr(self, name) for name in _FIELD_NAMES)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELD_NAMES)
        return f"Info({shown})"


def _parent(init: wfact.InitializeWorkflow, *_: Any) -> temporalio.workflow.ParentInfo | None:
    if not init.HasField("parent_workflow_info"):
        return None
    parent = init.parent_workflow_info
    return temporalio.workflow.ParentInfo(
        namespace=parent.namespace, run_id=parent.run_id, workflow_id=parent.workflow_id
    )


def _root(init: wfact.InitializeWorkflow, *_: Any) -> temporalio.workflow.RootInfo | None:
    if not init.HasField("root_workflow"):
        return None
    return temporalio.workflow.RootInfo(
        run_id=init.root_workflow.run_id, workflow_id=init.root_workflow.workflow_id
    )


def _execution_timeout(init: wfact.InitializeWorkflow, *_: Any) -> timedelta | None:
    if not init.HasField("workflow_execution_timeout"):
        return None
    return duration(init.workflow_execution_timeout)


def _run_timeout(init: wfact.InitializeWorkflow, *_: Any) -> timedelta | None:
    if not init.HasField("workflow_run_timeout"):
        return None
    return duration(init.workflow_run_timeout)


def _search_attributes(init: wfact.InitializeWorkflow, *_: Any) -> Any:
    sa = init.search_attributes
    return temporalio.converter.decode_search_attributes(sa) if sa.indexed_fields else {}


def _typed_search_attributes(init: wfact.InitializeWorkflow, *_: Any) -> Any:
    sa = init.search_attributes
    if not sa.indexed_fields:
        return temporalio.common.TypedSearchAttributes([])  # each run its own: upserts change it
    return temporalio.converter.decode_typed_search_attributes(sa)


# The SDK's recipe (``_WorkflowWorker._create_workflow_instance``), one field at a time; each
# maker takes (InitializeWorkflow job, activation timestamp, run id).
_LAZY_FIELDS: dict[str, Callable[..., Any]] = {
    "attempt": lambda init, *_: init.attempt,
    "continued_run_id": lambda init, *_: init.continued_from_execution_run_id or None,
    "cron_schedule": lambda init, *_: init.cron_schedule or None,
    "execution_timeout": _execution_timeout,
    "first_execution_run_id": lambda init, *_: init.first_execution_run_id,
    "headers": lambda init, *_: dict(init.headers),
    "original_execution_run_id": lambda init, _, run_id: init.original_execution_run_id or run_id,
    "parent": _parent,
    "root": _root,
    "priority": lambda init, *_: _priority(init.priority),
    "raw_memo": lambda init, *_: dict(init.memo.fields),
    "retry_policy": lambda init, *_: (
        temporalio.common.RetryPolicy.from_proto(init.retry_policy)
        if init.HasField("retry_policy")
        else None
    ),
    "run_timeout": _run_timeout,
    "search_attributes": _search_attributes,
    "start_time": lambda _, timestamp, __: utc_datetime(timestamp),
    "task_timeout": lambda init, *_: duration(init.workflow_task_timeout),
    "typed_search_attributes": _typed_search_attributes,
    "workflow_start_time": lambda init, *_: utc_datetime(init.start_time),
}
_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(temporalio.workflow.Info))


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
