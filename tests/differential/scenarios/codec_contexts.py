"""Serialization contexts: the Worker encodes each command's payloads with the context our
instance names for it (``get_serialization_context`` / ``get_external_store_context``). A codec
that stamps its context into every payload makes those answers visible in the history."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import temporalio.api.common.v1
import temporalio.converter
from google.protobuf.message import Message
from temporalio import workflow

from ..harness import Drive, Scenario
from .activities import echo
from .children import ChildWorkflow

_ID_PREFIX = re.compile(r"diff-.*?-[0-9a-f]{8}")


def describe_context(context: temporalio.converter.SerializationContext | None) -> str:
    if context is None:
        return "none"
    text = repr(context)
    return _ID_PREFIX.sub("<queue>", text)


class ContextStampingCodec(
    temporalio.converter.PayloadCodec, temporalio.converter.WithSerializationContext
):
    def __init__(self, context: temporalio.converter.SerializationContext | None = None) -> None:
        self.context = context

    def with_context(
        self, context: temporalio.converter.SerializationContext
    ) -> ContextStampingCodec:
        return ContextStampingCodec(context)

    async def encode(
        self, payloads: Sequence[temporalio.api.common.v1.Payload]
    ) -> list[temporalio.api.common.v1.Payload]:
        out = []
        for payload in payloads:
            stamped = temporalio.api.common.v1.Payload()
            stamped.CopyFrom(payload)
            stamped.metadata["temporay-context"] = describe_context(self.context).encode()
            out.append(stamped)
        return out

    async def decode(
        self, payloads: Sequence[temporalio.api.common.v1.Payload]
    ) -> list[temporalio.api.common.v1.Payload]:
        out = []
        for payload in payloads:
            plain = temporalio.api.common.v1.Payload()
            plain.CopyFrom(payload)
            if "temporay-context" in plain.metadata:
                del plain.metadata["temporay-context"]
            out.append(plain)
        return out


CONVERTER = temporalio.converter.DataConverter(payload_codec=ContextStampingCodec())


@workflow.defn
class ContextsWorkflow:
    @workflow.run
    async def run(self, target: str) -> str:
        await workflow.execute_activity(echo, "remote", start_to_close_timeout=timedelta(seconds=5))
        await workflow.execute_activity(
            echo,
            "other-id",
            start_to_close_timeout=timedelta(seconds=5),
            activity_id="explicit-id",
            task_queue=workflow.info().task_queue,
        )
        await workflow.execute_local_activity(
            echo, "local", start_to_close_timeout=timedelta(seconds=5)
        )
        await workflow.execute_child_workflow(
            ChildWorkflow.run, "ok", id=f"{workflow.info().workflow_id}-child"
        )
        await workflow.get_external_workflow_handle(target).signal(ChildWorkflow.poke, "hello")
        workflow.upsert_memo({"memo": "value"})
        return "finished"


def _stamps(message: Message, out: list[str]) -> None:
    if isinstance(message, temporalio.api.common.v1.Payload):
        stamp = message.metadata.get("temporay-context")
        if stamp is not None:
            out.append(stamp.decode())
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            if field.message_type.GetOptions().map_entry:
                if field.message_type.fields_by_name["value"].message_type is not None:
                    for item in value.values():
                        _stamps(item, out)
            else:
                for item in value:
                    _stamps(item, out)
        else:
            _stamps(value, out)


async def _drive(d: Drive) -> Any:
    target = await d.start(ChildWorkflow.run, "wait_signal", name="target")
    handle = await d.start(ContextsWorkflow.run, target.id, name="contexts")
    result = await handle.result()
    await target.result()
    stamps: list[str] = []
    for h in (handle, target):
        for event in (await h.fetch_history()).events:
            _stamps(event, stamps)
    return {"result": result, "stamps": stamps}


SCENARIOS = [
    Scenario(
        "codec_serialization_contexts",
        [ContextsWorkflow, ChildWorkflow],
        _drive,
        [echo],
        data_converter=CONVERTER,
    ),
]
