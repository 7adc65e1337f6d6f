"""A plain workflow module, as the SDK samples write them (used by bench/bench_isolation.py)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow


@dataclasses.dataclass
class OrderInput:
    order_id: str
    amount: float = 0.0


@dataclasses.dataclass
class OrderState:
    status: str = "new"
    events: list[str] = dataclasses.field(default_factory=list)


@workflow.defn
class PlainOrderWorkflow:
    def __init__(self) -> None:
        self.state = OrderState()
        self.approved = False

    @workflow.run
    async def run(self, input: OrderInput) -> str:
        self.state.events.append(f"started {input.order_id}")
        await workflow.wait_condition(lambda: self.approved, timeout=timedelta(days=1))
        return f"{input.order_id}: {self.state.status}"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True
        self.state.status = "approved"

    @workflow.query
    def status(self) -> OrderState:
        return self.state
