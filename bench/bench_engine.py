"""Engine benchmark: temporay's engine beside the SDK's own instance, same recorded activations.

    python bench/bench_engine.py [--repeat 30] [--cached-runs 300]

1. Records real activations: a few representative workflows run on a dev server (started here)
   under the SDK's ``UnsandboxedWorkflowRunner`` while every (activation, completion) is kept.
2. Replays each recorded run's activations into fresh instances of both engines, alternating
   engines round by round in this one process, and reports per workflow:
   - per-activation µs: mean time of ``activate()`` over all activations of the run (excluding
     instance creation);
   - new-run ms: ``create_instance()`` plus the first activation;
   - retained kB per cached run: memory still held (tracemalloc) per instance after feeding
     every activation but the eviction, over ``--cached-runs`` live instances.

Times are CPU-bound and single-threaded; judge the ratio between engines, measured side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import functools
import gc
import statistics
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
from temporalio import activity, workflow
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)

from temporay.cluster.devserver import start_dev_server
from temporay.runtime.engine.runner import TemporayWorkflowRunner

ENGINES: dict[str, Callable[[], WorkflowRunner]] = {
    "sdk": UnsandboxedWorkflowRunner,
    "temporay": TemporayWorkflowRunner,
}


# --- workloads ----------------------------------------------------------------------------------


@activity.defn
async def bench_echo(value: int) -> int:
    return value


@workflow.defn
class NoopBench:
    @workflow.run
    async def run(self) -> str:
        return "done"


@workflow.defn
class ActivitiesBench:
    @workflow.run
    async def run(self, count: int) -> int:
        total = 0
        for i in range(count):
            total += await workflow.execute_activity(
                bench_echo, i, start_to_close_timeout=timedelta(seconds=10)
            )
        return total


@workflow.defn
class TimersSignalsBench:
    def __init__(self) -> None:
        self.signals = 0

    @workflow.signal
    def poke(self) -> None:
        self.signals += 1

    @workflow.query
    def count(self) -> int:
        return self.signals

    @workflow.run
    async def run(self, timers: int, signals: int) -> int:
        for _ in range(timers):
            await asyncio.sleep(0.01)
        await workflow.wait_condition(lambda: self.signals >= signals)
        return self.signals


@workflow.defn
class FanOutBench:
    @workflow.run
    async def run(self, width: int) -> int:
        results = await asyncio.gather(
            *(
                workflow.execute_activity(
                    bench_echo, i, start_to_close_timeout=timedelta(seconds=10)
                )
                for i in range(width)
            )
        )
        await asyncio.gather(*(workflow.sleep(0.01) for _ in range(width)))
        return sum(results)


# --- recording ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Recorded:
    label: str
    details: WorkflowInstanceDetails
    activations: list[bytes]


class _Recording(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance, activations: list[bytes]) -> None:
        self._inner = inner
        self._activations = activations

    def activate(self, act: Any) -> Any:
        self._activations.append(act.SerializeToString())
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


class _Recorder(WorkflowRunner):
    def __init__(self) -> None:
        self.inner = UnsandboxedWorkflowRunner()
        self.runs: list[tuple[WorkflowInstanceDetails, list[bytes]]] = []

    def prepare_workflow(self, defn: Any) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        activations: list[bytes] = []
        self.runs.append((dataclasses.replace(det, info=copy.deepcopy(det.info)), activations))
        return _Recording(self.inner.create_instance(det), activations)


async def record() -> list[Recorded]:
    env = await start_dev_server()
    recorder = _Recorder()
    labels: dict[str, str] = {}
    try:
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=[NoopBench, ActivitiesBench, TimersSignalsBench, FanOutBench],
            activities=[bench_echo],
            workflow_runner=recorder,
            max_cached_workflows=100,
        ):
            client = env.client

            async def run(label: str, wf: Any, *args: Any) -> None:
                wid = f"{task_queue}-{label}"
                labels[wid] = label
                await client.execute_workflow(wf, args=list(args), id=wid, task_queue=task_queue)

            await run("noop", NoopBench.run)
            await run("activities x10", ActivitiesBench.run, 10)
            await run("fan-out x20", FanOutBench.run, 20)
            wid = f"{task_queue}-signals"
            labels[wid] = "timers x5 + signals x10 + queries"
            handle = await client.start_workflow(
                TimersSignalsBench.run, args=[5, 10], id=wid, task_queue=task_queue
            )
            for _ in range(10):
                await handle.signal(TimersSignalsBench.poke)
                await handle.query(TimersSignalsBench.count)
            await handle.result()
            # Let core evict the finished runs (the eviction activation is recorded too).
            await asyncio.sleep(1)
    finally:
        await env.shutdown()
    return [
        Recorded(labels[det.info.workflow_id], det, activations)
        for det, activations in recorder.runs
        if det.info.workflow_id in labels
    ]


# --- measuring ----------------------------------------------------------------------------------


def _parse(data: list[bytes]) -> list[wfact.WorkflowActivation]:
    out = []
    for item in data:
        act = wfact.WorkflowActivation()
        act.ParseFromString(item)
        out.append(act)
    return out


def _fresh(det: WorkflowInstanceDetails) -> WorkflowInstanceDetails:
    return dataclasses.replace(det, info=copy.deepcopy(det.info))


def _with_placeholder_loop(fn: Callable[[], Any]) -> Any:
    placeholder = asyncio.new_event_loop()
    asyncio._set_running_loop(placeholder)
    try:
        return fn()
    finally:
        asyncio._set_running_loop(None)
        placeholder.close()


def measure_round(runner: WorkflowRunner, rec: Recorded) -> tuple[float, float]:
    """(mean µs per activation, ms for a new run: creation + first activation)."""
    activations = _parse(rec.activations)
    det = _fresh(rec.details)
    t0 = time.perf_counter()
    instance = _with_placeholder_loop(lambda: runner.create_instance(det))
    t1 = time.perf_counter()
    instance.activate(activations[0])
    t2 = time.perf_counter()
    total = t2 - t1
    for act in activations[1:]:
        start = time.perf_counter()
        instance.activate(act)
        total += time.perf_counter() - start
    return total / len(activations) * 1e6, (t2 - t0) * 1e3


def retained_kb(runner: WorkflowRunner, rec: Recorded, count: int) -> float:
    """Memory held per live (cached) instance after all activations but the eviction."""
    activations = [
        a
        for a in _parse(rec.activations)
        if not any(j.HasField("remove_from_cache") for j in a.jobs)
    ]
    dets = [_fresh(rec.details) for _ in range(count)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    instances = []
    for det in dets:
        instance = _with_placeholder_loop(functools.partial(runner.create_instance, det))
        for act in activations:
            instance.activate(act)
        instances.append(instance)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del instances
    return (after - before) / count / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="rounds per engine and workflow")
    parser.add_argument(
        "--cached-runs", type=int, default=300, help="instances for the memory figure"
    )
    args = parser.parse_args()

    recorded = asyncio.run(record())
    print(
        f"recorded {len(recorded)} runs: "
        + ", ".join(f"{r.label} ({len(r.activations)} act.)" for r in recorded)
    )

    def bench() -> None:
        header = f"{'workflow':36} {'engine':9} {'µs/activation':>14} {'new run ms':>11} {'kB/cached run':>14}"
        print(header)
        print("-" * len(header))
        for rec in recorded:
            per_act: dict[str, list[float]] = {name: [] for name in ENGINES}
            new_run: dict[str, list[float]] = {name: [] for name in ENGINES}
            # Warm up, then alternate engines round by round so both see the same conditions.
            for factory in ENGINES.values():
                measure_round(factory(), rec)
            order = list(ENGINES.items())
            for round_no in range(args.repeat):
                # ABBA order: neither engine always runs first (caches, frequency scaling).
                for name, factory in order if round_no % 2 == 0 else order[::-1]:
                    us, ms = measure_round(factory(), rec)
                    per_act[name].append(us)
                    new_run[name].append(ms)
            for name, factory in ENGINES.items():
                kb = retained_kb(factory(), rec, args.cached_runs)
                print(
                    f"{rec.label:36} {name:9} {statistics.median(per_act[name]):14.1f} "
                    f"{statistics.median(new_run[name]):11.3f} {kb:14.1f}"
                )
            ratio = statistics.median(per_act["temporay"]) / statistics.median(per_act["sdk"])
            print(f"{'':36} {'ratio':9} {ratio:14.2f}")

    # Activations run on a plain thread, as on a Worker's executor.
    thread = threading.Thread(target=bench)
    thread.start()
    thread.join()


if __name__ == "__main__":
    main()
