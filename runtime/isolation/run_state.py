"""The isolation's per-run state (:class:`RunState`), the ContextVar that says which run is
executing (:data:`CURRENT_RUN`), and the gates every shim passes through.

One run's state is what its shims answer from (seed, random stream, workflow time, options), what
the import hook resolves imports against (the run's copies of the workflow's modules) and what
the I/O restrictions check. It sits below all of those: the shims, the import hook, the cloner
and the runner read it, and it needs none of them (only the type of the summary of the own
modules, :class:`~temporay.runtime.isolation.modules.OwnModuleTree`).

A shim must behave exactly like the real function unless it is called by workflow code of a run
that asked for shims: logging, Ray, gRPC and callbacks kept after the run all call the same
stand-in objects. The per-run :data:`CURRENT_RUN` ContextVar is that test (a ContextVar lookup is
cheaper than patching and unpatching anything), and :func:`clock_run` / :func:`draw_run` are the
two questions every shim asks it.
"""

from __future__ import annotations

import random as _random
import types
from contextvars import ContextVar
from typing import TYPE_CHECKING

import temporalio.workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

if TYPE_CHECKING:
    from temporay.runtime.isolation.modules import OwnModuleTree

__all__ = ["CURRENT_RUN", "RunState", "clock_run", "draw_run", "present_as", "restricting_run"]

_unsafe = temporalio.workflow.unsafe
_Runtime = temporalio.workflow._Runtime


class RunState:
    """What the shims and the isolation of one run need: seed, random stream, time, options, and
    the run's copies of the workflow's modules.

    One per run, referenced from the run's ContextVar value (and therefore from every asyncio task
    the run creates). Kept small: the random stream (2.5 KiB of Mersenne Twister state) is created
    only when the run first draws from it.
    """

    __slots__ = (
        "_rng",
        "_seed",
        "code_globals",
        "module_tree",
        "modules",
        "restrict_io",
        "run_id",
        "shims",
        "strict",
        "time_ns",
    )

    def __init__(
        self,
        seed: int,
        *,
        run_id: str = "",
        shims: bool = True,
        strict: bool = False,
        restrict_io: bool = True,
        modules: dict[int, types.ModuleType] | None = None,
        code_globals: frozenset[int] = frozenset(),
    ) -> None:
        self._seed = seed
        self._rng: _random.Random | None = None
        self.run_id = run_id
        self.shims = shims
        self.strict = strict
        self.restrict_io = restrict_io
        # id(template module) -> this run's copy, for imports executed by workflow code.
        self.modules: dict[int, types.ModuleType] = modules if modules is not None else {}
        # ids of the template namespaces whose frames count as workflow code when the run is not
        # isolated (isolated code is recognised by its builtins).
        self.code_globals = code_globals
        # The workflow's own modules (what imports resolve to), if the run is isolated.
        self.module_tree: OwnModuleTree | None = None
        self.time_ns = 0

    @property
    def seed(self) -> int:
        return self._seed

    def reseed(self, seed: int) -> None:
        """A new randomness seed from the server (``UpdateRandomSeed``): restart the stream."""
        self._seed = seed
        self._rng = None

    def rng(self) -> _random.Random:
        rng = self._rng
        if rng is None:
            # A str seed is hashed with SHA-512 (not the per-process hash()), so every worker
            # derives the same stream; the prefix keeps it apart from workflow.random()'s.
            rng = self._rng = _random.Random(f"temporay-shims:{self._seed}")
        return rng

    def now_ns(self) -> int:
        """The workflow's current time, exactly as ``workflow.time_ns()`` reports it."""
        runtime = _Runtime.maybe_current()
        if runtime is not None:
            return runtime.workflow_time_ns()
        return self.time_ns


CURRENT_RUN: ContextVar[RunState | None] = ContextVar("temporay_current_run", default=None)
"""The run whose workflow code is executing in this context; ``None`` outside activations."""


def _refusal(qualified_name: str, alternative: str) -> RestrictedWorkflowAccessError:
    return RestrictedWorkflowAccessError(
        qualified_name,
        override_message=(
            f"Cannot call {qualified_name} from workflow code: this worker runs workflows in "
            f"strict mode (LocalWorkflowRunner(strict=True)). Use {alternative} instead."
        ),
    )


def restricting_run() -> RunState | None:
    """The run whose I/O restrictions apply here, or ``None`` (none, or lifted)."""
    st = CURRENT_RUN.get()
    if st is None or not st.restrict_io or _unsafe.is_sandbox_unrestricted():
        return None
    return st


def clock_run(name: str, alternative: str) -> RunState | None:
    """The run whose deterministic clock answers, or ``None`` for the real clock.

    Strict runs refuse instead, naming ``alternative``, as the SDK's sandbox would.
    """
    st = CURRENT_RUN.get()
    if st is None or not st.shims or _unsafe.is_sandbox_unrestricted():
        return None
    if st.strict:
        raise _refusal(name, alternative)
    return st


def draw_run(name: str, alternative: str) -> RunState | None:
    """The run whose random stream answers, or ``None`` for the real source.

    Like ``workflow.random()``, refuses in read-only contexts (queries, update validators): a
    draw there would shift the stream for this worker only and break replay elsewhere.
    """
    st = clock_run(name, alternative)
    if st is not None:
        runtime = _Runtime.maybe_current()
        if runtime is not None and runtime.workflow_is_read_only():
            raise temporalio.workflow.ReadOnlyContextError(
                f"{name} draws from the run's random stream and cannot be called in a query or "
                "an update validator"
            )
    return st


def present_as(obj: type | types.FunctionType, name: str, module: str) -> None:
    """Give a stand-in the name of what it replaces, so reprs, pickling by reference and error
    messages read as the standard library's."""
    obj.__name__ = obj.__qualname__ = name
    obj.__module__ = module
