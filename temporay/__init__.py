"""temporay: Temporal workflows on a deterministic runtime, every run an actor on a Ray cluster.

``Worker(client, ..., plugins=[RayPlugin()])`` runs a Worker's workflows on Ray shard actors;
``RayWorkflowRunner`` is the same as a ``workflow_runner``; ``LocalWorkflowRunner`` runs the same
isolation and shims in this process, without Ray; ``temporay.converter`` holds the msgpack data
converter. ``docs/architecture.md`` describes the layers behind these names.

Names are imported on first use, so ``import temporay`` needs no Ray; ``dir(temporay)`` lists
them (``__all__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from temporay import converter
    from temporay.cluster.connect import RayConnectError
    from temporay.cluster.executor import HopExecutor
    from temporay.cluster.main_script import MainScriptError
    from temporay.cluster.placement import ShardPlacementError
    from temporay.cluster.plugin import RayPlugin
    from temporay.cluster.pool import ShardStartError
    from temporay.cluster.runner import RayWorkflowRunner
    from temporay.runtime.local_runner import LocalWorkflowRunner
    from temporay.runtime.placement import dedicated_actor

_LAZY = {
    "converter": "temporay.converter",
    "dedicated_actor": "temporay.runtime.placement",
    "HopExecutor": "temporay.cluster.executor",
    "MainScriptError": "temporay.cluster.main_script",
    "RayConnectError": "temporay.cluster.connect",
    "ShardPlacementError": "temporay.cluster.placement",
    "ShardStartError": "temporay.cluster.pool",
    "LocalWorkflowRunner": "temporay.runtime.local_runner",
    "RayPlugin": "temporay.cluster.plugin",
    "RayWorkflowRunner": "temporay.cluster.runner",
}


def __getattr__(name: str) -> Any:
    # Ray is imported only when a Ray-backed name is used, so `temporay.runtime` (and
    # LocalWorkflowRunner) work where Ray is not installed.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'temporay' has no attribute {name!r}")
    import importlib

    if module == f"{__name__}.{name}":
        return importlib.import_module(module)  # a submodule
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "HopExecutor",
    "LocalWorkflowRunner",
    "MainScriptError",
    "RayConnectError",
    "RayPlugin",
    "RayWorkflowRunner",
    "ShardPlacementError",
    "ShardStartError",
    "__version__",
    "converter",
    "dedicated_actor",
]
