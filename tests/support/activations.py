"""Hand-made workflow activations (``temporalio.bridge.proto.workflow_activation``) for tests
that drive an engine, a runner, a shard or an executor without a server.

``activation`` wraps jobs built by the other helpers. Fields a helper is not given keep their
protobuf defaults (empty workflow ID, seed 0, no timestamp), so a test states exactly the
fields it relies on. Payloads are encoded with the SDK's default payload converter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.converter

Job = wfact.WorkflowActivationJob


def _payload_converter() -> temporalio.converter.PayloadConverter:
    return temporalio.converter.default().payload_converter


def activation(
    run_id: str, *jobs: Job, at: datetime | int | None = None
) -> wfact.WorkflowActivation:
    """An activation of ``run_id`` carrying ``jobs`` in the given order, stamped ``at`` (a
    datetime, or whole seconds since the epoch; no timestamp if ``None``)."""
    act = wfact.WorkflowActivation(run_id=run_id, jobs=list(jobs))
    if isinstance(at, datetime):
        act.timestamp.FromDatetime(at)
    elif at is not None:
        act.timestamp.FromSeconds(at)
    return act


def initialize(
    workflow_type: str | type,
    *arguments: Any,
    workflow_id: str = "",
    randomness_seed: int = 0,
) -> Job:
    """An ``InitializeWorkflow`` job; a class stands for its ``__name__`` as the workflow type.
    ``arguments`` are the run's arguments (none: no payloads)."""
    name = workflow_type if isinstance(workflow_type, str) else workflow_type.__name__
    return Job(
        initialize_workflow=wfact.InitializeWorkflow(
            workflow_type=name,
            workflow_id=workflow_id,
            arguments=_payload_converter().to_payloads(list(arguments)),
            randomness_seed=randomness_seed,
        )
    )


def fire_timer(seq: int) -> Job:
    """The timer started by command ``seq`` fired."""
    return Job(fire_timer=wfact.FireTimer(seq=seq))


def resolve_activity(seq: int, value: Any) -> Job:
    """The activity scheduled by command ``seq`` completed with ``value``."""
    job = Job()
    job.resolve_activity.seq = seq
    job.resolve_activity.result.completed.result.CopyFrom(_payload_converter().to_payload(value))
    return job


def cancel_workflow(reason: str = "test") -> Job:
    """The workflow was asked to cancel."""
    return Job(cancel_workflow=wfact.CancelWorkflow(reason=reason))


def signal(name: str, *args: Any, originating_event_id: int = 0) -> Job:
    """Signal ``name`` with ``args``."""
    job = Job()
    job.signal_workflow.signal_name = name
    job.signal_workflow.originating_event_id = originating_event_id
    job.signal_workflow.input.extend(_payload_converter().to_payloads(list(args)))
    return job


def update(name: str, update_id: str, *args: Any, run_validator: bool = True) -> Job:
    """Update ``name`` with ``args``; ``update_id`` is also its protocol instance ID."""
    job = Job()
    job.do_update.name = name
    job.do_update.id = update_id
    job.do_update.protocol_instance_id = update_id
    job.do_update.run_validator = run_validator
    job.do_update.input.extend(_payload_converter().to_payloads(list(args)))
    return job


def evict(message: str = "test") -> Job:
    """The run is removed from the cache (an eviction)."""
    return Job(remove_from_cache=wfact.RemoveFromCache(message=message))
