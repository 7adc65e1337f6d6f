"""What a worker shares between runs and what each run gets a copy of (the user's knobs)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from temporalio.worker.workflow_sandbox import SandboxRestrictions

__all__ = ["IsolationOptions"]


@dataclass(frozen=True)
class IsolationOptions:
    """What is shared between runs and what each run gets a copy of.

    In the spirit of the SDK's ``SandboxRestrictions.passthrough_modules``: by default the
    standard library, ``temporalio``, ``temporay`` and every installed package (anything under
    ``site-packages``/``dist-packages``) are shared, as are modules imported inside
    ``workflow.unsafe.imports_passed_through()``; the workflow's own module and the other user
    modules it imports are per run.

    Attributes:
        shared_modules: Module names (a name covers its submodules) shared between runs, like the
            SDK's ``with_passthrough_modules(...)``.
        isolated_modules: Module names given a per-run copy even though they are installed as
            third-party packages (your own package installed in site-packages).
        restrict_io: Refuse files, sockets, subprocesses, threads, ``time.sleep`` and environment
            writes from workflow code.
    """

    shared_modules: frozenset[str] = frozenset()
    isolated_modules: frozenset[str] = frozenset()
    restrict_io: bool = True

    def with_shared_modules(self, *names: str) -> IsolationOptions:
        return dataclasses.replace(self, shared_modules=self.shared_modules | set(names))

    def with_isolated_modules(self, *names: str) -> IsolationOptions:
        return dataclasses.replace(self, isolated_modules=self.isolated_modules | set(names))

    @classmethod
    def from_sandbox_restrictions(cls, restrictions: SandboxRestrictions) -> IsolationOptions:
        """The modules the SDK's sandbox passes through are the ones shared here, so a worker
        configured for the SDK's sandbox keeps its meaning.

        ``passthrough_all_modules`` is not supported (it would leave nothing but the workflow's
        own module to isolate: say so with ``shared_modules`` instead).
        """
        if restrictions.passthrough_all_modules:
            raise ValueError(
                "SandboxRestrictions.passthrough_all_modules has no equivalent here: list the "
                "modules to share in IsolationOptions(shared_modules=...)"
            )
        return cls(shared_modules=frozenset(restrictions.passthrough_modules))
