"""Whether a cluster can hold the shards a runner asks for, checked before waiting on Ray.

Ray queues an actor whose resources no node has, silently and for ever; a runner must say at once
that its shards cannot fit (and when they only have to wait, that they wait and why).
"""

from __future__ import annotations

import logging

import ray

logger = logging.getLogger(__name__)


class ShardPlacementError(RuntimeError):
    """The cluster cannot hold the shards a runner asks for."""


def check_resources(router_id: str, count: int, num_cpus: float) -> None:
    """Fail at once when the cluster can never hold the shards; warn when it cannot now."""
    needed = count * num_cpus
    if needed <= 0:
        return
    total = float(ray.cluster_resources().get("CPU", 0.0))
    free = float(ray.available_resources().get("CPU", 0.0))
    ask = f"RayWorkflowRunner {router_id[:8]} asks for {count} shards x {num_cpus:g} CPU"
    if needed > total:
        raise ShardPlacementError(
            f"{ask} = {needed:g} CPU, but the cluster has {total:g} CPU in all; lower shards= "
            "or shard_num_cpus= (0 reserves nothing), or add nodes."
        )
    if needed > free:
        logger.warning(
            "%s = %g CPU, but only %g of the cluster's %g CPU are free now (other runners or "
            "tasks hold the rest); waiting for them",
            ask,
            needed,
            free,
            total,
        )
