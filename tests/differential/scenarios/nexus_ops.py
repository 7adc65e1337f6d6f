"""Nexus operations from workflows: synchronous results and failures, workflow-run (async)
operations, cancellation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import nexusrpc
import nexusrpc.handler
import temporalio.api.nexus.v1
import temporalio.api.operatorservice.v1
from temporalio import nexus, workflow
from temporalio.exceptions import NexusOperationError

from ..harness import Drive, Scenario, describe_error


@nexusrpc.service
class EchoService:
    echo: nexusrpc.Operation[str, str]
    fail: nexusrpc.Operation[str, str]
    run_workflow: nexusrpc.Operation[str, str]


@workflow.defn
class NexusHandlerWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        if value == "slow":
            await workflow.sleep(60)
        return f"handled by workflow: {value}"


@nexusrpc.handler.service_handler(service=EchoService)
class EchoServiceHandler:
    @nexusrpc.handler.sync_operation
    async def echo(self, ctx: nexusrpc.handler.StartOperationContext, value: str) -> str:
        return f"echo: {value}"

    @nexusrpc.handler.sync_operation
    async def fail(self, ctx: nexusrpc.handler.StartOperationContext, value: str) -> str:
        raise nexusrpc.HandlerError(
            f"handler refuses {value}", type=nexusrpc.HandlerErrorType.BAD_REQUEST
        )

    @nexus.workflow_run_operation
    async def run_workflow(
        self, ctx: nexus.WorkflowRunOperationContext, value: str
    ) -> nexus.WorkflowHandle[str]:
        return await ctx.start_workflow(
            NexusHandlerWorkflow.run, value, id=f"nexus-handler-{uuid.uuid4().hex[:10]}"
        )


@workflow.defn
class NexusCallerWorkflow:
    @workflow.run
    async def run(self, endpoint: str) -> list[Any]:
        out: list[Any] = []
        client = workflow.create_nexus_client(service=EchoService, endpoint=endpoint)
        out.append(await client.execute_operation(EchoService.echo, "hi", summary="nexus summary"))
        try:
            await client.execute_operation(EchoService.fail, "this")
        except NexusOperationError as err:
            out.append(describe_error(err))
        handle = await client.start_operation(
            EchoService.run_workflow,
            "async",
            schedule_to_close_timeout=timedelta(seconds=30),
        )
        out.append(handle.operation_token is not None)
        out.append(await handle)
        # Cancel a running workflow-run operation.
        handle = await client.start_operation(EchoService.run_workflow, "slow")
        await workflow.sleep(0.2)
        handle.cancel()
        try:
            out.append(await handle)
        except NexusOperationError as err:
            out.append(describe_error(err))
        except asyncio.CancelledError as err:
            out.append(type(err).__name__)
        return out


async def _drive(d: Drive) -> Any:
    endpoint = f"ep-{uuid.uuid4().hex[:12]}"
    await d.client.operator_service.create_nexus_endpoint(
        temporalio.api.operatorservice.v1.CreateNexusEndpointRequest(
            spec=temporalio.api.nexus.v1.EndpointSpec(
                name=endpoint,
                target=temporalio.api.nexus.v1.EndpointTarget(
                    worker=temporalio.api.nexus.v1.EndpointTarget.Worker(
                        namespace=d.client.namespace, task_queue=d.task_queue
                    )
                ),
            )
        )
    )
    return await d.execute(NexusCallerWorkflow.run, endpoint, name="caller")


SCENARIOS = [
    Scenario(
        "nexus",
        [NexusCallerWorkflow, NexusHandlerWorkflow],
        _drive,
        worker_kwargs={"nexus_service_handlers": [EchoServiceHandler()]},
    ),
]
