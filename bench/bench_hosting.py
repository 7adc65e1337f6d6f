"""RayWorkflowRunner beside the SDK's own runners, same workflows, same run, same machine.

    python -m bench.bench_hosting [--count 200] [--concurrency 20] [--out bench/results/hosting.json]

For each runner and workload: workflows/s, p50/p95 workflow latency, CPU per workflow summed over
every process involved (this process running Worker and client, the Temporal dev server, and for
the Ray runner every Ray process: GCS, raylet, dashboard, shards), and the Worker-side time of one
activation (``WorkflowInstance.activate``) at low load, a run's first one (with the instance's
creation: the Ray runner creates the remote run inside it) apart from later ones; their
difference to the in-process runners' is what hosting adds per activation.

``temporay-local`` is ``LocalWorkflowRunner()`` (our engine, isolation and shims, no Ray): what
the Ray runner costs on top of it is hosting. The in-process runners are measured first, before
Ray is started, so Ray's idle cost is charged to the Ray runner only. Judge throughput on CPU per
workflow: on this 2-core box wall-clock rates are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import temporalio.workflow
from temporalio.client import Client
from temporalio.converter import SerializationContext
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from temporay import LocalWorkflowRunner
from tests import hosting_workflows as wf

CPU_ROUNDS = 300_000


# --- measuring ------------------------------------------------------------------------------------


def process_tree_cpu() -> float:
    """CPU seconds (user+system) of this process and every live descendant."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


@dataclass
class Timings:
    """Worker-side seconds of runs' first activations (with creation) and of later ones."""

    first: list[float] = field(default_factory=list)
    later: list[float] = field(default_factory=list)

    def clear(self) -> None:
        self.first.clear()
        self.later.clear()

    def __len__(self) -> int:
        return len(self.first) + len(self.later)


class TimedInstance(WorkflowInstance):
    """Times each activation; the first one also carries the instance's creation, since the Ray
    runner creates the remote run inside its first ``activate`` (in-process runners create it
    in ``create_instance``, which the Worker also waits for)."""

    def __init__(self, inner: WorkflowInstance, creation: float, sink: Timings) -> None:
        self._inner = inner
        self._pending_creation: float | None = creation
        self._sink = sink

    def activate(self, act: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._inner.activate(act)
        finally:
            if not (len(act.jobs) == 1 and act.jobs[0].HasField("remove_from_cache")):
                elapsed = time.perf_counter() - start
                if self._pending_creation is not None:
                    self._sink.first.append(elapsed + self._pending_creation)
                    self._pending_creation = None
                else:
                    self._sink.later.append(elapsed)

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


class TimedRunner(WorkflowRunner):
    """Wraps a runner to time every activation as the Worker sees it."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner
        self.timings = Timings()

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        start = time.perf_counter()
        instance = self.inner.create_instance(det)
        return TimedInstance(instance, time.perf_counter() - start, self.timings)

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


# --- workloads ------------------------------------------------------------------------------------


async def _signals(client: Client, tq: str, wid: str) -> Any:
    handle = await client.start_workflow(wf.SignalQueryWorkflow.run, id=wid, task_queue=tq)
    await handle.signal(wf.SignalQueryWorkflow.add, "a")
    await handle.signal(wf.SignalQueryWorkflow.add, "b")
    await handle.signal(wf.SignalQueryWorkflow.finish)
    return await handle.result()


RUNNERS = ("sdk-sandboxed", "sdk-unsandboxed", "temporay-local", "ray")

WORKLOADS: dict[str, Callable[[Client, str, str], Awaitable[Any]]] = {
    "noop": lambda c, tq, wid: c.execute_workflow(wf.NoopWorkflow.run, id=wid, task_queue=tq),
    "activity": lambda c, tq, wid: c.execute_workflow(
        wf.ActivityWorkflow.run, wf.Order("o", 1), id=wid, task_queue=tq
    ),
    "timers": lambda c, tq, wid: c.execute_workflow(wf.TimerWorkflow.run, 3, id=wid, task_queue=tq),
    "signals": _signals,
    "cpu": lambda c, tq, wid: c.execute_workflow(
        wf.CpuWorkflow.run, CPU_ROUNDS, id=wid, task_queue=tq
    ),
}


@dataclass
class Result:
    runner: str
    workload: str
    workflows: int
    seconds: float
    wf_per_s: float
    p50_ms: float
    p95_ms: float
    cpu_ms_per_wf: float
    activations: int
    first_activation_p50_us: float | None = None
    later_activation_p50_us: float | None = None
    notes: list[str] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def run_workload(
    client: Client, runner_name: str, runner: WorkflowRunner, workload: str, count: int, concurrency: int
) -> Result:
    timed = TimedRunner(runner)
    tq = f"bench-{runner_name}-{workload}-{uuid.uuid4().hex[:6]}"
    run = WORKLOADS[workload]
    async with Worker(
        client,
        task_queue=tq,
        workflows=wf.ALL_WORKFLOWS,
        activities=wf.ALL_ACTIVITIES,
        workflow_runner=timed,
        max_cached_workflows=2000,
    ):
        # Warm up: caches, first-run imports, shard templates.
        await asyncio.gather(*(run(client, tq, f"warm-{uuid.uuid4().hex}") for _ in range(5)))
        timed.timings.clear()
        latencies: list[float] = []
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                start = time.perf_counter()
                await run(client, tq, f"b-{i}-{uuid.uuid4().hex[:8]}")
                latencies.append(time.perf_counter() - start)

        cpu0 = process_tree_cpu()
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        seconds = time.perf_counter() - t0
        cpu = process_tree_cpu() - cpu0
        activations = len(timed.timings)
        # Low load: one workflow at a time, the activation as the Worker sees it.
        timed.timings.clear()
        for i in range(min(count, 30)):
            await run(client, tq, f"lo-{i}-{uuid.uuid4().hex[:8]}")
        first, later = list(timed.timings.first), list(timed.timings.later)
    return Result(
        runner=runner_name,
        workload=workload,
        workflows=count,
        seconds=round(seconds, 2),
        wf_per_s=round(count / seconds, 1),
        p50_ms=round(_pct(latencies, 0.5) * 1000, 1),
        p95_ms=round(_pct(latencies, 0.95) * 1000, 1),
        cpu_ms_per_wf=round(cpu / count * 1000, 2),
        activations=activations,
        first_activation_p50_us=round(statistics.median(first) * 1e6) if first else None,
        later_activation_p50_us=round(statistics.median(later) * 1e6) if later else None,
    )


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(results: list[Result]) -> str:
    header = (
        "| workload | runner | wf/s | p50 ms | p95 ms | CPU ms/wf | CPU vs sandboxed | "
        "first activation p50 µs | later activation p50 µs |\n|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    base = {r.workload: r for r in results if r.runner == "sdk-sandboxed"}
    for r in results:
        ratio = ""
        if r.workload in base and base[r.workload].cpu_ms_per_wf:
            ratio = f"{r.cpu_ms_per_wf / base[r.workload].cpu_ms_per_wf:.2f}x"
        rows.append(
            f"| {r.workload} | {r.runner} | {r.wf_per_s} | {r.p50_ms} | {r.p95_ms} | "
            f"{r.cpu_ms_per_wf} | {ratio} | {_us(r.first_activation_p50_us)} | "
            f"{_us(r.later_activation_p50_us)} |"
        )
    return "\n".join([header, *rows])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--cpu-count", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument(
        "--runners", default=",".join(RUNNERS), help="a subset of " + ", ".join(RUNNERS)
    )
    parser.add_argument("--out", default="bench/results/hosting.json")
    args = parser.parse_args()

    from temporay.cluster.devserver import start_dev_server

    env = await start_dev_server()
    results: list[Result] = []
    workloads = args.workloads.split(",")
    runners = args.runners.split(",")
    in_process: list[tuple[str, WorkflowRunner]] = [
        ("sdk-sandboxed", SandboxedWorkflowRunner()),
        ("sdk-unsandboxed", UnsandboxedWorkflowRunner()),
        ("temporay-local", LocalWorkflowRunner()),
    ]
    try:
        for name, runner in in_process:
            if name not in runners:
                continue
            for workload in workloads:
                count = args.cpu_count if workload == "cpu" else args.count
                result = await run_workload(env.client, name, runner, workload, count, args.concurrency)
                print(json.dumps(asdict(result)), flush=True)
                results.append(result)

        if "ray" in runners:
            import ray

            from temporay import RayWorkflowRunner

            ray.init(include_dashboard=False, logging_level=logging.ERROR)
            async with RayWorkflowRunner(shards=args.shards) as ray_runner:
                for workload in workloads:
                    count = args.cpu_count if workload == "cpu" else args.count
                    result = await run_workload(
                        env.client, "ray", ray_runner, workload, count, args.concurrency
                    )
                    print(json.dumps(asdict(result)), flush=True)
                    results.append(result)
            ray.shutdown()
    finally:
        await env.shutdown()

    print()
    print(table(results))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "args": vars(args),
                "results": [asdict(r) for r in results],
                "table": table(results),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
