"""Conversions between runtime values and the wire messages of ``temporay.proto.hosting``."""

from __future__ import annotations

import pickle
from typing import NamedTuple

import temporalio.converter
from temporalio.converter import (
    StorageDriverActivityInfo,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
)

from temporay.proto import hosting as pb
from temporay.runtime.engine.command_contexts import CommandContexts, ContextDelta
from temporay.runtime.hosting.externs import MetricInstrument, MetricOp


class RunKey(NamedTuple):
    """(router id, run id, incarnation): see ``hosting.RunKey``."""

    router_id: str
    run_id: str
    incarnation: int

    def to_proto(self, out: pb.RunKey | None = None) -> pb.RunKey:
        msg = out if out is not None else pb.RunKey()
        msg.router_id = self.router_id
        msg.run_id = self.run_id
        msg.incarnation = self.incarnation
        return msg

    @staticmethod
    def from_proto(msg: pb.RunKey) -> RunKey:
        return RunKey(msg.router_id, msg.run_id, msg.incarnation)


# --- serialization contexts ----------------------------------------------------------------------


def serialization_to_proto(
    ctx: temporalio.converter.SerializationContext, out: pb.SerializationContext
) -> None:
    if type(ctx) is temporalio.converter.WorkflowSerializationContext:
        out.workflow.namespace = ctx.namespace
        out.workflow.workflow_id = ctx.workflow_id
    elif type(ctx) is temporalio.converter.ActivitySerializationContext:
        act = out.activity
        act.namespace = ctx.namespace
        act.is_local = ctx.is_local
        for name in (
            "activity_id",
            "activity_type",
            "activity_task_queue",
            "workflow_id",
            "workflow_type",
        ):
            value = getattr(ctx, name)
            if value is not None:
                setattr(act, name, value)
    elif type(ctx) is temporalio.converter.NexusSerializationContext:
        out.nexus.endpoint = ctx.endpoint
        out.nexus.service = ctx.service
        out.nexus.operation = ctx.operation
    else:
        out.pickled = pickle.dumps(ctx)


def serialization_from_proto(
    msg: pb.SerializationContext,
) -> temporalio.converter.SerializationContext | None:
    kind = msg.WhichOneof("kind")
    if kind == "workflow":
        return temporalio.converter.WorkflowSerializationContext(
            namespace=msg.workflow.namespace, workflow_id=msg.workflow.workflow_id
        )
    if kind == "activity":
        a = msg.activity
        return temporalio.converter.ActivitySerializationContext(
            namespace=a.namespace,
            activity_id=a.activity_id if a.HasField("activity_id") else None,
            activity_type=a.activity_type if a.HasField("activity_type") else None,
            activity_task_queue=(
                a.activity_task_queue if a.HasField("activity_task_queue") else None
            ),
            workflow_id=a.workflow_id if a.HasField("workflow_id") else None,
            workflow_type=a.workflow_type if a.HasField("workflow_type") else None,
            is_local=a.is_local,
        )
    if kind == "nexus":
        return temporalio.converter.NexusSerializationContext(
            endpoint=msg.nexus.endpoint, service=msg.nexus.service, operation=msg.nexus.operation
        )
    if kind == "pickled":
        value = pickle.loads(msg.pickled)
        assert isinstance(value, temporalio.converter.SerializationContext)
        return value
    return None


def store_to_proto(ctx: StorageDriverStoreContext, out: pb.StoreContext) -> None:
    target = ctx.target
    if target is None:
        out.target_kind = pb.StoreContext.TARGET_NONE
        return
    out.target_kind = (
        pb.StoreContext.TARGET_WORKFLOW
        if isinstance(target, StorageDriverWorkflowInfo)
        else pb.StoreContext.TARGET_ACTIVITY
    )
    out.namespace = target.namespace
    for name in ("id", "run_id", "type"):
        value = getattr(target, name)
        if value is not None:
            setattr(out, name, value)


def store_from_proto(msg: pb.StoreContext) -> StorageDriverStoreContext:
    if msg.target_kind == pb.StoreContext.TARGET_NONE:
        return StorageDriverStoreContext(target=None)
    cls = (
        StorageDriverWorkflowInfo
        if msg.target_kind == pb.StoreContext.TARGET_WORKFLOW
        else StorageDriverActivityInfo
    )
    return StorageDriverStoreContext(
        target=cls(
            namespace=msg.namespace,
            id=msg.id if msg.HasField("id") else None,
            run_id=msg.run_id if msg.HasField("run_id") else None,
            type=msg.type if msg.HasField("type") else None,
        )
    )


def delta_to_proto(delta: ContextDelta, out: pb.ContextDelta) -> None:
    if delta.default_serialization is not None:
        serialization_to_proto(delta.default_serialization, out.default_serialization)
    if delta.default_store is not None:
        store_to_proto(delta.default_store, out.default_store)
    for entry in delta.commands:
        cmd = out.commands.add()
        cmd.command_type, cmd.seq = entry.key
        if entry.serialization is not None:
            serialization_to_proto(entry.serialization, cmd.serialization)
        if entry.store is not None:
            store_to_proto(entry.store, cmd.store)


def delta_from_proto(msg: pb.ContextDelta) -> ContextDelta:
    return ContextDelta(
        default_serialization=(
            serialization_from_proto(msg.default_serialization)
            if msg.HasField("default_serialization")
            else None
        ),
        default_store=(
            store_from_proto(msg.default_store) if msg.HasField("default_store") else None
        ),
        commands=tuple(
            CommandContexts(
                key=(cmd.command_type, cmd.seq),
                serialization=(
                    serialization_from_proto(cmd.serialization)
                    if cmd.HasField("serialization")
                    else None
                ),
                store=store_from_proto(cmd.store) if cmd.HasField("store") else None,
            )
            for cmd in msg.commands
        ),
    )


# --- metrics -------------------------------------------------------------------------------------


def _attributes_to_proto(attributes: tuple[tuple[str, object], ...], out: object) -> None:
    for key, value in attributes:
        attr = out.add()  # type: ignore[attr-defined]
        attr.key = key
        if isinstance(value, bool):
            attr.bool_value = value
        elif isinstance(value, int):
            attr.int_value = value
        elif isinstance(value, float):
            attr.float_value = value
        else:
            attr.string_value = str(value)


def _attributes_from_proto(msgs: object) -> tuple[tuple[str, str | int | float | bool], ...]:
    return tuple(
        (a.key, getattr(a, a.WhichOneof("value") or "string_value"))
        for a in msgs  # type: ignore[attr-defined]
    )


def metric_op_to_proto(op: MetricOp, out: pb.MetricOp) -> None:
    inst = out.instrument
    inst.kind = op.instrument.kind
    inst.name = op.instrument.name
    if op.instrument.description is not None:
        inst.description = op.instrument.description
    if op.instrument.unit is not None:
        inst.unit = op.instrument.unit
    _attributes_to_proto(op.instrument.attributes, inst.attributes)
    if isinstance(op.value, float):
        out.float_value = op.value
    else:
        out.int_value = op.value
    _attributes_to_proto(op.attributes, out.attributes)


def metric_op_from_proto(msg: pb.MetricOp) -> MetricOp:
    inst = msg.instrument
    value: int | float = (
        msg.float_value if msg.WhichOneof("value") == "float_value" else msg.int_value
    )
    return MetricOp(
        instrument=MetricInstrument(
            kind=inst.kind,
            name=inst.name,
            description=inst.description if inst.HasField("description") else None,
            unit=inst.unit if inst.HasField("unit") else None,
            attributes=_attributes_from_proto(inst.attributes),
        ),
        value=value,
        attributes=_attributes_from_proto(msg.attributes),
    )
