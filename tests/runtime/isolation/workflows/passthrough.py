"""Workflows using the SDK's escape hatches: imports_passed_through(), failure exception types
defined in the module, and @workflow.defn(sandboxed=False)."""

from __future__ import annotations

import sys
import time
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tests.runtime.isolation.workflows import shared_helper
    from tests.runtime.isolation.workflows.globals_helper import (
        bump_helper as helper_counter,  # shared: checked by the tests
    )

NOT_SANDBOXED_COUNTER = 0


class OwnError(Exception):
    """Listed in the Worker's workflow_failure_exception_types."""


class OwnDefnError(Exception):
    """Listed in the definition's failure_exception_types."""


@workflow.defn(failure_exception_types=[OwnDefnError])
class FailingWorkflow:
    @workflow.run
    async def run(self, kind: str) -> None:
        shared_helper.touch()
        if kind == "worker":
            raise OwnError("raised by the run's own class (worker-level failure type)")
        raise OwnDefnError("raised by the run's own class (definition failure type)")

    def counter(self) -> int:
        # Never called: makes helper_counter reachable from the workflow class.
        return helper_counter()


@workflow.defn(sandboxed=False)
class NotSandboxedWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        global NOT_SANDBOXED_COUNTER
        NOT_SANDBOXED_COUNTER += 1
        module = sys.modules[__name__]
        return {
            "same_module": globals() is module.__dict__,
            "counter": module.NOT_SANDBOXED_COUNTER,
            "real_clock": time.time() != workflow.time(),
        }
