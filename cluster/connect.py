"""Connecting to Ray within a bound, with one clear error, and sharing the connection.

``ray.init`` waits forever for a cluster that is not there (an unreachable address, or the address
a dead ``ray start`` cluster left in ``/tmp/ray/ray_current_cluster``), and an explicit address
never turns on Ray's token authentication, so a token-protected ``ray start`` cluster is refused
after pages of warnings. So before ``ray.init`` we ask the cluster's GCS for its cluster id over
plain gRPC, bounded: the answer tells apart "nobody listens", "not a Ray GCS", "wants a token"
and "fine", and each failure becomes one ``RayConnectError`` naming the address, where it came
from and what to do.

Runners in one process share the process's Ray connection through leases: a cluster that temporay
started is shut down when the last lease is released, and one the user started never is.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 30.0
"""Bound on reaching an existing cluster (the probe and ``ray.init``)."""
LOCAL_START_TIMEOUT_S = 120.0
"""Bound on starting a local cluster: longer than reaching one, as a cold start on a small,
loaded machine is slow, yet a start that cannot finish still fails in bounded time."""
PROBE_TIMEOUT_S = 5.0

AUTH_MODE_ENV = "RAY_AUTH_MODE"


class RayConnectError(ConnectionError):
    """This process could not connect to (or start) Ray; the message says which address and why."""


@dataclass(frozen=True)
class Target:
    """Where ``ray.init`` would go: ``address`` (None: start a local cluster) and why."""

    address: str | None
    source: str


def resolve_target(address: str | None) -> Target:
    """The cluster a runner with this ``address`` argument means, as Ray itself resolves it."""
    if address not in (None, "auto"):
        if address == "local":
            return Target(None, "address='local'")
        return Target(address, f"address={address!r}")
    env = os.environ.get("RAY_ADDRESS")
    if env:
        return Target(env, f"RAY_ADDRESS={env!r}")
    from ray._private import services

    found = services.find_bootstrap_address(None)
    if found:
        return Target(found, "the cluster file /tmp/ray/ray_current_cluster (left by `ray start`)")
    if address == "auto":
        return Target(None, "address='auto' (no running cluster found)")
    return Target(None, "no address given")


def available_token() -> tuple[str, str] | None:
    """The token this process would send and where it came from, looked up as Ray does."""
    direct = os.environ.get("RAY_AUTH_TOKEN")
    if direct:
        return direct.strip(), "RAY_AUTH_TOKEN"
    path_env = os.environ.get("RAY_AUTH_TOKEN_PATH")
    paths = [Path(path_env)] if path_env else [Path.home() / ".ray" / "auth_token"]
    for path in paths:
        try:
            token = path.read_text().strip()
        except OSError:
            continue
        if token:
            return token, str(path)
    return None


def _host_port(address: str) -> str:
    bare = address.removeprefix("ray://")
    return bare.split("/", 1)[0]


def probe_gcs(address: str, token: str | None, timeout: float = PROBE_TIMEOUT_S) -> str:
    """``"ok"``, ``"unauthenticated"``, ``"refused"``, ``"not_ray"`` or ``"no_answer"``."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    metadata = [("authorization", f"Bearer {token}")] if token else None
    with grpc.insecure_channel(_host_port(address)) as channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(),  # type: ignore[attr-defined]
                timeout=timeout,
                metadata=metadata,
            )
        except grpc.RpcError as err:
            code = err.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                return "unauthenticated"
            if code == grpc.StatusCode.UNAVAILABLE:
                return "refused"
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return "no_answer"
            return "not_ray"
    return "ok"


def _enable_token_mode() -> None:
    """What Ray does for a cluster it finds itself: token mode for this process."""
    from ray._raylet import Config  # type: ignore[attr-defined]

    os.environ[AUTH_MODE_ENV] = "token"
    Config.initialize("")


def _check_existing(target: Target, timeout: float) -> None:
    """Raise ``RayConnectError`` unless the cluster at ``target`` will accept this process."""
    assert target.address is not None
    where = f"Ray at {target.address} (from {target.source})"
    if target.address.startswith("ray://") or os.environ.get("RAY_USE_TLS", "0") not in ("", "0"):
        return  # Ray Client or TLS: no plain-gRPC probe; ray.init's own bound applies
    mode = os.environ.get(AUTH_MODE_ENV)
    token = available_token()
    send = token[0] if token and mode == "token" else None
    verdict = probe_gcs(target.address, send, min(timeout, PROBE_TIMEOUT_S))
    if verdict == "unauthenticated" and send is None and token and mode is None:
        verdict = probe_gcs(target.address, token[0], min(timeout, PROBE_TIMEOUT_S))
        if verdict == "ok":
            logger.info(
                "Ray at %s uses token authentication; using the token from %s",
                target.address,
                token[1],
            )
            _enable_token_mode()
            return
    if verdict == "ok":
        return
    if verdict == "refused":
        raise RayConnectError(
            f"{where}: nothing answers there. Start the cluster (`ray start --head`), fix the "
            "address, or give no address to start a local cluster."
        )
    if verdict == "no_answer":
        raise RayConnectError(
            f"{where}: no answer within {min(timeout, PROBE_TIMEOUT_S):.0f}s. Check the address "
            "and that the network lets this process reach the head node's GCS port."
        )
    if verdict == "not_ray":
        raise RayConnectError(
            f"{where}: something answers there but it is not a Ray GCS; check the address and "
            "port (`ray start --head` prints the right one)."
        )
    if token is None:
        raise RayConnectError(
            f"{where}: the cluster requires token authentication and this process has no "
            "token. Set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token, or copy "
            "it to ~/.ray/auth_token (`ray get-auth-token` on the head node prints it)."
        )
    if mode == "disabled":
        raise RayConnectError(
            f"{where}: the cluster requires token authentication but RAY_AUTH_MODE=disabled; "
            "unset it (the token from " + token[1] + " is then used)."
        )
    raise RayConnectError(
        f"{where}: the cluster refused the token from {token[1]}; give the cluster's own token "
        "(`ray get-auth-token` on the head node prints it)."
    )


class _OwnerThread:
    """Starts local clusters. Ray's processes die with the *thread* that spawned them (Linux's
    parent-death signal is per thread), so the thread that starts a cluster must outlive it: a
    daemon thread, living as long as the process. Not a ``ThreadPoolExecutor``: the interpreter
    joins (ends) those threads before ``atexit`` runs, which killed the cluster under the
    finalizers that drain it, and made every exit wait on a dead cluster."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="temporay-ray-owner", daemon=True
                )
                self._thread.start()
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future

    def _serve(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as err:
                future.set_exception(err)


_owner_thread = _OwnerThread()


def _start_local_within(kwargs: dict[str, Any], timeout: float) -> None:
    future = _owner_thread.submit(lambda: ray.init(**kwargs))
    try:
        future.result(timeout)
    except FutureTimeout:
        raise RayConnectError(
            f"Starting a local Ray cluster did not finish within {timeout:.0f}s"
        ) from None
    except Exception as err:
        raise RayConnectError(f"Starting a local Ray cluster failed: {_first_line(err)}") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _init_within(kwargs: dict[str, Any], timeout: float, what: str) -> None:
    """``ray.init(**kwargs)`` joining a cluster, on a thread waited for at most ``timeout``
    seconds (a hung join is left behind on its daemon thread)."""
    outcome: list[BaseException | None] = []

    def init() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as err:
            outcome.append(err)
        else:
            outcome.append(None)

    thread = threading.Thread(target=init, name="temporay-ray-init", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise RayConnectError(f"{what} did not finish within {timeout:.0f}s")
    error = outcome[0]
    if error is not None:
        raise RayConnectError(f"{what} failed: {_first_line(error)}") from error


# --- leases: one Ray connection per process, shared by its runners ---------------------------------

_lock = threading.Lock()
_leases = 0
_started_by_us = False


@dataclass
class RayLease:
    """One runner's use of the process's Ray connection; give it back with ``release_ray``."""

    started_cluster: bool
    released: bool = False


def acquire_ray(
    address: str | None,
    init_kwargs: dict[str, Any] | None = None,
    timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
    *,
    allow_start: bool = True,
) -> RayLease:
    """Connect this process to Ray (or reuse its connection), within ``timeout``.

    ``allow_start=False`` is for tools that inspect a running cluster: with no cluster to
    join they raise instead of starting an empty one."""
    global _leases, _started_by_us
    with _lock:
        if ray.is_initialized():
            _leases += 1
            return RayLease(started_cluster=_started_by_us)
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
        kwargs.update(init_kwargs or {})
        _leases = 0  # a cluster shut down under earlier leases: those are void
        target = resolve_target(kwargs.pop("address", address))
        stale = ""
        if target.address is not None and target.source.startswith("the cluster file"):
            try:
                _check_existing(target, timeout)
            except RayConnectError as err:
                if "nothing answers" not in str(err):
                    raise
                stale = target.address
                target = Target(None, "a stale cluster file")
        if target.address is None:
            if not allow_start:
                raise RayConnectError(
                    f"no running Ray cluster found ({target.source}); give the cluster's "
                    "address (--ray-address or RAY_ADDRESS)"
                )
            if stale:
                logger.warning(
                    "Ignoring /tmp/ray/ray_current_cluster: the `ray start` cluster it names "
                    "(%s) is not running; starting a local Ray cluster instead",
                    stale,
                )
            _start_local_within({**kwargs, "address": "local"}, LOCAL_START_TIMEOUT_S)
            logger.info("Started a local Ray cluster for temporay")
            _started_by_us = True
        else:
            if not target.source.startswith("the cluster file"):
                _check_existing(target, timeout)
            _init_within(
                {**kwargs, "address": target.address},
                timeout,
                f"Connecting to Ray at {target.address} (from {target.source})",
            )
            _started_by_us = False
        _leases += 1
        return RayLease(started_cluster=_started_by_us)


def release_ray(lease: RayLease) -> None:
    """Give a lease back; the last one shuts down a cluster temporay started."""
    global _leases, _started_by_us
    with _lock:
        if lease.released:
            return
        lease.released = True
        _leases = max(_leases - 1, 0)
        if _leases == 0 and _started_by_us and ray.is_initialized():
            ray.shutdown()
            _started_by_us = False


def cluster_cpus() -> int:
    return max(int(ray.cluster_resources().get("CPU", 1)), 1)
