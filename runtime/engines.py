"""Which engine executes workflow code: the SDK's own instance, ours, or any WorkflowRunner.

An engine is simply a ``temporalio.worker.WorkflowRunner``; hosting (Ray shards) and isolation
(per-run modules, shims) wrap it without caring which one it is.
"""

from __future__ import annotations

from typing import TypeAlias

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner

EngineSpec: TypeAlias = "str | WorkflowRunner"

ENGINE_NAMES = ("sdk", "temporay")
DEFAULT_ENGINE = "temporay"


class UnknownEngineError(ValueError):
    """The engine named is neither a known name nor a WorkflowRunner."""


def resolve_engine(engine: EngineSpec | None) -> WorkflowRunner:
    """Turn an engine spec into a WorkflowRunner instance.

    ``"temporay"`` is our runtime (the default since it passes the whole differential corpus
    against the SDK's instance); ``"sdk"`` is the SDK's own ``_WorkflowInstanceImpl`` (what
    ``UnsandboxedWorkflowRunner`` creates); a ``WorkflowRunner`` instance (for example the SDK's
    ``SandboxedWorkflowRunner()``) is used as given.
    """
    if engine is None:
        engine = DEFAULT_ENGINE
    if isinstance(engine, WorkflowRunner):
        return engine
    if engine == "sdk":
        return UnsandboxedWorkflowRunner()
    if engine == "temporay":
        from temporay.runtime.engine.runner import TemporayWorkflowRunner

        return TemporayWorkflowRunner()
    raise UnknownEngineError(
        f"unknown engine {engine!r}: use one of {', '.join(ENGINE_NAMES)} or a "
        "temporalio.worker.WorkflowRunner instance"
    )


class EngineFactory:
    """Builds the engine inside a hosting process (a shard): pickled there by reference when
    the spec is a name, by value when it is a runner instance."""

    def __init__(self, engine: EngineSpec | None) -> None:
        self.engine = engine

    def __call__(self) -> WorkflowRunner:
        return resolve_engine(self.engine)
