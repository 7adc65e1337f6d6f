"""Checks of ``RayWorkflowRunner``'s options where they are given, each with the rule it broke."""

from __future__ import annotations

from typing import Any

TRANSPORTS = ("socket", "ray")

WORKER_DEADLOCK_TIMEOUT_S = 2.0
"""The SDK Worker's own deadlock timeout, which our budget must stay under."""


def _positive_int(name: str, value: Any, *, allow_none: bool = False, zero: bool = False) -> None:
    if value is None and allow_none:
        return
    low = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")


def _positive_number(name: str, value: Any, *, zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be a number {bound}, not {value!r}")


def validate_runner_options(
    *,
    address: Any,
    shards: Any,
    shard_threads: Any,
    shard_num_cpus: Any,
    deadlock_budget: Any,
    max_inflight_per_shard: Any,
    max_batch: Any,
    transport: Any,
    namespace: Any,
    runtime_env: Any,
    dedicated_warm: Any,
    dedicated_max_idle: Any,
    ray_init_kwargs: Any,
    connect_timeout: Any,
    shard_start_timeout: Any,
) -> None:
    """Raise ``ValueError`` / ``TypeError`` naming the first option that cannot work."""
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ValueError(f"address must be a Ray address such as 'host:6379', not {address!r}")
    _positive_int("shards", shards, allow_none=True)
    _positive_int("shard_threads", shard_threads)
    _positive_number("shard_num_cpus", shard_num_cpus, zero=True)
    if deadlock_budget is not None:
        _positive_number("deadlock_budget", deadlock_budget)
        if deadlock_budget >= WORKER_DEADLOCK_TIMEOUT_S:
            raise ValueError(
                f"deadlock_budget must be below the Worker's own {WORKER_DEADLOCK_TIMEOUT_S:g} s "
                f"deadlock timeout (or None to disable it), not {deadlock_budget!r}"
            )
    _positive_int("max_inflight_per_shard", max_inflight_per_shard)
    _positive_int("max_batch", max_batch)
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, not {transport!r}")
    if not isinstance(namespace, str) or not namespace:
        raise ValueError(f"namespace must be a non-empty string, not {namespace!r}")
    if runtime_env is not None and not isinstance(runtime_env, dict):
        raise TypeError(
            f"runtime_env must be a dict (a Ray runtime environment), not {runtime_env!r}"
        )
    _positive_int("dedicated_warm", dedicated_warm, zero=True)
    _positive_int("dedicated_max_idle", dedicated_max_idle, zero=True)
    if ray_init_kwargs is not None and not isinstance(ray_init_kwargs, dict):
        raise TypeError(
            f"ray_init_kwargs must be a dict of ray.init arguments, not {ray_init_kwargs!r}"
        )
    _positive_number("connect_timeout", connect_timeout)
    _positive_number("shard_start_timeout", shard_start_timeout)
