"""Connecting to Ray: an explicit address, else the ambient cluster, else a local one we own."""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

logger = logging.getLogger(__name__)


def connect_ray(address: str | None, init_kwargs: dict[str, Any] | None = None) -> bool:
    """Make sure this process is connected to Ray; return True if we started a local cluster
    (then we also own its shutdown).

    - ``address`` given: connect there (``"auto"``, ``"ray://..."``, ``"host:port"``).
    - already connected (``ray.init`` done by the user): use that.
    - ``RAY_ADDRESS`` set: connect there.
    - otherwise ``ray.init()`` decides: it joins a cluster started on this machine with
      ``ray start``, else starts a local one (which we then own and shut down).
    """
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    kwargs.update(init_kwargs or {})
    if address is not None:
        ray.init(address=address, **kwargs)
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**kwargs)
        return False
    ray.init(**kwargs)
    logger.info("Started a local Ray cluster for temporay")
    return True


def cluster_cpus() -> int:
    return max(int(ray.cluster_resources().get("CPU", 1)), 1)
