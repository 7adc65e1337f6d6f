"""``temporay.converter``: MessagePack payloads through every channel of a real workflow."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import decimal
import enum
import subprocess
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import temporalio.converter
from temporalio.client import Client
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from temporay.cluster.devserver import temporal_cli_path
from temporay.converter import (
    MSGPACK_ENCODING,
    MsgPackPayloadConverter,
    msgpack_data_converter,
)
from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.runtime.isolation.workflows.msgpack_flow import (
    Change,
    Item,
    MsgPackOrderWorkflow,
    Order,
    Priority,
    Status,
    price_order,
)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Inner:
    when: datetime
    day: date
    ids: list[uuid.UUID]
    amount: decimal.Decimal


@dataclasses.dataclass
class Outer:
    inner: Inner
    color: Color
    tags: set[str]
    by_number: dict[int, str]
    naive: datetime
    blob: bytes
    maybe: Inner | None = None


def _outer() -> Outer:
    inner = Inner(
        datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=UTC),
        date(2024, 2, 3),
        [uuid.uuid4(), uuid.uuid4()],
        decimal.Decimal("12.50"),
    )
    return Outer(inner, Color.RED, {"a", "b"}, {1: "one", 2: "two"}, datetime(2020, 1, 1), b"\x00\xff")


def test_round_trip_by_type_hints() -> None:
    converter = msgpack_data_converter.payload_converter
    value = _outer()
    payloads = converter.to_payloads([value, None, b"raw", {"k": [1, 2]}, 7])
    encodings = [p.metadata["encoding"].decode() for p in payloads]
    assert encodings == [MSGPACK_ENCODING, "binary/null", "binary/plain", MSGPACK_ENCODING, MSGPACK_ENCODING]
    back = converter.from_payloads(payloads, [Outer, type(None), bytes, dict[str, list[int]], int])
    assert back == [value, None, b"raw", {"k": [1, 2]}, 7]
    assert type(back[0].inner.when) is datetime and back[0].inner.when.tzinfo is not None
    # Without hints: plain MessagePack values (aware datetimes are Timestamps, decoded as such).
    raw = converter.from_payloads(payloads[:1])[0]
    assert raw["inner"]["when"] == value.inner.when and raw["color"] == "red"


def test_other_encodings_still_decode() -> None:
    json_payloads = temporalio.converter.DataConverter.default.payload_converter.to_payloads(
        [{"name": "x", "count": 2}, [1, 2, 3]]
    )
    assert json_payloads[0].metadata["encoding"] == b"json/plain"
    assert msgpack_data_converter.payload_converter.from_payloads(
        json_payloads, [dict[str, Any], list[int]]
    ) == [{"name": "x", "count": 2}, [1, 2, 3]]


def test_unencodable_values_fall_through() -> None:
    assert MsgPackPayloadConverter().to_payload(object()) is None
    with pytest.raises(TypeError):
        msgpack_data_converter.payload_converter.to_payloads([object()])


def test_bad_data_is_a_clear_error() -> None:
    payload = MsgPackPayloadConverter().to_payload({"a": 1})
    assert payload is not None
    with pytest.raises(RuntimeError, match=MSGPACK_ENCODING):
        MsgPackPayloadConverter().from_payload(payload, int)


def _order() -> Order:
    return Order(
        id=uuid.uuid4(),
        placed=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        status=Status.NEW,
        priority=Priority.HIGH,
        items=[Item("a", 2, 1.25), Item("b", 1, 10.0)],
        notes={"gift": "yes"},
        raw=b"\x01\x02",
    )


@pytest.mark.parametrize("runner_name", ["local", "sdk-sandbox"])
async def test_msgpack_through_every_channel(
    client: Client, task_queue: str, runner_name: str
) -> None:
    runner: WorkflowRunner = (
        LocalWorkflowRunner() if runner_name == "local" else SandboxedWorkflowRunner()
    )
    config = client.config()
    config["data_converter"] = msgpack_data_converter
    msgpack_client = Client(**config)
    order = _order()
    workflow_id = f"msgpack-{runner_name}-{uuid.uuid4()}"
    async with Worker(
        msgpack_client,
        task_queue=task_queue,
        workflows=[MsgPackOrderWorkflow],
        activities=[price_order],
        workflow_runner=runner,
    ):
        handle = await msgpack_client.start_workflow(
            MsgPackOrderWorkflow.run,
            order,
            id=workflow_id,
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        at = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
        await handle.signal(MsgPackOrderWorkflow.change, Change("signalled", at))
        current: Order | None = None
        for _ in range(200):
            current = await handle.query(MsgPackOrderWorkflow.current)
            if current is not None:
                break
            await asyncio.sleep(0.05)
        assert current is not None and current.notes["total"] == "12.50"
        assert current.id == order.id and current.items == order.items
        seen = await handle.query(MsgPackOrderWorkflow.changes_seen)
        assert seen == [Change("signalled", at)]
        updated = await handle.execute_update(
            MsgPackOrderWorkflow.finish, Change("updated", at + timedelta(hours=1))
        )
        assert updated["changes"] == 2 and updated["at"] == at + timedelta(hours=1)
        result = await handle.result()
    assert result.status is Status.DONE and result.priority is Priority.HIGH
    assert result.id == order.id and result.placed == order.placed and result.raw == order.raw
    assert result.notes["signalled"] == at.isoformat()

    # Every payload the workflow exchanged is MessagePack, as the history shows.
    encodings: dict[str, set[str]] = {}

    def note(kind: str, payloads) -> None:
        for payload in payloads.payloads:
            encodings.setdefault(kind, set()).add(payload.metadata["encoding"].decode())

    async for event in handle.fetch_history_events():
        for kind, attrs, field in (
            ("input", "workflow_execution_started_event_attributes", "input"),
            ("activity input", "activity_task_scheduled_event_attributes", "input"),
            ("activity result", "activity_task_completed_event_attributes", "result"),
            ("signal", "workflow_execution_signaled_event_attributes", "input"),
            ("result", "workflow_execution_completed_event_attributes", "result"),
        ):
            if event.HasField(attrs):  # type: ignore[arg-type]
                note(kind, getattr(getattr(event, attrs), field))
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            note("update", event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args)
        if event.HasField("workflow_execution_update_completed_event_attributes"):
            outcome = event.workflow_execution_update_completed_event_attributes.outcome
            note("update result", outcome.success)
    assert encodings == {
        kind: {MSGPACK_ENCODING}
        for kind in (
            "input",
            "activity input",
            "activity result",
            "signal",
            "update",
            "update result",
            "result",
        )
    }

    # ... and so does the CLI.
    target = client.service_client.config.target_host
    shown = subprocess.run(
        [temporal_cli_path(), "workflow", "show", "--workflow-id", workflow_id,
         "--address", target, "--namespace", client.namespace, "--output", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert base64.b64encode(MSGPACK_ENCODING.encode()).decode() in shown
