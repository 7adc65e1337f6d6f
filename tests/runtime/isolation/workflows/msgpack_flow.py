"""A workflow exchanging rich values through every channel: input, activity, signal, query,
update, result. Run with ``temporay.converter.msgpack_data_converter`` the payloads are
``binary/msgpack``."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow


class Status(enum.Enum):
    NEW = "new"
    DONE = "done"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Item:
    sku: str
    quantity: int
    price: float


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    placed: datetime
    status: Status
    priority: Priority
    items: list[Item]
    notes: dict[str, str] = dataclasses.field(default_factory=dict)
    raw: bytes = b""


@dataclasses.dataclass
class Change:
    note: str
    at: datetime


@activity.defn
async def price_order(order: Order) -> Order:
    assert isinstance(order.id, uuid.UUID) and isinstance(order.placed, datetime)
    assert isinstance(order.status, Status) and isinstance(order.items[0], Item)
    total = sum(i.price * i.quantity for i in order.items)
    return dataclasses.replace(order, notes={**order.notes, "total": f"{total:.2f}"})


@workflow.defn
class MsgPackOrderWorkflow:
    def __init__(self) -> None:
        self.order: Order | None = None
        self.changes: list[Change] = []
        self.done = False

    @workflow.run
    async def run(self, order: Order) -> Order:
        self.order = await workflow.execute_activity(
            price_order, order, start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.wait_condition(lambda: self.done)
        assert self.order is not None
        return dataclasses.replace(
            self.order,
            status=Status.DONE,
            notes={**self.order.notes, **{c.note: c.at.isoformat() for c in self.changes}},
        )

    @workflow.signal
    def change(self, change: Change) -> None:
        assert isinstance(change.at, datetime)
        self.changes.append(change)

    @workflow.query
    def current(self) -> Order | None:
        return self.order

    @workflow.query
    def changes_seen(self) -> list[Change]:
        return self.changes

    @workflow.update
    def finish(self, change: Change) -> dict[str, Any]:
        self.changes.append(change)
        self.done = True
        return {"changes": len(self.changes), "at": change.at, "id": self.order.id if self.order else None}

    @finish.validator
    def validate_finish(self, change: Change) -> None:
        if change.at < datetime(2000, 1, 1, tzinfo=UTC):
            raise ValueError("too old")
