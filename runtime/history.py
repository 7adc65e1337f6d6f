"""Workflow histories for replay: load them (JSON from the UI/CLI/SDK, binary protobuf, or from a
server), save them, and replay them on an engine.

Replaying a history that an official Python worker recorded on our engine, and the other way
round, is how portability is shown: the engine must produce the commands the history holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import temporalio.api.history.v1
import temporalio.client
from temporalio.worker import Replayer, WorkflowReplayResults, WorkflowRunner

from temporay.runtime.engines import EngineSpec, resolve_engine


def load_history(
    source: str | Path | bytes, *, workflow_id: str = ""
) -> temporalio.client.WorkflowHistory:
    """Load a history from a file path, JSON text, or binary ``temporal.api.history.v1.History``.

    A file whose name ends in ``.json`` (or text starting with ``{``) is read as JSON in any of
    the forms ``WorkflowHistory.from_json`` accepts; anything else as binary protobuf. The
    workflow id is not part of a history: give it if the replay needs it (it is visible to
    workflow code as ``workflow.info().workflow_id``).
    """
    data: str | bytes
    if isinstance(source, Path) or (
        isinstance(source, str) and not source.lstrip().startswith("{")
    ):
        path = Path(source)
        data = path.read_text() if path.suffix == ".json" else path.read_bytes()
        if isinstance(data, bytes) and data.lstrip().startswith(b"{"):
            data = data.decode()
    else:
        data = source
    if isinstance(data, bytes) and data.lstrip().startswith(b"{"):
        data = data.decode()
    if isinstance(data, str):
        return temporalio.client.WorkflowHistory.from_json(workflow_id, data)
    history = temporalio.api.history.v1.History()
    history.ParseFromString(data)
    return temporalio.client.WorkflowHistory(workflow_id, list(history.events))


def save_history(history: temporalio.client.WorkflowHistory, path: str | Path) -> None:
    """Save as JSON (``.json``, with the workflow id beside the events) or binary protobuf."""
    path = Path(path)
    if path.suffix == ".json":
        document = history.to_json_dict()
        document["workflowId"] = history.workflow_id
        path.write_text(json.dumps(document, indent=1))
    else:
        path.write_bytes(
            temporalio.api.history.v1.History(events=history.events).SerializeToString()
        )


def load_history_file(path: str | Path) -> temporalio.client.WorkflowHistory:
    """Load a history saved by ``save_history`` (JSON keeps its workflow id)."""
    path = Path(path)
    workflow_id = ""
    if path.suffix == ".json":
        workflow_id = json.loads(path.read_text()).get("workflowId", "")
    return load_history(path, workflow_id=workflow_id)


async def fetch_history(
    client: temporalio.client.Client, workflow_id: str, run_id: str | None = None
) -> temporalio.client.WorkflowHistory:
    """The history of one run, as the server has it now."""
    return await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()


async def _iterate(
    histories: Iterable[temporalio.client.WorkflowHistory],
) -> AsyncIterator[temporalio.client.WorkflowHistory]:
    for history in histories:
        yield history


def replayer(
    workflows: Sequence[type], *, engine: EngineSpec | None = "temporay", **kwargs: Any
) -> Replayer:
    """A ``temporalio.worker.Replayer`` whose runners (sandboxed and unsandboxed) are ``engine``."""
    runner: WorkflowRunner = resolve_engine(engine)
    return Replayer(
        workflows=workflows, workflow_runner=runner, unsandboxed_workflow_runner=runner, **kwargs
    )


async def replay(
    histories: Iterable[temporalio.client.WorkflowHistory],
    workflows: Sequence[type],
    *,
    engine: EngineSpec | None = "temporay",
    raise_on_replay_failure: bool = True,
    **kwargs: Any,
) -> WorkflowReplayResults:
    """Replay histories on ``engine``; a nondeterminism or task failure raises by default."""
    return await replayer(workflows, engine=engine, **kwargs).replay_workflows(
        _iterate(histories), raise_on_replay_failure=raise_on_replay_failure
    )
