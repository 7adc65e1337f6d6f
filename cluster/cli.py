"""The ``temporay`` command: run a Worker fleet on a Ray cluster, and inspect what runs there.

    temporay worker --task-queue orders --workflows myapp.workflows --activities myapp.activities \\
        [--temporal-address host:7233 | --dev-server] [--ray-address auto] [--replicas 2] [--shards 4]
    temporay status [--ray-address auto]

``--replicas 0`` runs the Worker in this process (it is then the router); ``--replicas N`` starts N
Router actors in the cluster, each a Worker on the same task queue with shards of its own. The
command stays in the foreground; Ctrl-C or SIGTERM drains every run and stops every actor.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("temporay")


def load_objects(specs: Sequence[str], kind: str) -> list[Any]:
    """``module`` (every workflow class / activity function defined in it) or ``module:Name,...``."""
    found: list[Any] = []
    for spec in specs:
        module_name, _, names = spec.partition(":")
        module = importlib.import_module(module_name)
        if names:
            found.extend(getattr(module, n) for n in names.split(","))
            continue
        for _, value in inspect.getmembers(module):
            if getattr(value, "__module__", None) != module.__name__:
                continue
            if kind == "workflow" and hasattr(value, "__temporal_workflow_definition"):
                found.append(value)
            if kind == "activity" and hasattr(value, "__temporal_activity_definition"):
                found.append(value)
    return found


def _runner_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"engine": args.engine}
    if args.shards:
        options["shards"] = args.shards
    if args.transport:
        options["transport"] = args.transport
    return options


async def _run_worker(args: argparse.Namespace) -> int:
    import ray

    from temporay.actors.code import runtime_env_for, upload_local_paths
    from temporay.actors.router import Router, WorkerSpec

    workflows = load_objects(args.workflows, "workflow")
    activities = load_objects(args.activities, "activity")
    if not workflows:
        raise SystemExit("no workflow classes found in " + ", ".join(args.workflows))
    env = None
    address = args.temporal_address
    if args.dev_server:
        from temporay.cluster.devserver import start_dev_server

        env = await start_dev_server()
        address = env.client.service_client.config.target_host
        print(f"Temporal dev server on {address}", flush=True)
    if not address:
        raise SystemExit("give --temporal-address or --dev-server")

    ray_kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    if args.ray_address:
        ray_kwargs["address"] = args.ray_address
    ray.init(namespace="temporay", **ray_kwargs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    spec = WorkerSpec(
        temporal_address=address,
        namespace=args.namespace,
        task_queue=args.task_queue,
        workflows=workflows,
        activities=activities,
        runner_options=_runner_options(args),
    )
    try:
        if args.replicas == 0:
            await _run_in_process(spec, stop)
        else:
            runtime_env = upload_local_paths(runtime_env_for([*workflows, *activities], None))
            routers = []
            for i in range(args.replicas):
                name = f"temporay-router-{uuid.uuid4().hex[:8]}-{i}"
                options: dict[str, Any] = {"name": name, "namespace": "temporay"}
                if runtime_env:
                    options["runtime_env"] = runtime_env
                routers.append(Router.options(**options).remote(spec, name))  # type: ignore[attr-defined]
            router_ids = await asyncio.gather(*(r.start.remote() for r in routers))
            print(
                json.dumps({"routers": len(routers), "router_ids": router_ids,
                            "task_queue": args.task_queue}),
                flush=True,
            )
            await stop.wait()
            await asyncio.gather(*(r.shutdown.remote() for r in routers), return_exceptions=True)
            for router in routers:
                ray.kill(router, no_restart=True)
        print("stopped", flush=True)
    finally:
        ray.shutdown()
        if env is not None:
            await env.shutdown()
    return 0


async def _run_in_process(spec: Any, stop: asyncio.Event) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from temporay.cluster.plugin import RayPlugin

    client = await Client.connect(spec.temporal_address, namespace=spec.namespace)
    worker = Worker(
        client,
        task_queue=spec.task_queue,
        workflows=list(spec.workflows),
        activities=list(spec.activities),
        plugins=[RayPlugin(**spec.runner_options)],
    )
    async with worker:
        print(json.dumps({"routers": 0, "task_queue": spec.task_queue}), flush=True)
        await stop.wait()


def _status(args: argparse.Namespace) -> int:
    import ray

    ray.init(address=args.ray_address or "auto", namespace="temporay", logging_level=logging.ERROR)
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
        ray.shutdown()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="temporay", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run a Worker fleet whose workflows live on Ray")
    worker.add_argument("--task-queue", required=True)
    worker.add_argument("--workflows", action="append", required=True, metavar="MODULE[:NAMES]")
    worker.add_argument("--activities", action="append", default=[], metavar="MODULE[:NAMES]")
    worker.add_argument("--temporal-address", default=None)
    worker.add_argument("--namespace", default="default")
    worker.add_argument("--dev-server", action="store_true", help="start an embedded dev server")
    worker.add_argument("--ray-address", default=None, help="default: the ambient or a local cluster")
    worker.add_argument("--replicas", type=int, default=0, help="Router actors (0: this process)")
    worker.add_argument("--shards", type=int, default=None, help="shards per router")
    worker.add_argument("--engine", default="temporay", choices=["temporay", "sdk"])
    worker.add_argument("--transport", default=None, choices=["socket", "ray"])
    status = sub.add_parser("status", help="describe the temporay deployments on a Ray cluster")
    status.add_argument("--ray-address", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "worker": lambda a: asyncio.run(_run_worker(a)),
        "status": _status,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
