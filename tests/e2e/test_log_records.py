"""The user's logging sees the same records of workflow runs under the SDK's runner,
``LocalWorkflowRunner`` and ``RayPlugin``: the SDK runner's task-failure and dropped-signal records
with their message, level, traceback and extras, ``workflow.logger``'s records with theirs and
none on replay, and the workflow code's own logger, all through the Worker process's handlers,
not printed by the shard. One fresh process runs all three (tests/e2e/scenarios/log_records.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def seen() -> tuple[dict[str, list[dict[str, Any]]], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.scenarios.log_records"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=500,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1]), done.stderr


def _distinct(records: list[dict[str, Any]]) -> set[str]:
    return {json.dumps({k: v for k, v in r.items() if k != "temporay_shard"}, sort_keys=True)
            for r in records}


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_the_same_records_as_the_sdk_runner(
    seen: tuple[dict[str, list[dict[str, Any]]], str], kind: str
) -> None:
    outcome, _ = seen
    sdk, ours = outcome["sdk"], outcome[kind]
    assert _distinct(ours) == _distinct(sdk)
    by_message = {r["message"]: r for r in ours}
    failure = next(r for r in ours if r["message"].startswith("Failed activation"))
    assert failure["name"] == "temporalio.worker._workflow_instance"
    assert failure["level"] == "WARNING"
    assert failure["__temporal_error_identifier"] == "WorkflowTaskFailure"
    assert failure["temporal_workflow"]["workflow_type"] == "FailingTaskWorkflow"
    assert failure["exception"] == "RuntimeError: boom in the workflow task"
    dropped = next(r for r in ours if r["message"].startswith("Failed deserializing signal"))
    assert dropped["level"] == "ERROR" and dropped["exception"]
    assert dropped["temporal_workflow"]["workflow_id"] == "logs-signalled"
    started = next(m for m in by_message if m.startswith("starting for ray"))
    assert by_message[started]["custom"] == {"n": 7}


@pytest.mark.parametrize("kind", ["sdk", "local", "ray"])
def test_workflow_logger_records_are_not_repeated_on_replay(
    seen: tuple[dict[str, list[dict[str, Any]]], str], kind: str
) -> None:
    # max_cached_workflows=0: every task after the first replays the history from the start.
    records = seen[0][kind]
    workflow_logger = [r["message"].split(" (")[0] for r in records
                       if r["name"] == "temporalio.workflow"]
    assert sorted(workflow_logger) == ["activity said RAY", "done", "starting for ray"]


def test_shard_records_reach_the_worker_process_handlers_and_are_not_printed_by_ray(
    seen: tuple[dict[str, list[dict[str, Any]]], str],
) -> None:
    outcome, stderr = seen
    assert outcome["ray"] and all(r.get("temporay_shard", "").startswith("temporay-shard-")
                                  for r in outcome["ray"])
    assert not any("temporay_shard" in r for r in outcome["sdk"] + outcome["local"])
    # The user's basicConfig format printed each shard record once; Ray forwarded none.
    printed = [line for line in stderr.splitlines() if "activity said RAY" in line]
    assert len(printed) == 3, printed  # one per runner
    assert all(line.startswith("WARNING temporalio.workflow: ") for line in printed), printed
