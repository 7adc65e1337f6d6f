"""RayWorkflowRunner beside the SDK's own runners, same workflows, same run, same machine.

    python -m bench.bench_hosting [--count 200] [--concurrency 20] [--low-load-rounds 30]
        [--out bench/results/hosting.json]

For each runner and workload: workflows/s, p50/p95 workflow latency, CPU per workflow summed over
every process involved (this process running Worker and client, the Temporal dev server, and for
the Ray runner every Ray process: GCS, raylet, dashboard, shards; also split by those groups),
and the time of one activation at low load as the Worker sees it (from handing it to its executor
until the completion is ready), a run's first one (with the instance's creation: the Ray runner
creates the remote run inside it) apart from later ones. At low load the runners take turns, one
workflow at a time, so that each round times all of them in the same moments; what hosting adds
per activation is the median over rounds of the difference to ``temporay-local`` in the same
round.

``temporay-local`` is ``LocalWorkflowRunner()`` (our engine, isolation and shims, no Ray): what
the Ray runner costs on top of it is hosting. ``ray`` runs with ``HopExecutor``, as ``RayPlugin``
sets it up; ``ray-thread`` (on request) with the SDK's plain thread pool. Each workload's runners
run one after another, in the order given, so that they meet the machine in the same state; Ray
is up throughout, but its processes' CPU is charged to the Ray runners only. Judge throughput on
CPU per workflow: on this 2-core box wall-clock rates are noisy.
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
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import temporalio.workflow
from temporalio.client import Client
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.workloads import hosting as wf
from temporay import HopExecutor, LocalWorkflowRunner
from temporay.cluster.executor import DEFAULT_MAX_WORKERS

CPU_ROUNDS = 300_000


# --- measuring ------------------------------------------------------------------------------------


def process_tree_cpu(
    ray_trees: frozenset[int] = frozenset(), charge_ray: bool = True
) -> dict[str, float]:
    """CPU seconds (user+system) of this process and every live descendant, by group:
    ``worker`` (this process: Worker and client), ``dev server`` (the other children's trees),
    ``ray`` (Ray's own processes) and ``shards`` (our shard actors), the last two from the trees
    of the direct children in ``ray_trees``, left out when not ``charge_ray`` (an in-process
    runner). Groups tell a spike (a dev server's collection, Ray's housekeeping) from the work."""
    me = psutil.Process()
    groups: list[tuple[str, psutil.Process]] = [("worker", me)]
    for child in me.children():
        in_ray = child.pid in ray_trees
        if in_ray and not charge_ray:
            continue
        try:
            tree = [child, *child.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in tree:
            groups.append(("ray" if in_ray else "dev server", proc))
    totals = {"worker": 0.0, "dev server": 0.0, "ray": 0.0, "shards": 0.0}
    for group, proc in groups:
        try:
            t = proc.cpu_times()
            if group == "ray" and " ".join(proc.cmdline()).startswith("ray::Shard"):
                group = "shards"
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        totals[group] += t.user + t.system
    return totals


def direct_children() -> frozenset[int]:
    return frozenset(child.pid for child in psutil.Process().children())


@dataclass
class Timings:
    """Seconds of runs' first activations (with creation) and of later ones, as the Worker
    sees them."""

    first: list[float] = field(default_factory=list)
    later: list[float] = field(default_factory=list)

    def clear(self) -> None:
        self.first.clear()
        self.later.clear()

    def __len__(self) -> int:
        return len(self.first) + len(self.later)


class TimedRunner(WorkflowRunner):
    """Wraps a runner to time each instance's creation (returning the instance itself)."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner
        self.creation: dict[str, float] = {}

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        start = time.perf_counter()
        instance = self.inner.create_instance(det)
        self.creation[det.info.run_id] = time.perf_counter() - start
        return instance

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


def timed_executor(
    base: type[ThreadPoolExecutor], timed: TimedRunner
) -> tuple[ThreadPoolExecutor, Timings]:
    """The Worker's workflow-task executor (``base``), timing each activation from the moment
    the Worker hands it over (``run_in_executor``) until its completion is ready. A run's first
    activation also counts the instance's creation, which the Worker waited for just before:
    in-process runners build the instance there, the Ray runner creates the remote run inside
    its first activation. Evictions are not counted."""

    sink = Timings()

    class Timed(base):  # type: ignore[valid-type,misc]
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            start = time.perf_counter()
            future = super().submit(fn, *args, **kwargs)
            jobs = getattr(args[0], "jobs", None) if len(args) == 1 else None
            if not jobs or (len(jobs) == 1 and jobs[0].HasField("remove_from_cache")):
                return future
            run_id = args[0].run_id
            first = any(job.HasField("initialize_workflow") for job in jobs)

            def done(_: Future[Any]) -> None:
                elapsed = time.perf_counter() - start
                if first:
                    sink.first.append(elapsed + timed.creation.pop(run_id, 0.0))
                else:
                    sink.later.append(elapsed)

            future.add_done_callback(done)
            return future

    return Timed(max_workers=DEFAULT_MAX_WORKERS, thread_name_prefix="temporal_workflow_"), sink


# --- workloads ------------------------------------------------------------------------------------


async def _signals(client: Client, tq: str, wid: str) -> Any:
    handle = await client.start_workflow(wf.SignalQueryWorkflow.run, id=wid, task_queue=tq)
    await handle.signal(wf.SignalQueryWorkflow.add, "a")
    await handle.signal(wf.SignalQueryWorkflow.add, "b")
    await handle.signal(wf.SignalQueryWorkflow.finish)
    return await handle.result()


async def _until(done: Callable[[], bool]) -> None:
    while not done():
        await asyncio.sleep(0.001)


async def _signals_one_by_one(client: Client, tq: str, wid: str, timings: Timings) -> Any:
    """``signals`` at low load: each signal sent once the activation before it has completed,
    so that every runner's later activations are the same, one signal each. Sent at once, as
    under load, the signals reach the first activation or a later one depending on how fast
    the runner answered, and later activations of different runners held different work."""
    first, later = len(timings.first), len(timings.later)
    handle = await client.start_workflow(wf.SignalQueryWorkflow.run, id=wid, task_queue=tq)
    await _until(lambda: len(timings.first) > first)
    for done, signal in enumerate(
        (
            handle.signal(wf.SignalQueryWorkflow.add, "a"),
            handle.signal(wf.SignalQueryWorkflow.add, "b"),
            handle.signal(wf.SignalQueryWorkflow.finish),
        )
    ):
        await _until(lambda done=done: len(timings.later) == later + done)  # type: ignore[misc]
        await signal
    return await handle.result()


RUNNERS = ("sdk-sandboxed", "sdk-unsandboxed", "temporay-local", "ray")
EXTRA_RUNNERS = ("ray-thread",)
"""On request only: the Ray runner with the SDK's plain thread pool instead of ``HopExecutor``."""

STEPPED: dict[str, Callable[[Client, str, str, Timings], Awaitable[Any]]] = {
    "signals": _signals_one_by_one,
}
"""Workloads run differently at low load, so that each activation is the same for every runner."""


async def run_at_low_load(
    client: Client, tq: str, wid: str, workload: str, timings: Timings
) -> Any:
    """One workflow of ``workload`` as it runs at low load (``STEPPED`` if it has a way of its
    own there), ``timings`` being its Worker's."""
    stepped = STEPPED.get(workload)
    if stepped is not None:
        return await stepped(client, tq, wid, timings)
    return await WORKLOADS[workload](client, tq, wid)


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
    cpu_ms_per_wf_by_group: dict[str, float] = field(default_factory=dict)
    first_activation_p50_us: float | None = None
    later_activation_p50_us: float | None = None
    first_added_us: float | None = None
    """Median over low-load rounds of this runner's first activation minus ``temporay-local``'s
    in the same round: what hosting adds."""
    later_added_us: float | None = None
    low_load_rounds_us: list[tuple[int | None, int | None]] = field(default_factory=list)
    """Per low-load round: this runner's first activation and the median of its later ones."""
    notes: list[str] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@dataclass
class Setup:
    """One runner as the benchmark runs it: its name, the runner and the Worker's executor."""

    name: str
    runner: WorkflowRunner
    executor_class: type[ThreadPoolExecutor] = ThreadPoolExecutor


def _worker(
    client: Client, setup: Setup, workload: str
) -> tuple[Worker, ThreadPoolExecutor, Timings, str]:
    timed_runner = TimedRunner(setup.runner)
    executor, timings = timed_executor(setup.executor_class, timed_runner)
    tq = f"bench-{setup.name}-{workload}-{uuid.uuid4().hex[:6]}"
    worker = Worker(
        client,
        task_queue=tq,
        workflows=wf.ALL_WORKFLOWS,
        activities=wf.ALL_ACTIVITIES,
        workflow_runner=timed_runner,
        workflow_task_executor=executor,
        max_cached_workflows=2000,
    )
    return worker, executor, timings, tq


async def _warm(client: Client, tq: str, workload: str) -> None:
    """Caches, first-run imports, shard templates."""
    run = WORKLOADS[workload]
    await asyncio.gather(*(run(client, tq, f"warm-{uuid.uuid4().hex}") for _ in range(5)))


async def run_workload(
    client: Client,
    setup: Setup,
    workload: str,
    count: int,
    concurrency: int,
    ray_trees: frozenset[int] = frozenset(),
    charge_ray: bool = True,
) -> Result:
    """Throughput and CPU per workflow: ``count`` workflows, ``concurrency`` at a time."""
    worker, executor, timings, tq = _worker(client, setup, workload)
    run = WORKLOADS[workload]
    async with worker:
        await _warm(client, tq, workload)
        timings.clear()
        latencies: list[float] = []
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                start = time.perf_counter()
                await run(client, tq, f"b-{i}-{uuid.uuid4().hex[:8]}")
                latencies.append(time.perf_counter() - start)

        cpu0 = process_tree_cpu(ray_trees, charge_ray)
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        seconds = time.perf_counter() - t0
        cpu1 = process_tree_cpu(ray_trees, charge_ray)
        by_group = {group: cpu1[group] - cpu0[group] for group in cpu1}
        cpu = sum(by_group.values())
        activations = len(timings)
    executor.shutdown()
    return Result(
        runner=setup.name,
        workload=workload,
        workflows=count,
        seconds=round(seconds, 2),
        wf_per_s=round(count / seconds, 1),
        p50_ms=round(_pct(latencies, 0.5) * 1000, 1),
        p95_ms=round(_pct(latencies, 0.95) * 1000, 1),
        cpu_ms_per_wf=round(cpu / count * 1000, 2),
        activations=activations,
        cpu_ms_per_wf_by_group={
            group: round(seconds / count * 1000, 2) for group, seconds in by_group.items()
        },
    )


@dataclass
class LowLoad:
    """One runner's activations at low load: per round, its workflow's first activation and the
    median of its later ones (seconds; ``None``: that workflow had none)."""

    first: list[float | None] = field(default_factory=list)
    later: list[float | None] = field(default_factory=list)
    all_later: list[float] = field(default_factory=list)


async def low_load(
    client: Client, setups: Sequence[Setup], workload: str, rounds: int
) -> dict[str, LowLoad]:
    """One workflow at a time, the runners taking turns (each round in a rotated order), so that
    every runner's activations are timed in the same moments of the machine: its speed drifts
    by up to 2x within minutes, which made runners timed one after another differ by more than
    what hosting adds. All runners' Workers are up throughout; only one has work at a time."""
    found = {setup.name: LowLoad() for setup in setups}
    async with AsyncExitStack() as stack:
        workers = []
        for setup in setups:
            worker, executor, timings, tq = _worker(client, setup, workload)
            stack.callback(executor.shutdown)
            await stack.enter_async_context(worker)
            workers.append((setup.name, timings, tq))
        for _, _, tq in workers:
            await _warm(client, tq, workload)
        for i in range(rounds):
            shift = i % len(workers)
            for name, timings, tq in workers[shift:] + workers[:shift]:
                timings.clear()
                await run_at_low_load(
                    client, tq, f"lo-{i}-{uuid.uuid4().hex[:8]}", workload, timings
                )
                seen = found[name]
                seen.first.append(timings.first[0] if timings.first else None)
                seen.later.append(statistics.median(timings.later) if timings.later else None)
                seen.all_later.extend(timings.later)
    return found


def _paired_added_us(mine: Sequence[float | None], base: Sequence[float | None]) -> float | None:
    """Median over rounds of (this runner's time - the base runner's time), in µs."""
    diffs = [a - b for a, b in zip(mine, base, strict=True) if a is not None and b is not None]
    return _rounded_us(statistics.median(diffs)) if diffs else None


def _rounded_us(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1e6)


def add_low_load(results: Sequence[Result], found: dict[str, LowLoad], base: str) -> None:
    for result in results:
        seen = found.get(result.runner)
        if seen is None:
            continue
        firsts = [first for first in seen.first if first is not None]
        result.first_activation_p50_us = _rounded_us(statistics.median(firsts)) if firsts else None
        result.later_activation_p50_us = (
            _rounded_us(statistics.median(seen.all_later)) if seen.all_later else None
        )
        result.low_load_rounds_us = [
            (_rounded_us(first), _rounded_us(later))
            for first, later in zip(seen.first, seen.later, strict=True)
        ]
        if base in found and result.runner != base:
            ref = found[base]
            result.first_added_us = _paired_added_us(seen.first, ref.first)
            result.later_added_us = _paired_added_us(seen.later, ref.later)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table(results: list[Result]) -> str:
    header = (
        "| workload | runner | wf/s | p50 ms | p95 ms | CPU ms/wf | CPU vs sandboxed | "
        "first activation p50 µs | later activation p50 µs | first added µs | later added µs |"
        "\n|---|---|---|---|---|---|---|---|---|---|---|"
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
            f"{_us(r.later_activation_p50_us)} | {_signed_us(r.first_added_us)} | "
            f"{_signed_us(r.later_added_us)} |"
        )
    return "\n".join([header, *rows])


def _signed_us(value: float | None) -> str:
    return "-" if value is None else f"{value:+.0f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--cpu-count", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument(
        "--runners",
        default=",".join(RUNNERS),
        help="a subset of " + ", ".join(RUNNERS + EXTRA_RUNNERS),
    )
    parser.add_argument(
        "--low-load-rounds",
        type=int,
        default=30,
        help="workflows per runner at low load, the runners taking turns",
    )
    parser.add_argument("--out", default="bench/results/hosting.json")
    args = parser.parse_args()

    from temporay.cluster.devserver import start_dev_server

    env = await start_dev_server()
    results: list[Result] = []
    workloads = args.workloads.split(",")
    runners = args.runners.split(",")
    in_process: dict[str, WorkflowRunner] = {
        "sdk-sandboxed": SandboxedWorkflowRunner(),
        "sdk-unsandboxed": UnsandboxedWorkflowRunner(),
        "temporay-local": LocalWorkflowRunner(),
    }
    executors: dict[str, type[ThreadPoolExecutor]] = {
        "ray": HopExecutor,
        "ray-thread": ThreadPoolExecutor,
    }
    unknown = set(runners) - set(in_process) - set(executors)
    if unknown:
        raise SystemExit(f"unknown runners: {sorted(unknown)}")
    try:
        async with AsyncExitStack() as stack:
            ray_trees: frozenset[int] = frozenset()
            ray_runner: WorkflowRunner | None = None
            if any(name in executors for name in runners):
                import ray

                from temporay import RayWorkflowRunner

                before = direct_children()
                ray.init(include_dashboard=False, logging_level=logging.ERROR)
                stack.callback(ray.shutdown)
                ray_trees = direct_children() - before
                ray_runner = await stack.enter_async_context(RayWorkflowRunner(shards=args.shards))
            setups = [
                Setup(name, in_process[name])
                if name in in_process
                else Setup(name, ray_runner, executors[name])  # type: ignore[arg-type]
                for name in runners
            ]
            # Each workload's runners one after another, so that they meet the machine in the
            # same state (its speed drifts over tens of minutes); then all of them in turns at
            # low load.
            for workload in workloads:
                count = args.cpu_count if workload == "cpu" else args.count
                done: list[Result] = []
                for setup in setups:
                    in_ray = setup.name not in in_process
                    result = await run_workload(
                        env.client,
                        setup,
                        workload,
                        count,
                        args.concurrency,
                        ray_trees=ray_trees,
                        charge_ray=in_ray,
                    )
                    print(json.dumps(asdict(result)), flush=True)
                    done.append(result)
                found = await low_load(env.client, setups, workload, args.low_load_rounds)
                add_low_load(done, found, base="temporay-local")
                for result in done:
                    print(json.dumps(asdict(result)), flush=True)
                results.extend(done)
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
