"""A user's first minute: every way of starting temporay works from the first workflow task, and
every bad input fails fast with one line. Each case runs in a fresh Python process (no warmed Ray,
no shared cluster), as a user's script or command would."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEADLOCK_LINES = ("TMPRL1101", "Failed activation", "Failing workflow task")
CONNECT_BOUND_S = 35.0
"""The issue's bound for an address that cannot work: the 30 s default connect timeout plus
the process's own start."""

pytestmark = pytest.mark.timeout(600)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _scenario(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[
    dict[str, Any], str
]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.scenarios.first_contact", *args],
        cwd=ROOT, env=env or _env(), capture_output=True, text=True, timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1]), done.stderr


@pytest.mark.parametrize("entry", ["plugin", "runner", "async_with", "replayer", "replayer_runner"])
def test_a_cold_process_fails_no_workflow_task(entry: str) -> None:
    outcome, logs = _scenario("cold", entry)
    print(f"{entry}: first workflow after {outcome['first_latency_s']} s, {outcome}")
    assert outcome["completed"] == 20
    assert outcome["task_failures"] == 0
    assert [line for line in logs.splitlines() if any(m in line for m in DEADLOCK_LINES)] == []


def test_an_unreachable_ray_address_fails_fast_with_one_line() -> None:
    outcome, _ = _scenario("unreachable")
    expected = {
        "refused": "nothing answers there",
        "silent": "no answer within 5s",
        "not_ray": "not a Ray GCS",
        "runner": "nothing answers there",
    }
    for case, words in expected.items():
        seen = outcome[case]
        assert seen["error"] == "RayConnectError", (case, seen)
        assert words in seen["message"] and "\n" not in seen["message"], (case, seen)
        assert seen["message"].startswith("Ray at 127.0.0.1:"), (case, seen)
        assert seen["seconds"] < CONNECT_BOUND_S, (case, seen)
    assert outcome["runner"]["is_connect_error"] is True


def test_shards_the_cluster_cannot_hold_are_reported() -> None:
    outcome, _ = _scenario("placement")
    assert outcome["is_placement_error"], outcome
    assert "3 shards x 1 CPU = 3 CPU" in outcome["message"]
    assert "the cluster has 2 CPU" in outcome["message"]
    assert outcome["seconds"] < CONNECT_BOUND_S


def test_two_workers_in_one_process_share_ray_and_outlive_each_other() -> None:
    outcome, logs = _scenario("two_workers")
    assert outcome["ray_up_after_first_stopped"] is True
    assert outcome["second_completed"] == 20
    assert outcome["second_task_failures"] == 0
    assert outcome["ray_up_after_both_stopped"] is False  # temporay started it: temporay stops it
    assert "Can't find actor" not in logs


async def test_a_workflow_in_an_unguarded_script_is_refused_with_the_fix(client: Any) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "e2e" / "scenarios" / "unguarded_main.py")],
        env=_env(TEMPORAL_ADDRESS=client.service_client.config.target_host),
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    # The Worker reports it as the cause of its "Failed validating workflow ScriptWorkflow".
    refusals = [
        line for line in done.stderr.splitlines()
        if line.startswith("temporay.cluster.main_script.MainScriptError: workflow ScriptWorkflow")
    ]
    assert len(refusals) == 1, done.stderr[-3000:]
    assert "asyncio.run(main())" in refusals[0] and 'if __name__ == "__main__":' in refusals[0]
    assert "Potential deadlock" not in done.stderr


# --- a `ray start` cluster: tokens, then killed without `ray stop` ----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_processes(port: int) -> list[psutil.Process]:
    marks = (f"127.0.0.1:{port}", f"gcs_server_port={port}")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if any(m in cmdline for m in marks):
            found.append(proc)
    return found


@pytest.fixture
def token_cluster(tmp_path: Path) -> Iterator[tuple[str, str, int]]:
    """A `ray start` head on loopback with token authentication and a token we know; killed
    with SIGKILL at the end (as a crash would), leaving its cluster file behind."""
    port = _free_port()
    token = secrets.token_hex(32)
    cluster_file = Path("/tmp/ray/ray_current_cluster")
    start = subprocess.run(
        [str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port",
         str(port), "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
        env=_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, HOME=str(tmp_path)),
        capture_output=True, text=True, timeout=120,
    )
    assert start.returncode == 0, start.stderr[-3000:]
    try:
        yield f"127.0.0.1:{port}", token, port
    finally:
        for proc in _cluster_processes(port):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        # What `ray stop` would have done: no cluster file naming a cluster that is gone.
        if cluster_file.exists() and cluster_file.read_text().strip() == f"127.0.0.1:{port}":
            cluster_file.unlink()


def _one_error_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"temporay {command}: error: "), done.stderr
    return lines[0]


def test_a_ray_start_cluster_with_tokens_then_killed(
    token_cluster: tuple[str, str, int], tmp_path: Path
) -> None:
    address, token, port = token_cluster
    home = tmp_path / "home"
    home.mkdir()
    no_token = {"HOME": str(home)}

    # Found through its cluster file, no token anywhere: one line saying exactly that.
    outcome, _ = _scenario("join", env=_env(**no_token))
    assert outcome["error"] == "RayConnectError", outcome
    assert f"Ray at {address} (from the cluster file" in outcome["message"]
    assert "requires token authentication and this process has no token" in outcome["message"]
    status = subprocess.run([str(BIN / "temporay"), "status"], env=_env(**no_token),
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 1
    assert "has no token" in _one_error_line(status, "status")

    # The wrong token: refused, naming where the token came from.
    outcome, _ = _scenario("join", address, env=_env(RAY_AUTH_TOKEN="0" * 64, **no_token))
    assert outcome["error"] == "RayConnectError"
    assert "refused the token from RAY_AUTH_TOKEN" in outcome["message"]

    # The right token: joined (RAY_AUTH_MODE not set by the user), and it serves.
    outcome, _ = _scenario("join", env=_env(RAY_AUTH_TOKEN=token, RAY_ADDRESS=address, **no_token))
    assert outcome["error"] is None and outcome["completed"] == 5, outcome
    assert outcome["task_failures"] == 0
    status = subprocess.run([str(BIN / "temporay"), "status"],
                            env=_env(RAY_AUTH_TOKEN=token, **no_token),
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and isinstance(json.loads(status.stdout), list), status.stderr

    # Killed without `ray stop`: the cluster file stays, naming a dead cluster.
    for proc in _cluster_processes(port):
        proc.kill()
    psutil.wait_procs(_cluster_processes(port), timeout=30)
    assert Path("/tmp/ray/ray_current_cluster").read_text().strip() == address
    started = time.monotonic()
    outcome, _ = _scenario("join", env=_env(**no_token))
    assert outcome["error"] is None and outcome["completed"] == 5, outcome  # a fresh local one
    assert time.monotonic() - started < 120
    status = subprocess.run([str(BIN / "temporay"), "status"], env=_env(**no_token),
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 1
    assert "no running Ray cluster found" in _one_error_line(status, "status")
    (tmp_path / "myflows.py").write_text(WORKFLOW_MODULE)
    worker = subprocess.Popen(
        [str(BIN / "temporay"), "worker", "--task-queue", "q", "--workflows", "myflows",
         "--dev-server", "--shards", "1"],
        cwd=tmp_path, env={k: v for k, v in _env(**no_token).items() if k != "PYTHONPATH"},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        _wait_for_line(worker, '"routers": 0', 180)  # on a fresh local cluster
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 143
    finally:
        if worker.poll() is None:
            worker.kill()


# --- the CLI: bad input is one line and an exit code; signals stop what it started -----------------

WORKFLOW_MODULE = '''
from datetime import timedelta
from temporalio import activity, workflow

@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"

@workflow.defn
class GreetWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=30))
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project directory with a workflow module, the CLI run from inside it."""
    (tmp_path / "myflows.py").write_text(WORKFLOW_MODULE)
    return tmp_path


def _cli(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = _env()
    env.pop("PYTHONPATH")  # the project's directory is found as the current directory
    return subprocess.run([str(BIN / "temporay"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_bad_specs_are_one_line_before_anything_starts(project: Path) -> None:
    cases = {
        ("--workflows", "nomod"): "no module named 'nomod'",
        ("--workflows", "myflows:Nope"): "module 'myflows' has no 'Nope'",
        ("--workflows", "myflows:greet"): "myflows.greet is an activity, not a workflow",
        ("--workflows", "myflows", "--activities", "myflows:GreetWorkflow"):
            "myflows.GreetWorkflow is a workflow, not an activity",
    }
    for args, words in cases.items():
        done = _cli(project, "worker", "--task-queue", "q", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert words in _one_error_line(done, "worker"), args
    debug = _cli(project, "--debug", "worker", "--task-queue", "q", "--workflows", "myflows:Nope")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_cli_unreachable_services_are_one_line(project: Path) -> None:
    port = _free_port()
    started = time.monotonic()
    done = _cli(project, "worker", "--task-queue", "q", "--workflows", "myflows",
                "--address", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert f"Temporal at 127.0.0.1:{port}: cannot connect" in _one_error_line(done, "worker")
    done = _cli(project, "status", "--ray-address", f"127.0.0.1:{port}")
    assert done.returncode == 1
    assert f"Ray at 127.0.0.1:{port}" in _one_error_line(done, "status")
    assert time.monotonic() - started < 3 * CONNECT_BOUND_S


async def test_cli_checks_temporal_then_ray(project: Path, client: Any) -> None:
    address = client.service_client.config.target_host
    done = _cli(project, "worker", "--task-queue", "q", "--workflows", "myflows",
                "--address", address, "--namespace", "nope")
    assert done.returncode == 1
    assert "namespace 'nope' does not exist" in _one_error_line(done, "worker")
    ray_port = _free_port()
    done = _cli(project, "worker", "--task-queue", "q", "--workflows", "myflows",
                "--address", address, "--ray-address", f"127.0.0.1:{ray_port}")
    assert done.returncode == 1
    assert f"Ray at 127.0.0.1:{ray_port}" in _one_error_line(done, "worker")


def _wait_for_line(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return line
    raise AssertionError(f"no {marker!r} line (exit {proc.poll()}): {''.join(seen)[-2000:]}")


def _stop_with(proc: subprocess.Popen[str], sig: int) -> tuple[int, list[psutil.Process]]:
    """Send ``sig`` to ``proc``; its exit code and which of its descendants outlived it."""
    descendants = psutil.Process(proc.pid).children(recursive=True)
    assert any("temporal" in " ".join(p.cmdline()) for p in descendants)  # the dev server
    proc.send_signal(sig)
    code = proc.wait(120)
    _, alive = psutil.wait_procs(descendants, timeout=30)
    return code, alive


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cli_worker_stops_everything_it_started_on_a_signal(
    project: Path, sig: int, code: int
) -> None:
    env = _env()
    env.pop("PYTHONPATH")
    proc = subprocess.Popen(
        [str(BIN / "temporay"), "worker", "--task-queue", "q", "--workflows", "myflows",
         "--activities", "myflows", "--dev-server", "--shards", "1"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        _wait_for_line(proc, '"routers": 0', 180)
        exit_code, alive = _stop_with(proc, sig)
        assert exit_code == code
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_quickstart_stops_everything_it_started_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--orders", "2000"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        _wait_for_line(proc, "Temporal dev server on", 120)
        time.sleep(15)  # Ray up, orders in flight
        exit_code, alive = _stop_with(proc, signal.SIGTERM)
        assert exit_code == 143
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_runner_whose_ray_is_shut_down_under_it_says_so() -> None:
    outcome, logs = _scenario("cluster_lost")
    assert outcome["before_completed"] == 1
    assert "the Ray cluster this runner used was shut down under it" in outcome["failure"]
    assert logs.count("the Ray cluster this runner used was shut down under it;") == 1
