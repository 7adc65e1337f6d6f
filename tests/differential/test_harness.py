"""The differential harness can fail: an engine that differs in one command, one log line or one
warning is caught (offline, on hand-made activations)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import threading
import warnings
from typing import Any

import pytest
import temporalio.bridge.proto.workflow_completion as wfcomp
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from temporay.runtime.engine.runner import TemporayWorkflowRunner
from tests.runtime.engine.test_engine import (
    LATER,
    RUN_ID,
    START,
    AwaitActivityWorkflow,
    details,
    init,
    note,
)
from tests.support.activations import activation, resolve_activity

from . import harness
from .harness import RecordedInstance, Step, check_instance


class _Skewed(WorkflowInstance):
    """Our engine with one deliberate difference."""

    def __init__(self, inner: WorkflowInstance, kind: str) -> None:
        self._inner = inner
        self._kind = kind

    def activate(self, act: Any) -> wfcomp.WorkflowActivationCompletion:
        completion = self._inner.activate(act)
        if self._kind == "command" and completion.successful.commands:
            completion.successful.commands[-1].schedule_activity.activity_id += "-skewed"
        elif self._kind == "log":
            logging.getLogger("temporay.runtime").warning("an extra line")
        elif self._kind == "warning":
            warnings.warn("an extra warning", RuntimeWarning, stacklevel=1)
        return completion

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Any:
        return self._inner.get_info()


class _SkewedRunner(WorkflowRunner):
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def prepare_workflow(self, defn: Any) -> None:
        pass

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Skewed(TemporayWorkflowRunner().create_instance(det), self.kind)


def _recorded() -> RecordedInstance:
    """Hand-made activations with the completions the SDK's own instance gives them."""
    activations = [
        activation(RUN_ID, init(AwaitActivityWorkflow), note("a"), at=START),
        activation(RUN_ID, resolve_activity(1, "x"), note("b"), at=LATER),
    ]
    record = RecordedInstance(details(AwaitActivityWorkflow), [])
    completions: list[bytes] = []

    def run() -> None:
        placeholder = asyncio.new_event_loop()
        asyncio._set_running_loop(placeholder)
        try:
            instance = harness.ENGINES["sdk"]().create_instance(
                dataclasses.replace(record.details, info=copy.deepcopy(record.details.info))
            )
        finally:
            asyncio._set_running_loop(None)
            placeholder.close()
        for act in activations:
            completions.append(instance.activate(act).SerializeToString())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    record.steps = [
        Step(act.SerializeToString(), completion)
        for act, completion in zip(activations, completions, strict=True)
    ]
    return record


def test_identical_engines_pass() -> None:
    check_instance(_recorded(), "sdk")


@pytest.mark.parametrize("kind", ["command", "log", "warning"])
def test_a_difference_is_caught(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = _recorded()
    monkeypatch.setitem(harness.ENGINES, "temporay", lambda: _SkewedRunner(kind))
    with pytest.raises(AssertionError):
        check_instance(recorded, "sdk")
