"""Converters keep seeing real ``datetime`` instances in modules that bind the shimmed one."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.runtime.isolation.workflows import converters


async def test_dataclass_converter_sees_real_datetimes(client: Client, task_queue: str) -> None:
    event = converters.Event("in", datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[converters.DataclassDatetimeWorkflow],
        activities=[converters.echo_event],
        workflow_runner=LocalWorkflowRunner(),
    ):
        result = await client.execute_workflow(
            converters.DataclassDatetimeWorkflow.run,
            event,
            id=f"dc-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )
    assert {k: v for k, v in result.items() if k != "back"} == {
        "input_real": True,
        "constructed_real": True,
        "activity_result_real": True,
        "now_real": True,
    }
    assert result["back"]["name"] == "made!"
    assert result["back"]["when"] == "2020-01-02T00:00:00+00:00"


async def test_pydantic_converter_sees_real_datetimes(client: Client, task_queue: str) -> None:
    config = client.config()
    config["data_converter"] = pydantic_data_converter
    pydantic_client = Client(**config)
    reading = converters.Reading(sensor="s", when=datetime(2022, 1, 1, tzinfo=UTC))
    async with Worker(
        pydantic_client,
        task_queue=task_queue,
        workflows=[converters.PydanticDatetimeWorkflow],
        activities=[converters.echo_reading],
        workflow_runner=LocalWorkflowRunner(),
    ):
        result = await pydantic_client.execute_workflow(
            converters.PydanticDatetimeWorkflow.run,
            reading,
            id=f"pyd-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=30),
        )
    assert result.checks == {
        "input_real": True,
        "constructed_real": True,
        "history_real": True,
        "activity_result_real": True,
        "now_is_workflow_now": True,
    }
    assert type(result.back.when) is datetime and result.back.sensor == "made!"
    assert result.back.history == [reading.when]


def test_event_type_is_unchanged_outside_runs() -> None:
    # The module's own classes are what the client and activities use.
    assert dataclasses.fields(converters.Event)[1].type in ("datetime", datetime)
    assert converters.date is date
