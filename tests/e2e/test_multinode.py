"""A two-raylet local cluster with a raylet killed mid-run: every workflow completes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(900)]


def test_raylet_killed_mid_run_loses_no_workflow() -> None:
    # Its own process: the scenario needs a Ray cluster of several raylets, not the session one.
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.scenarios.raylet_kill"],
        capture_output=True,
        text=True,
        timeout=850,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    outcome = json.loads(lines[-1])
    assert outcome["shards_on_killed_node"] >= 1
    assert outcome["runs_on_killed_node"] >= 10
    assert outcome["completed"] == outcome["correct"] == 200
    assert outcome["victims_marked_dead"] is True
    assert outcome["shutdown_seconds"] < 60
