"""Job-set ordering in a crowded first workflow task: signals, updates (accepted and rejected),
cancellation and queries that all arrived before any worker was polling."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage

from ..harness import Drive, Scenario, describe_error, outcome_of


@workflow.defn
class PileupWorkflow:
    @workflow.init
    def __init__(self, label: str) -> None:
        self.log: list[str] = [f"init {label}"]

    @workflow.signal
    def sig(self, value: int) -> None:
        self.log.append(f"signal {value}")

    @workflow.signal
    async def async_sig(self, value: int) -> None:
        self.log.append(f"async signal {value} start")
        await asyncio.sleep(0)
        self.log.append(f"async signal {value} end")

    @workflow.update
    async def upd(self, value: int) -> int:
        self.log.append(f"update {value} start")
        await asyncio.sleep(0)
        self.log.append(f"update {value} end")
        return len(self.log)

    @upd.validator
    def check(self, value: int) -> None:
        if value < 0:
            raise ValueError("negative")

    @workflow.query
    def events(self) -> list[str]:
        return self.log

    @workflow.run
    async def run(self, label: str) -> list[str]:
        self.log.append("run start")
        try:
            await asyncio.sleep(0)
            self.log.append("run after first yield")
            await workflow.wait_condition(
                lambda: len(self.log) >= 14 and workflow.all_handlers_finished()
            )
        except asyncio.CancelledError:
            self.log.append("run cancelled")
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self.log
        return self.log


async def _send_update(handle: Any, value: int) -> Any:
    try:
        update = await handle.start_update(
            PileupWorkflow.upd, value, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        return await update.result()
    except WorkflowUpdateFailedError as err:
        return describe_error(err.cause)


async def _before_worker(d: Drive) -> None:
    handles = {
        label: await d.start(PileupWorkflow.run, label, name=label)
        for label in ("busy", "cancelled")
    }
    busy = handles["busy"]
    await busy.signal(PileupWorkflow.sig, 1)
    await busy.signal(PileupWorkflow.async_sig, 2)
    await busy.signal(PileupWorkflow.sig, 3)
    updates = []
    for value in (10, -1, 20):
        updates.append(asyncio.create_task(_send_update(busy, value)))
        # One at a time, so the server admits them in this order.
        await asyncio.sleep(0.2)
    d.state["updates"] = updates
    cancelled = handles["cancelled"]
    await cancelled.signal(PileupWorkflow.sig, 7)
    await cancelled.cancel()
    d.state["handles"] = handles
    # Let the update requests reach the server before a worker exists.
    await asyncio.sleep(0.5)


async def _drive(d: Drive) -> Any:
    handles = d.state["handles"]
    updates = [await task for task in d.state["updates"]]
    busy = handles["busy"]
    await busy.signal(PileupWorkflow.sig, 4)
    await busy.signal(PileupWorkflow.async_sig, 5)
    return {
        "updates": updates,
        "busy": await outcome_of(busy),
        "cancelled": await outcome_of(handles["cancelled"]),
        "query": await busy.query(PileupWorkflow.events),
    }


SCENARIOS = [
    Scenario("first_task_pileup", [PileupWorkflow], _drive, before_worker=_before_worker),
]
