"""The Registry actor: membership, health, stats and the run directory, off the hot path.

Routers decide placement themselves (no registry call per activation); they tell the registry
what they placed, in batches, so operators can ask "where does run X live?" and "how loaded is each
shard?" without touching a router. One registry serves one deployment (an embedded runner, or a
fleet), is created with ``num_cpus=0`` and dies with its owner.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import ray

from temporay.proto import hosting as pb


@dataclass
class ShardRecord:
    name: str
    router_id: str
    node_id: str
    state: str = "alive"  # alive | dead
    registered_at: float = field(default_factory=time.time)
    reason: str = ""


@dataclass
class RunRecord:
    run_id: str
    workflow_id: str
    workflow_type: str
    shard: str
    router_id: str
    placed_at: float


class RegistryCore:
    def __init__(self, name: str) -> None:
        self.name = name
        self._routers: dict[str, dict[str, Any]] = {}
        self._shards: dict[str, ShardRecord] = {}
        self._handles: dict[str, Any] = {}
        self._runs: dict[tuple[str, str], RunRecord] = {}

    def register_router(self, router_id: str, info: dict[str, Any]) -> None:
        self._routers[router_id] = {**info, "registered_at": time.time()}

    def unregister_router(self, router_id: str) -> None:
        self._routers.pop(router_id, None)
        for key in [k for k in self._runs if k[0] == router_id]:
            del self._runs[key]

    def register_shard(self, name: str, router_id: str, node_id: str, handle: Any) -> None:
        self._shards[name] = ShardRecord(name=name, router_id=router_id, node_id=node_id)
        self._handles[name] = handle

    def shard_dead(self, name: str, reason: str) -> None:
        record = self._shards.get(name)
        if record is not None:
            record.state = "dead"
            record.reason = reason
        self._handles.pop(name, None)

    def report_runs(
        self, router_id: str, placed: list[tuple[str, str, str, str]], removed: list[str]
    ) -> None:
        """``placed``: (run id, workflow id, workflow type, shard name); ``removed``: run ids."""
        now = time.time()
        for run_id, workflow_id, workflow_type, shard in placed:
            self._runs[(router_id, run_id)] = RunRecord(
                run_id, workflow_id, workflow_type, shard, router_id, now
            )
        for run_id in removed:
            self._runs.pop((router_id, run_id), None)

    def where(self, run_id: str) -> list[dict[str, Any]]:
        return [asdict(r) for (_, rid), r in self._runs.items() if rid == run_id]

    def runs(self, shard: str | None = None) -> list[dict[str, Any]]:
        return [asdict(r) for r in self._runs.values() if shard is None or r.shard == shard]

    def describe(self) -> dict[str, Any]:
        per_shard: dict[str, int] = {}
        for record in self._runs.values():
            per_shard[record.shard] = per_shard.get(record.shard, 0) + 1
        return {
            "name": self.name,
            "routers": dict(self._routers),
            "shards": [
                {**asdict(s), "runs": per_shard.get(s.name, 0)} for s in self._shards.values()
            ],
            "runs": len(self._runs),
        }

    def live_shard_handles(self) -> dict[str, Any]:
        return dict(self._handles)


@ray.remote(num_cpus=0)
class Registry:
    """Ray actor around ``RegistryCore``; ``stats()`` asks every live shard directly."""

    def __init__(self, name: str) -> None:
        self._core = RegistryCore(name)

    def register_router(self, router_id: str, info: dict[str, Any]) -> None:
        self._core.register_router(router_id, info)

    def unregister_router(self, router_id: str) -> None:
        self._core.unregister_router(router_id)

    def register_shard(self, name: str, router_id: str, node_id: str, handle: Any) -> None:
        self._core.register_shard(name, router_id, node_id, handle)

    def shard_dead(self, name: str, reason: str) -> None:
        self._core.shard_dead(name, reason)

    def report_runs(
        self, router_id: str, placed: list[tuple[str, str, str, str]], removed: list[str]
    ) -> None:
        self._core.report_runs(router_id, placed, removed)

    def where(self, run_id: str) -> list[dict[str, Any]]:
        return self._core.where(run_id)

    def runs(self, shard: str | None = None) -> list[dict[str, Any]]:
        return self._core.runs(shard)

    def describe(self) -> dict[str, Any]:
        return self._core.describe()

    async def stats(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Live statistics of every shard (one call each, concurrently)."""
        import asyncio

        from google.protobuf.json_format import MessageToDict

        handles = self._core.live_shard_handles()

        async def one(name: str, handle: Any) -> dict[str, Any]:
            try:
                data = await asyncio.wait_for(handle.stats.remote(), timeout)
            except Exception as err:
                return {"shardName": name, "error": repr(err)}
            return MessageToDict(pb.ShardStats.FromString(data))

        return list(await asyncio.gather(*(one(n, h) for n, h in handles.items())))
