"""Record histories with the SDK's own runner (an official Python worker) as test fixtures.

    python -m tests.differential.record_histories

runs a selection of differential scenarios on the SDK's ``UnsandboxedWorkflowRunner`` against a
fresh dev server and saves every run's history under ``tests/differential/histories/`` (JSON, as
the UI and CLI export them, plus the workflow id). ``tests/runtime/engine/test_histories.py`` replays them
on our engine. Re-record only when the corpus changes; the files are the point of reference.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.worker import UnsandboxedWorkflowRunner

from temporay.cluster.devserver import start_dev_server
from temporay.runtime.history import fetch_history, save_history
from tests.conftest import TEST_SEARCH_ATTRIBUTES

from .harness import RecordingRunner, observe
from .scenarios import BASE_SCENARIOS

HISTORY_DIR = Path(__file__).parent / "histories"

RECORDED_SCENARIOS = (
    "return",
    "failures",
    "memo",
    "search_attributes",
    "activity_call_styles",
    "activity_failures",
    "activity_cancel",
    "activity_cancel_completed",
    "timer_timeouts",
    "timer_cancel",
    "wait_primitives",
    "signals",
    "signals_buffered",
    "signal_with_start",
    "updates",
    "children",
    "children_cancel",
    "continue_as_new",
    "cancel_handled",
    "cancel_during_activity",
    "patches",
    "local_activities",
    "local_activity_backoff",
    "local_activity_cancel",
    "interceptors",
)


async def record() -> None:
    HISTORY_DIR.mkdir(exist_ok=True)
    manifest: dict[str, dict[str, str]] = {}
    env = await start_dev_server(search_attributes=TEST_SEARCH_ATTRIBUTES)  # type: ignore[arg-type]
    try:
        for scenario in BASE_SCENARIOS:
            if scenario.name not in RECORDED_SCENARIOS:
                continue
            runner = RecordingRunner(UnsandboxedWorkflowRunner())
            await observe(env.client, scenario, runner, "rec")
            seen: set[tuple[str, str]] = set()
            for index, instance in enumerate(runner.snapshot()):
                key = (instance.workflow_id, instance.run_id)
                if key in seen:
                    continue
                seen.add(key)
                history = await fetch_history(env.client, instance.workflow_id, instance.run_id)
                name = f"{scenario.name}-{index:02d}.json"
                save_history(history, HISTORY_DIR / name)
                manifest[name] = {
                    "scenario": scenario.name,
                    "workflow_type": instance.details.info.workflow_type,
                }
            print(f"recorded {scenario.name}")
    finally:
        await env.shutdown()
    (HISTORY_DIR / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(record())
