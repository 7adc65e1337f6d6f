"""Histories recorded by an official Python worker (the SDK's own runner, see
``tests/differential/record_histories.py``) replay on temporay's engine, and changed code is
caught as nondeterminism exactly as the SDK catches it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import temporalio.api.enums.v1
import temporalio.client
from temporalio import workflow

from temporay.runtime.history import load_history, load_history_file, replay, save_history
from tests.differential.harness import normalize_text
from tests.differential.record_histories import HISTORY_DIR
from tests.differential.scenarios import BASE_SCENARIOS

MANIFEST: dict[str, dict[str, str]] = json.loads((HISTORY_DIR / "manifest.json").read_text())
SCENARIOS = {s.name: s for s in BASE_SCENARIOS}


def _replay_kwargs(scenario_name: str) -> dict[str, Any]:
    scenario = SCENARIOS[scenario_name]
    return {
        k: v
        for k, v in scenario.worker_kwargs.items()
        if k in ("interceptors", "workflow_failure_exception_types")
    }


async def _outcome(history: temporalio.client.WorkflowHistory, scenario: str, engine: str) -> Any:
    results = await replay(
        [history],
        SCENARIOS[scenario].workflows,
        engine=engine,
        raise_on_replay_failure=False,
        **_replay_kwargs(scenario),
    )
    return {run_id: normalize_text(str(err)) for run_id, err in results.replay_failures.items()}


def test_fixtures_exist() -> None:
    assert len(MANIFEST) >= 40


# Histories the SDK itself cannot replay cleanly (core reports nondeterminism for a local
# activity that timed out); temporay must then fail in exactly the same way.
SDK_REPLAY_FAILS = {"local_activities-00.json"}


@pytest.mark.parametrize("name", sorted(MANIFEST))
async def test_sdk_recorded_history_replays_on_temporay(name: str) -> None:
    history = load_history_file(HISTORY_DIR / name)
    scenario = MANIFEST[name]["scenario"]
    ours = await _outcome(history, scenario, "temporay")
    sdk = await _outcome(history, scenario, "sdk")
    assert ours == sdk
    assert bool(sdk) == (name in SDK_REPLAY_FAILS), sdk


@workflow.defn(name="ReturnWorkflow")
class ChangedReturnWorkflow:
    """ReturnWorkflow's type with different code: it sleeps first."""

    @workflow.run
    async def run(self, name: str, count: int) -> str:
        await workflow.sleep(1)
        return f"{name}:{count}"


async def test_changed_code_is_nondeterministic_on_both_engines() -> None:
    name = next(n for n, m in MANIFEST.items() if m["workflow_type"] == "ReturnWorkflow")
    history = load_history_file(HISTORY_DIR / name)
    outcomes = {}
    for engine in ("sdk", "temporay"):
        results = await replay(
            [history], [ChangedReturnWorkflow], engine=engine, raise_on_replay_failure=False
        )
        outcomes[engine] = [normalize_text(str(e)) for e in results.replay_failures.values()]
    assert outcomes["sdk"], "the SDK should detect the change"
    assert outcomes["temporay"] == outcomes["sdk"]


def test_history_round_trips(tmp_path: Path) -> None:
    name = sorted(MANIFEST)[0]
    history = load_history_file(HISTORY_DIR / name)
    assert history.workflow_id
    for suffix in (".json", ".bin"):
        path = tmp_path / f"h{suffix}"
        save_history(history, path)
        again = load_history_file(path) if suffix == ".json" else load_history(path)
        assert list(again.events) == list(history.events)
    # JSON text as exported by the UI/CLI (no workflow id).
    text = json.dumps(
        {k: v for k, v in json.loads((HISTORY_DIR / name).read_text()).items() if k != "workflowId"}
    )
    assert list(load_history(text).events) == list(history.events)


async def test_truncated_history_replays_on_both() -> None:
    """A history cut after a workflow task completed (a run still open) replays the same."""
    name = next(n for n, m in MANIFEST.items() if m["scenario"] == "signals")
    history = load_history_file(HISTORY_DIR / name)
    completed = temporalio.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    cut = max(i for i, e in enumerate(history.events[:-3]) if e.event_type == completed)
    partial = temporalio.client.WorkflowHistory(
        history.workflow_id, copy.deepcopy(history.events[: cut + 1])
    )
    assert await _outcome(partial, "signals", "temporay") == await _outcome(
        partial, "signals", "sdk"
    )
