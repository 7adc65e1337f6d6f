"""End to end: temporay's engine selected with ``engine="temporay"`` in ``LocalWorkflowRunner``
and ``RayWorkflowRunner``, driven by the differential corpus's own drivers, must show clients
exactly what the SDK's own runner shows them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner

from temporay.runtime.engine.runner import TemporayWorkflowRunner
from temporay.runtime.engines import resolve_engine
from tests.differential.harness import Scenario, observe
from tests.differential.scenarios import BASE_SCENARIOS

pytestmark = pytest.mark.timeout(600)

# Scenarios whose observations are fully engine-independent and need no in-process tricks
# (patches_evolving changes module state mid-run, which per-run module isolation rightly hides).
E2E_SCENARIOS = [
    s
    for s in BASE_SCENARIOS
    if s.name
    in {
        "return",
        "failures",
        "task_failure",
        "init",
        "dynamic_workflow",
        "memo",
        "search_attributes",
        "activity_call_styles",
        "activity_failures",
        "activity_cancel",
        "timer_timeouts",
        "wait_condition",
        "wait_primitives",
        "signals",
        "signals_buffered",
        "queries",
        "updates",
        "children",
        "continue_as_new",
        "cancel_handled",
        "cancel_during_activity",
        "patches",
        "local_activity_backoff",
        "interceptors",
        "undecodable_payloads",
    }
]

_expected: dict[str, Any] = {}


async def _expected_observation(client: Client, scenario: Scenario) -> Any:
    if scenario.name not in _expected:
        _expected[scenario.name] = await observe(
            client, scenario, UnsandboxedWorkflowRunner(), "sdk"
        )
    return _expected[scenario.name]


def test_engine_name_resolves_to_our_runner() -> None:
    assert isinstance(resolve_engine("temporay"), TemporayWorkflowRunner)


@pytest.mark.parametrize("scenario", E2E_SCENARIOS, ids=str)
async def test_local_runner_with_temporay_engine(client: Client, scenario: Scenario) -> None:
    from temporay.runtime.local_runner import LocalWorkflowRunner

    expected = await _expected_observation(client, scenario)
    actual = await observe(client, scenario, LocalWorkflowRunner(engine="temporay"), "local")
    assert actual == expected


@pytest.mark.parametrize("scenario", E2E_SCENARIOS, ids=str)
async def test_ray_runner_with_temporay_engine(
    client: Client, scenario: Scenario, ray_cluster: None
) -> None:
    from temporay import RayWorkflowRunner

    expected = await _expected_observation(client, scenario)
    async with RayWorkflowRunner(shards=1, engine="temporay") as runner:
        for _ in range(1200):
            if runner.started:
                break
            await asyncio.sleep(0.05)
        actual = await observe(client, scenario, runner, "ray")
    assert actual == expected
