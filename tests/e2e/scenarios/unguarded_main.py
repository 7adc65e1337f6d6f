"""A user's script that defines its workflow and runs its Worker at the top level, without an
``if __name__ == "__main__":`` guard. Shards would re-run all of it; temporay must refuse it with
the line at fault, not report a deadlock. Run by tests/e2e/test_first_contact.py."""

import asyncio
import os

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from temporay import RayPlugin


@workflow.defn
class ScriptWorkflow:
    @workflow.run
    async def run(self) -> str:
        return "ran"


async def main() -> None:
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"])
    Worker(client, task_queue="unguarded", workflows=[ScriptWorkflow], plugins=[RayPlugin()])


asyncio.run(main())
