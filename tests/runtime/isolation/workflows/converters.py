"""Payload types with datetime fields, in a module that binds the shimmed ``datetime``: the
converters must still produce (and receive) real ``datetime`` instances."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pydantic
from temporalio import activity, workflow


@dataclasses.dataclass
class Event:
    name: str
    when: datetime
    day: date | None = None


class Reading(pydantic.BaseModel):
    sensor: str
    when: datetime
    history: list[datetime] = []


@activity.defn
async def echo_event(event: Event) -> Event:
    assert type(event.when) is datetime, type(event.when)
    return dataclasses.replace(event, name=event.name + "!")


@activity.defn
async def echo_reading(reading: Reading) -> Reading:
    assert type(reading.when) is datetime, type(reading.when)
    return reading.model_copy(update={"sensor": reading.sensor + "!"})


def _real(value: object) -> bool:
    # workflow.now() comes from temporalio (a shared module): always the real class.
    return type(value) is type(workflow.now())


@workflow.defn
class DataclassDatetimeWorkflow:
    @workflow.run
    async def run(self, event: Event) -> dict[str, Any]:
        made = Event("made", datetime(2020, 1, 2, tzinfo=UTC))
        back = await workflow.execute_activity(
            echo_event, made, start_to_close_timeout=timedelta(seconds=30)
        )
        return {
            "input_real": _real(event.when),
            "constructed_real": _real(made.when),
            "activity_result_real": _real(back.when),
            "now_real": _real(datetime.now()),
            "back": back,
        }


class PydanticResult(pydantic.BaseModel):
    checks: dict[str, bool]
    back: Reading


@workflow.defn
class PydanticDatetimeWorkflow:
    @workflow.run
    async def run(self, reading: Reading) -> PydanticResult:
        made = Reading(sensor="made", when=datetime.now(UTC), history=[reading.when])
        made_at = workflow.now()
        back = await workflow.execute_activity(
            echo_reading, made, start_to_close_timeout=timedelta(seconds=30)
        )
        checks = {
            "input_real": _real(reading.when),
            "constructed_real": _real(made.when),
            "history_real": all(_real(h) for h in made.history),
            "activity_result_real": _real(back.when),
            "now_is_workflow_now": made.when == made_at,
        }
        return PydanticResult(checks=checks, back=back)
