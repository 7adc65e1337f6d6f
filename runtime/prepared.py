"""Workflow instances made in two steps: prepared before their run is known, bound to it after.

A new run's first activation waits while its instance is made, and in a host that has been idle
that costs several times what it costs warm (docs/design-notes.md). Most of an instance does not
depend on the run: the definition, converters, handler tables, environment, module copies. A
runner that can make that part alone offers ``prepare_instance(det)``, which reads everything in
``det`` but its run fields (``info``, ``randomness_seed``, ``last_completion_result``,
``last_failure``), and returns an object whose ``bind(run)`` finishes the instance. A host makes
the next runs' prepared instances while it waits (``actors/run_factory.py``); each is bound once.
Runners without it (the SDK's, a user's) are prepared by keeping ``det`` and creating the
instance on ``bind``, so every runner can be driven this way.
"""

from __future__ import annotations

from typing import Protocol

from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from temporay.runtime import frozen
from temporay.runtime.run_info import RunDetails

__all__ = ["PreparedInstance", "prepare_instance", "shared_details", "with_run"]


class PreparedInstance(Protocol):
    def bind(self, run: RunDetails) -> WorkflowInstance:
        """The instance for ``run`` (call once)."""
        ...


def prepare_instance(runner: WorkflowRunner, det: WorkflowInstanceDetails) -> PreparedInstance:
    """``runner.prepare_instance(det)`` if the runner has it, else creation put off to ``bind``."""
    prepare = getattr(runner, "prepare_instance", None)
    if prepare is not None:
        prepared: PreparedInstance = prepare(det)
        return prepared
    return _CreatedOnBind(runner, det)


def shared_details(**fields: object) -> WorkflowInstanceDetails:
    """``WorkflowInstanceDetails`` of no run yet: its run fields are placeholders, filled by
    ``with_run`` (``prepare_instance`` reads none of them)."""
    return frozen.construct(
        WorkflowInstanceDetails,
        dict(fields, info=None, randomness_seed=0, last_completion_result=None, last_failure=None),
    )


def with_run(det: WorkflowInstanceDetails, run: RunDetails) -> WorkflowInstanceDetails:
    """``det`` with ``run``'s fields."""
    return frozen.replace(
        det,
        info=run.info,
        randomness_seed=run.randomness_seed,
        last_completion_result=run.last_completion_result,
        last_failure=run.last_failure,
    )


class _CreatedOnBind:
    """A runner's instance made the usual way, when its run is known."""

    __slots__ = ("_det", "_runner")

    def __init__(self, runner: WorkflowRunner, det: WorkflowInstanceDetails) -> None:
        self._runner = runner
        self._det = det

    def bind(self, run: RunDetails) -> WorkflowInstance:
        return self._runner.create_instance(with_run(self._det, run))
