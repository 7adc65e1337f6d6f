"""The client's payload codec sees exactly the same serialization contexts under our runner as under
the SDK's own ``UnsandboxedWorkflowRunner``: the Worker asks the run's instance for them on its
event loop, and ours answers from the snapshot its shard returned with each completion."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import temporalio.converter
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from bench.workloads import hosting as wf
from temporay import RayWorkflowRunner

pytestmark = pytest.mark.timeout(300)


class RecordingCodec(PayloadCodec, WithSerializationContext):
    """Adds a marker byte (so double or missing encoding breaks payloads) and records contexts."""

    def __init__(self, log: list[tuple[str, Any]], context: SerializationContext | None = None):
        self._log = log
        self._context = context

    def with_context(self, context: SerializationContext) -> RecordingCodec:
        return RecordingCodec(self._log, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self._log.append(("encode", self._context))
        return [
            Payload(metadata={**p.metadata, "codec": b"rec"}, data=b"\x01" + p.data)
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self._log.append(("decode", self._context))
        out = []
        for p in payloads:
            assert p.metadata.get("codec") == b"rec", "payload was not encoded by our codec"
            metadata = {k: v for k, v in p.metadata.items() if k != "codec"}
            out.append(Payload(metadata=metadata, data=p.data[1:]))
        return out


def _normalise(context: Any, prefix: str) -> Any:
    if isinstance(context, WorkflowSerializationContext):
        return dataclasses.replace(context, workflow_id=context.workflow_id.replace(prefix, "<id>"))
    if isinstance(context, ActivitySerializationContext):
        return dataclasses.replace(
            context,
            workflow_id=(context.workflow_id or "").replace(prefix, "<id>"),
            activity_task_queue=(context.activity_task_queue or "").replace(prefix, "<id>"),
        )
    return context


async def _run_corpus(client: Client, runner: WorkflowRunner, prefix: str) -> Counter[Any]:
    log: list[tuple[str, Any]] = []
    converter = dataclasses.replace(
        temporalio.converter.DataConverter.default, payload_codec=RecordingCodec(log)
    )
    config = client.config()
    config["data_converter"] = converter
    codec_client = Client(**config)
    task_queue = f"{prefix}-tq"
    async with Worker(
        codec_client,
        task_queue=task_queue,
        workflows=wf.ALL_WORKFLOWS,
        activities=wf.ALL_ACTIVITIES,
        workflow_runner=runner,
    ):
        order = wf.Order("o-7", 7)
        await codec_client.execute_workflow(
            wf.ActivityWorkflow.run, order, id=f"{prefix}-act", task_queue=task_queue
        )
        await codec_client.execute_workflow(
            wf.LocalActivityWorkflow.run, order, id=f"{prefix}-lact", task_queue=task_queue
        )
        await codec_client.execute_workflow(
            wf.ParentWorkflow.run, 2, id=f"{prefix}-parent", task_queue=task_queue
        )
        handle = await codec_client.start_workflow(
            wf.SignalQueryWorkflow.run, id=f"{prefix}-sig", task_queue=task_queue
        )
        await handle.signal(wf.SignalQueryWorkflow.add, "x")
        assert await handle.query(wf.SignalQueryWorkflow.items) == ["x"]
        await handle.signal(wf.SignalQueryWorkflow.finish)
        await handle.result()
        upd = await codec_client.start_workflow(
            wf.UpdateWorkflow.run, id=f"{prefix}-upd", task_queue=task_queue
        )
        assert await upd.execute_update(wf.UpdateWorkflow.add, 3) == 3
        await upd.signal(wf.UpdateWorkflow.finish)
        await upd.result()
        with pytest.raises(WorkflowFailureError):
            await codec_client.execute_workflow(
                wf.FailingWorkflow.run, "activity", id=f"{prefix}-fail", task_queue=task_queue
            )
    return Counter((op, _normalise(ctx, prefix)) for op, ctx in log)


async def test_codec_sees_the_same_contexts_as_under_the_sdk_runner(
    client: Client, ray_cluster: None
) -> None:
    sdk = await _run_corpus(client, UnsandboxedWorkflowRunner(), f"sdk-{uuid.uuid4().hex[:6]}")
    with RayWorkflowRunner(shards=2) as runner:
        ours = await _run_corpus(client, runner, f"ray-{uuid.uuid4().hex[:6]}")
    assert any(isinstance(c, ActivitySerializationContext) for _, c in sdk), sdk
    assert ours == sdk
