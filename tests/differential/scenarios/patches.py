"""Patching: ``patched`` / ``deprecate_patch`` markers, memoization, and code that changes while
a run is open (every task replays from scratch: the worker caches no runs)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.worker import PatchActivationInput

from ..harness import CODE_VERSIONS, Drive, Scenario, outcome_of
from .activities import echo

NO_CACHE = {"max_cached_workflows": 0}


@workflow.defn
class PatchedWorkflow:
    def __init__(self) -> None:
        self.signalled = False

    @workflow.signal
    def go(self) -> None:
        # Patches in handlers too.
        self.in_signal = workflow.patched("in-signal")
        self.signalled = True

    @workflow.query
    def try_patch(self) -> bool:
        return workflow.patched("in-query")  # read-only: refused

    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        out.append(workflow.patched("first"))
        out.append(workflow.patched("first"))  # memoized: one marker
        workflow.deprecate_patch("already-deprecated")
        await workflow.wait_condition(lambda: self.signalled)
        out.append(self.in_signal)
        out.append(workflow.patched("second"))
        return out


@workflow.defn
class EvolvingWorkflow:
    """Version 1 has no patch; version 2 wraps a change in ``patched``; version 3 deprecates it."""

    def __init__(self) -> None:
        self.steps = 0

    @workflow.signal
    def step(self) -> None:
        self.steps += 1

    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        version = CODE_VERSIONS.get("evolving", 1)
        if version == 1:
            out.append(
                await workflow.execute_activity(
                    echo, "old", start_to_close_timeout=timedelta(seconds=5)
                )
            )
        elif version == 2:
            if workflow.patched("change"):
                await workflow.sleep(0.01)
                out.append("new path")
            else:
                out.append(
                    await workflow.execute_activity(
                        echo, "old", start_to_close_timeout=timedelta(seconds=5)
                    )
                )
        else:
            workflow.deprecate_patch("change")
            await workflow.sleep(0.01)
            out.append("new path")
        await workflow.wait_condition(lambda: self.steps >= 1)
        # Asked again after the run went live: a False seen during replay is remembered.
        out.append(workflow.patched("change") if version == 2 else None)
        await workflow.wait_condition(lambda: self.steps >= 2)
        return out


async def _drive_patched(d: Drive) -> Any:
    handle = await d.start(PatchedWorkflow.run, name="patched")
    await asyncio.sleep(0.2)
    try:
        query = await handle.query(PatchedWorkflow.try_patch)
    except Exception as err:
        query = type(err).__name__
    await handle.signal(PatchedWorkflow.go)
    return [query, await outcome_of(handle)]


async def _evolve(d: Drive, name: str, start_version: int, next_version: int) -> Any:
    CODE_VERSIONS["evolving"] = start_version
    try:
        handle = await d.start(EvolvingWorkflow.run, name=name)
        await asyncio.sleep(0.5)
        CODE_VERSIONS["evolving"] = next_version
        await handle.signal(EvolvingWorkflow.step)
        await asyncio.sleep(0.3)
        await handle.signal(EvolvingWorkflow.step)
        return await outcome_of(handle)
    finally:
        CODE_VERSIONS["evolving"] = next_version


async def _drive_evolving(d: Drive) -> Any:
    return [
        # Started before the patch: replays take the old path, even once live again.
        await _evolve(d, "v1to2", 1, 2),
        # Started with the patch: the marker is in history.
        await _evolve(d, "v2to2", 2, 2),
        # Patch deprecated after the marker was recorded.
        await _evolve(d, "v2to3", 2, 3),
    ]


def _activate_patch(input: PatchActivationInput) -> bool:
    """Worker policy: patch "second" stays off for new runs; the callback runs read-only."""
    return input.patch_id != "second"


SCENARIOS = [
    Scenario("patches", [PatchedWorkflow], _drive_patched),
    Scenario("patches_no_cache", [PatchedWorkflow], _drive_patched, worker_kwargs=NO_CACHE),
    Scenario(
        "patches_activation_callback",
        [PatchedWorkflow],
        _drive_patched,
        worker_kwargs={"patch_activation_callback": _activate_patch},
    ),
    Scenario(
        "patches_evolving",
        [EvolvingWorkflow],
        _drive_evolving,
        [echo],
        worker_kwargs=NO_CACHE,
    ),
]
