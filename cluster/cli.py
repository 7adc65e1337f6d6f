"""The ``temporay`` command: run a Worker fleet on a Ray cluster, and inspect what runs there.

    temporay worker --task-queue orders --workflows myapp.workflows --activities myapp.activities
        [--address host:7233 | --dev-server] [--ray-address ADDR] [--replicas 2] [--shards 4]
    temporay status [--ray-address ADDR]

--replicas 0 runs the Worker in this process (it is then the router); --replicas N starts N
Worker actors in the cluster, each a Worker on the same task queue with shards of its own. The
command stays in the foreground; Ctrl-C or SIGTERM drains every run, stops everything it started
and exits with 130 or 143.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporay.cluster.specs import SpecError, load_objects, put_cwd_on_path

__all__ = ["build_parser", "load_objects", "main"]

logger = logging.getLogger("temporay")

TEMPORAL_CONNECT_TIMEOUT_S = 10.0

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the user can act on: printed as one line (``--debug``: with its traceback)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Signals:
    """SIGINT/SIGTERM: before serving, abandon the start (cleanup still runs); while serving,
    drain. Either way the command exits with 128 + the first signal's number."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.received: int | None = None
        self.stop = asyncio.Event()
        self.serving = False
        self._task = task
        self.install()

    def install(self) -> None:
        """(Re)install the handlers. Called again once Ray is up: ``ray.init`` installs a crash
        handler that prints a stack dump on SIGTERM before passing it on."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        first = self.received is None
        if first:
            self.received = sig
        if self.serving:
            self.stop.set()
        elif first:
            self._task.cancel()

    def exit_code(self) -> int:
        return 128 + self.received if self.received is not None else 0


def _runner_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"engine": args.engine}
    if args.shards:
        options["shards"] = args.shards
    if args.transport:
        options["transport"] = args.transport
    if args.ray_address:
        options["address"] = args.ray_address
    return options


def _resolve_specs(args: argparse.Namespace) -> tuple[list[Any], list[Any]]:
    put_cwd_on_path()
    try:
        workflows = load_objects(args.workflows, "workflow")
        activities = load_objects(args.activities, "activity")
    except SpecError as err:
        raise CliError(str(err), EXIT_USAGE) from err
    if not workflows:
        raise CliError(
            "no workflow classes (@workflow.defn) found in " + ", ".join(args.workflows), EXIT_USAGE
        )
    return workflows, activities


async def _connect_temporal(address: str, namespace: str) -> Any:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    try:
        client = await asyncio.wait_for(
            Client.connect(address, namespace=namespace), TEMPORAL_CONNECT_TIMEOUT_S
        )
    except TimeoutError:
        raise CliError(
            f"Temporal at {address}: no answer within {TEMPORAL_CONNECT_TIMEOUT_S:.0f}s; check "
            "--address"
        ) from None
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "Connection refused" in reason:
            reason = "connection refused"
        raise CliError(
            f"Temporal at {address}: cannot connect ({reason}); start a server, fix --address, "
            "or pass --dev-server"
        ) from err
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace),
            timeout=timedelta(seconds=TEMPORAL_CONNECT_TIMEOUT_S),
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"Temporal at {address}: namespace {namespace!r} does not exist"
            ) from err
        raise CliError(f"Temporal at {address}: {err.message}") from err
    return client


async def _run_worker(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    signals = _Signals(task)
    env = None
    cleanups: list[Callable[[], Any]] = []
    try:
        workflows, activities = _resolve_specs(args)
        address = args.temporal_address
        if args.dev_server:
            from temporay.cluster.devserver import start_dev_server

            env = await start_dev_server()
            address = env.client.service_client.config.target_host
            print(f"Temporal dev server on {address}", flush=True)
        client = await _connect_temporal(address, args.namespace)
        if args.replicas == 0:
            await _run_in_process(args, client, workflows, activities, signals, cleanups)
        else:
            await _run_fleet(args, address, workflows, activities, signals, cleanups)
        print("stopped", flush=True)
    except asyncio.CancelledError:
        if signals.received is None:
            raise
    finally:
        for cleanup in reversed(cleanups):
            await asyncio.to_thread(cleanup)
        if env is not None:
            await env.shutdown()
    return signals.exit_code()


async def _start_runner(args: argparse.Namespace) -> Any:
    from temporay.cluster.connect import RayConnectError
    from temporay.cluster.placement import ShardPlacementError
    from temporay.cluster.pool import ShardStartError
    from temporay.cluster.runner import RayWorkflowRunner

    try:
        runner = RayWorkflowRunner(**_runner_options(args))
    except (TypeError, ValueError) as err:
        raise CliError(str(err), EXIT_USAGE) from err
    try:
        await asyncio.to_thread(runner.start)
    except (RayConnectError, ShardPlacementError, ShardStartError) as err:
        raise CliError(str(err)) from err
    return runner


async def _run_in_process(
    args: argparse.Namespace,
    client: Any,
    workflows: list[Any],
    activities: list[Any],
    signals: _Signals,
    cleanups: list[Callable[[], Any]],
) -> None:
    from temporalio.worker import Worker

    from temporay.cluster.plugin import RayPlugin

    runner = await _start_runner(args)
    cleanups.append(runner.close)
    signals.install()
    worker = Worker(
        client,
        task_queue=args.task_queue,
        workflows=workflows,
        activities=activities,
        plugins=[RayPlugin(runner=runner)],
    )
    async with worker:
        print(json.dumps({"routers": 0, "task_queue": args.task_queue}), flush=True)
        signals.serving = True
        await signals.stop.wait()


async def _run_fleet(
    args: argparse.Namespace,
    address: str,
    workflows: list[Any],
    activities: list[Any],
    signals: _Signals,
    cleanups: list[Callable[[], Any]],
) -> None:
    import ray

    from temporay.actors.code import runtime_env_for, upload_local_paths
    from temporay.cluster.connect import RayConnectError, acquire_ray, release_ray
    from temporay.cluster.worker_actor import WorkerActor, WorkerSpec

    try:
        lease = await asyncio.to_thread(acquire_ray, args.ray_address, {"namespace": "temporay"})
    except RayConnectError as err:
        raise CliError(str(err)) from err
    cleanups.append(lambda: release_ray(lease))
    signals.install()
    options = _runner_options(args)
    options.pop("address", None)  # routers run inside the cluster
    spec = WorkerSpec(
        temporal_address=address,
        namespace=args.namespace,
        task_queue=args.task_queue,
        workflows=workflows,
        activities=activities,
        runner_options=options,
    )
    runtime_env = upload_local_paths(runtime_env_for([*workflows, *activities], None))
    routers = []
    for i in range(args.replicas):
        name = f"temporay-router-{uuid.uuid4().hex[:8]}-{i}"
        actor_options: dict[str, Any] = {"name": name, "namespace": "temporay"}
        if runtime_env:
            actor_options["runtime_env"] = runtime_env
        routers.append(WorkerActor.options(**actor_options).remote(spec, name))  # type: ignore[attr-defined]

    def stop_routers() -> None:
        for router in routers:
            try:
                ray.get(router.shutdown.remote(), timeout=60)
            except Exception:
                pass
            ray.kill(router, no_restart=True)

    cleanups.append(stop_routers)
    router_ids = await asyncio.gather(*(r.start.remote() for r in routers))
    print(
        json.dumps(
            {"routers": len(routers), "router_ids": router_ids, "task_queue": args.task_queue}
        ),
        flush=True,
    )
    signals.serving = True
    await signals.stop.wait()


def _status(args: argparse.Namespace) -> int:
    import ray

    from temporay.cluster.connect import RayConnectError, acquire_ray, release_ray

    try:
        lease = acquire_ray(
            args.ray_address,
            {"namespace": "temporay", "logging_level": logging.ERROR},
            allow_start=False,
        )
    except RayConnectError as err:
        raise CliError(str(err)) from err
    try:
        names = [
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a.get("namespace") == "temporay" and a["name"].startswith("temporay-registry-")
        ]
        out = []
        for name in sorted(names):
            registry = ray.get_actor(name, namespace="temporay")
            out.append(
                {
                    "registry": name,
                    "describe": ray.get(registry.describe.remote(), timeout=10),
                    "stats": ray.get(registry.stats.remote(), timeout=20),
                }
            )
        print(json.dumps(out, indent=2, default=str))
    finally:
        release_ray(lease)
        ray.shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temporay",
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run a Worker fleet whose workflows live on Ray")
    worker.add_argument("--task-queue", required=True)
    worker.add_argument("--workflows", action="append", required=True, metavar="MODULE[:NAMES]")
    worker.add_argument("--activities", action="append", default=[], metavar="MODULE[:NAMES]")
    worker.add_argument(
        "--address",
        "--temporal-address",
        dest="temporal_address",
        default="localhost:7233",
        help="Temporal frontend host:port (default: localhost:7233)",
    )
    worker.add_argument("--namespace", default="default")
    worker.add_argument("--dev-server", action="store_true", help="start an embedded dev server")
    worker.add_argument(
        "--ray-address", default=None, help="default: the ambient or a local cluster"
    )
    worker.add_argument("--replicas", type=int, default=0, help="Worker actors (0: this process)")
    worker.add_argument("--shards", type=int, default=None, help="shards per router")
    worker.add_argument("--engine", default="temporay", choices=["temporay", "sdk"])
    worker.add_argument("--transport", default=None, choices=["socket", "ray"])
    status = sub.add_parser("status", help="describe the temporay deployments on a Ray cluster")
    status.add_argument("--ray-address", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "worker": lambda a: asyncio.run(_run_worker(a)),
        "status": _status,
    }
    try:
        return handlers[args.command](args)
    except CliError as err:
        if args.debug:
            logger.error("traceback", exc_info=err)
        print(f"temporay {args.command}: error: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
