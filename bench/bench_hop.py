"""Where a hosted activation's time goes at low load: the hop, the shard's work, and cold code.

    python -m bench.bench_hop [--workload timers] [--workflows 40] [--gap-ms 10]

1. Runs one of ``bench_hosting``'s workloads (``timers`` by default: four activations per run,
   start and three timers) one workflow at a time through a ``RayWorkflowRunner`` with one
   shard and a ``HopExecutor``, and reports a run's first and its later activations as the
   Worker sees them (from handing the activation to its executor until the completion is
   ready), and the hop (the request sent until its answer is read), beside the shard's own time
   per request from its stats.
2. Replays the very requests recorded in step 1 into a ``ShardCore`` in this process (no Ray, no
   socket), back to back and then with ``--gap-ms`` of idle before each, as at low load where
   the shard waits for the server between activations: the difference is what running the same
   Python code on a cold, idle process costs, which no transport can remove.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray
from temporalio.worker import Worker, WorkflowRunner

from bench.bench_hosting import (
    WORKLOADS,
    TimedRunner,
    Timings,
    run_at_low_load,
    timed_executor,
)
from bench.workloads import hosting as wf
from temporay import HopExecutor, LocalWorkflowRunner, RayWorkflowRunner
from temporay.actors import transport
from temporay.actors.shard import ShardCore
from temporay.cluster.devserver import start_dev_server
from temporay.proto import hosting as pb
from temporay.runtime.engines import EngineFactory


def _p50_us(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e6:7.0f} µs" if values else "      -"


class Recorder:
    """Times each activation as the Worker sees it (from handing it to its executor until the
    completion is ready) and each request to the shard (sent until answered), and keeps every
    request sent."""

    def __init__(self) -> None:
        self.timings = Timings()
        self.hop_first: list[float] = []
        self.hop_later: list[float] = []
        self.requests: list[tuple[int, bytes, bool]] = []
        self.measured_from = 0

    def executor(self, runner: WorkflowRunner) -> tuple[WorkflowRunner, ThreadPoolExecutor]:
        """The runner and executor to give the Worker so that its activations are timed."""
        timed_runner = TimedRunner(runner)
        executor, self.timings = timed_executor(HopExecutor, timed_runner)
        return timed_runner, executor

    def install(self) -> None:
        send = transport.SocketTransport.send
        result = transport.SocketCall.result
        rec = self
        sent_at: dict[int, tuple[float, bool]] = {}

        def recorded_send(
            sock: Any, kind: int, payload: bytes, timeout: float | None, may_block: bool = True
        ) -> Any:
            start = time.perf_counter()
            call = send(sock, kind, payload, timeout, may_block)
            if call is not None:
                items = (
                    pb.ActivationBatch.FromString(payload).items
                    if kind == transport.RUN_BATCH
                    else []
                )
                first = bool(items) and items[0].HasField("spec")
                rec.requests.append((kind, payload, first))
                sent_at[id(call)] = (start, first)
            return call

        def timed_result(call: Any, timeout: float | None) -> bytes:
            try:
                return result(call, timeout)
            finally:
                start, first = sent_at.pop(id(call))
                (rec.hop_first if first else rec.hop_later).append(time.perf_counter() - start)

        transport.SocketTransport.send = recorded_send  # type: ignore[method-assign,assignment]
        transport.SocketCall.result = timed_result  # type: ignore[method-assign,assignment]

    @property
    def first(self) -> list[float]:
        return self.timings.first

    @property
    def later(self) -> list[float]:
        return self.timings.later

    def clear(self) -> None:
        """Forget the timings so far; requests are kept (the warm-up's carry the template)."""
        self.timings.clear()
        self.hop_first.clear()
        self.hop_later.clear()
        self.measured_from = len(self.requests)


async def hosted(workload: str, workflows: int, rec: Recorder) -> dict[str, float]:
    env = await start_dev_server()
    ray.init(include_dashboard=False, logging_level=logging.ERROR)
    try:
        async with RayWorkflowRunner(shards=1) as runner:
            timed_runner, executor = rec.executor(runner)
            async with Worker(
                env.client,
                task_queue="hop",
                workflows=wf.ALL_WORKFLOWS,
                activities=wf.ALL_ACTIVITIES,
                workflow_runner=timed_runner,
                workflow_task_executor=executor,
            ):
                run = WORKLOADS[workload]
                for i in range(5):
                    await run(env.client, "hop", f"warm-{i}")
                before = ray.get(runner.registry.stats.remote())
                rec.clear()
                for i in range(workflows):
                    wid = f"hop-{i}-{uuid.uuid4().hex[:6]}"
                    await run_at_low_load(env.client, "hop", wid, workload, rec.timings)
                after = ray.get(runner.registry.stats.remote())
            executor.shutdown()
    finally:
        ray.shutdown()
        await env.shutdown()
    batches = sum(int(s.get("batches", 0)) for s in after) - sum(
        int(s.get("batches", 0)) for s in before
    )
    seconds = sum(s.get("batchSeconds", 0.0) for s in after) - sum(
        s.get("batchSeconds", 0.0) for s in before
    )
    return {"shard_mean_per_request": seconds / batches if batches else 0.0}


def replay(
    requests: list[tuple[int, bytes, bool]], measured_from: int, gap: float
) -> tuple[list[float], list[float]]:
    core = ShardCore("bench", EngineFactory(LocalWorkflowRunner()), threads=4)
    first: list[float] = []
    later: list[float] = []
    run_batch: Callable[[bytes], bytes] = core.run_batch
    for i, (kind, payload, is_first) in enumerate(requests):
        if kind != transport.RUN_BATCH:
            continue
        if gap:
            time.sleep(gap)
        start = time.perf_counter()
        run_batch(payload)
        elapsed = time.perf_counter() - start
        core.after_answer()  # as the shard's server does once the answer is sent
        if i >= measured_from:
            (first if is_first else later).append(elapsed)
    core.shutdown()
    return first, later


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="timers")
    parser.add_argument("--workflows", type=int, default=40)
    parser.add_argument("--gap-ms", type=float, default=10.0)
    args = parser.parse_args()
    rec = Recorder()
    rec.install()
    shard = asyncio.run(hosted(args.workload, args.workflows, rec))
    requests = list(rec.requests)
    measured = len(requests) - rec.measured_from
    activations = len(rec.first) + len(rec.later)
    if measured != activations:
        raise SystemExit(f"expected one request per activation ({activations}), saw {measured}")
    print(
        f"{args.workload}: hosted, one workflow at a time "
        f"({args.workflows} runs, {activations} activations):"
    )
    print(f"  activation as the Worker sees it, first p50 {_p50_us(rec.first)}")
    print(f"  activation as the Worker sees it, later p50 {_p50_us(rec.later)}")
    print(f"  hop (to the shard and back), first     p50 {_p50_us(rec.hop_first)}")
    print(f"  hop (to the shard and back), later     p50 {_p50_us(rec.hop_later)}")
    print(
        f"  shard's own time per request          mean {shard['shard_mean_per_request'] * 1e6:7.0f} µs"
    )
    print("the same requests replayed into a ShardCore in this process:")
    for gap in (0.0, args.gap_ms / 1000):
        first, later = replay(requests, rec.measured_from, gap)
        print(
            f"  {gap * 1000:4.0f} ms idle before each: first p50 {_p50_us(first)}, "
            f"later p50 {_p50_us(later)}"
        )


if __name__ == "__main__":
    main()
