"""``LocalWorkflowRunner``: temporay's isolation and shims, in this process, around an engine.

``Worker(client, ..., workflow_runner=LocalWorkflowRunner())`` runs workflows on the Worker's own
threads (no Ray), each run with its own copy of the workflow's modules and deterministic
``time``/``datetime``/``random``/``uuid``/``os``/``secrets``; ``RayWorkflowRunner`` builds the same
runner inside every shard process (``LocalWorkflowRunner(engine=..., **options)``), so a workflow
behaves the same in both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from temporay.runtime.engines import EngineSpec, resolve_engine
from temporay.runtime.isolated_runner import IsolatedWorkflowRunner
from temporay.runtime.isolation.options import IsolationOptions

__all__ = ["LocalWorkflowRunner"]

logger = logging.getLogger(__name__)


class LocalWorkflowRunner(IsolatedWorkflowRunner):
    """Runs workflows in this process with per-run isolation and deterministic shims.

    Args:
        engine: What executes workflow code: ``"temporay"`` (temporay's runtime, the default),
            ``"sdk"`` (the SDK's own workflow instance) or any ``temporalio.worker.WorkflowRunner``.
            The SDK's ``SandboxedWorkflowRunner`` isolates on its own: isolation and shims are then
            left to it.
        isolation: Give each run its own copy of the workflow's modules (module globals, class
            attributes, module-level containers), instead of sharing the imported module.
        shims: Deterministic ``time.time()``, ``datetime.now()``, ``random.*``, ``uuid.uuid4()``,
            ``os.urandom()``, ``secrets.*`` in workflow code (needs ``isolation``). Workflows that
            rely on them cannot run on the SDK's sandbox, which refuses those calls.
        strict: Refuse those calls (``RestrictedWorkflowAccessError``), like the SDK's sandbox.
        restrict_io: Refuse files, sockets, subprocesses, threads, ``time.sleep`` and environment
            writes from workflow code.
        shared_modules: Modules shared between runs on top of the defaults (standard library,
            temporalio, installed packages, ``imports_passed_through()`` blocks).
        isolated_modules: Installed modules that still get a per-run copy (your own package).

    All arguments are picklable, and so is the runner (it pickles as its arguments): a hosting
    process builds its own.
    """

    def __init__(
        self,
        engine: EngineSpec | None = None,
        *,
        isolation: bool = True,
        shims: bool = True,
        strict: bool = False,
        restrict_io: bool = True,
        shared_modules: Iterable[str] = (),
        isolated_modules: Iterable[str] = (),
    ) -> None:
        self._arguments: dict[str, Any] = {
            "engine": engine,
            "isolation": isolation,
            "shims": shims,
            "strict": strict,
            "restrict_io": restrict_io,
            "shared_modules": tuple(shared_modules),
            "isolated_modules": tuple(isolated_modules),
        }
        runner = resolve_engine(engine)
        if isinstance(runner, SandboxedWorkflowRunner) and (isolation or shims or strict):
            logger.debug(
                "LocalWorkflowRunner: the SDK's SandboxedWorkflowRunner isolates workflow code "
                "itself; temporay's isolation and shims are off around it"
            )
            isolation = shims = strict = False
        options = IsolationOptions(
            shared_modules=frozenset(shared_modules),
            isolated_modules=frozenset(isolated_modules),
            restrict_io=restrict_io,
        )
        super().__init__(
            runner,
            isolation=isolation,
            shims=shims,
            strict=strict,
            options=options,
        )

    @property
    def arguments(self) -> dict[str, Any]:
        """The constructor arguments (what a hosting process rebuilds this runner from)."""
        return dict(self._arguments)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._arguments,))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._arguments.items())
        return f"LocalWorkflowRunner({args})"


def _rebuild(arguments: dict[str, Any]) -> LocalWorkflowRunner:
    return LocalWorkflowRunner(**arguments)
