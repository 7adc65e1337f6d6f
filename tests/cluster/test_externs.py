"""Host-side extern functions: workflow metrics recorded in a shard reach the Worker's real meter
exactly as under the SDK's own runner; an extern function we cannot carry fails clearly; a
workflow defined in the driver's ``__main__`` runs on shards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import (
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowRunner,
)

from bench.workloads import hosting as wf
from temporay import RayWorkflowRunner

pytestmark = pytest.mark.timeout(300)


async def _workflow_metric_updates(client: Client, runner: WorkflowRunner) -> list[tuple[Any, ...]]:
    buffer = MetricBuffer(10000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    metered = await Client.connect(
        client.service_client.config.target_host, namespace=client.namespace, runtime=runtime
    )
    task_queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(
        metered, task_queue=task_queue, workflows=[wf.MetricsWorkflow], workflow_runner=runner
    ):
        result = await metered.execute_workflow(
            wf.MetricsWorkflow.run, id=f"metrics-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        assert result == "counted"
    updates = []
    for update in buffer.retrieve_updates():
        if update.metric.name == "temporay_test_counter":
            attributes: dict[str, Any] = dict(update.attributes)
            attributes["task_queue"] = "<tq>" if attributes.get("task_queue") else None
            updates.append(
                (
                    update.metric.name,
                    update.metric.description,
                    update.metric.unit,
                    update.value,
                    tuple(sorted(attributes.items())),
                )
            )
    return updates


async def test_workflow_metrics_reach_the_real_meter_as_under_the_sdk(
    client: Client, ray_cluster: None
) -> None:
    sdk = await _workflow_metric_updates(client, UnsandboxedWorkflowRunner())
    with RayWorkflowRunner(shards=1) as runner:
        ours = await _workflow_metric_updates(client, runner)
    assert sdk and sdk[0][3] == 3
    assert ours == sdk


# --- an extern function the hosting layer cannot carry -------------------------------------------


def _host_only_hook(value: str) -> str:
    return f"host saw {value}"


class _HookInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: Any) -> Any:
        workflow.extern_functions()["__test_host_only_hook"]("start")
        return await super().execute_workflow(input)


class HostHookInterceptor(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        input.unsafe_extern_functions["__test_host_only_hook"] = _host_only_hook
        return _HookInbound


async def test_an_extern_function_of_the_worker_process_fails_the_task_clearly(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    with RayWorkflowRunner(shards=1) as runner:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[wf.NoopWorkflow],
            workflow_runner=runner,
            interceptors=[HostHookInterceptor()],
        ):
            handle = await client.start_workflow(
                wf.NoopWorkflow.run, id=f"extern-{uuid.uuid4().hex[:8]}", task_queue=task_queue
            )
            message = ""
            for _ in range(300):
                async for event in handle.fetch_history_events():
                    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                        message = event.workflow_task_failed_event_attributes.failure.message
                if message:
                    break
                await asyncio.sleep(0.1)
            assert "__test_host_only_hook" in message
            assert "cannot be called from a run hosted by temporay" in message
            await handle.terminate("test done")


# --- a workflow defined in __main__ ---------------------------------------------------------------


def test_a_workflow_defined_in_main_runs_on_shards(temporal_env: Any, tmp_path: Any) -> None:
    script = tmp_path / "my_driver_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, json, uuid
            from dataclasses import dataclass
            from temporalio import workflow
            from temporalio.client import Client
            from temporalio.worker import Worker
            from temporay import RayPlugin

            COUNTER = {{"imports": 0}}
            COUNTER["imports"] += 1

            @dataclass
            class Greeting:
                name: str

            @workflow.defn
            class MainWorkflow:
                @workflow.run
                async def run(self, greeting: Greeting) -> dict:
                    import sys
                    return {{
                        "hello": greeting.name,
                        "module": type(self).__module__,
                        "loaded_in_main": __name__,
                        "imports": COUNTER["imports"],
                    }}

            async def main() -> None:
                client = await Client.connect({temporal_env.client.service_client.config.target_host!r})
                async with Worker(client, task_queue="main-tq", workflows=[MainWorkflow],
                                  plugins=[RayPlugin(shards=1, ray_init_kwargs={{"num_cpus": 1, "include_dashboard": False}})]):
                    out = await client.execute_workflow(
                        MainWorkflow.run, Greeting("ray"), id=f"main-{{uuid.uuid4().hex[:8]}}", task_queue="main-tq"
                    )
                print(json.dumps(out), flush=True)

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    out = json.loads(lines[-1])
    assert out["hello"] == "ray"
    # Loaded in the shard under another name, so the script's `__main__` block did not run there.
    assert out["module"] == "__temporay_main__" == out["loaded_in_main"]
    assert out["imports"] == 1
