"""What sdk-core receives for an eviction is the same under the SDK's runner and ours.

The SDK's Worker does not send the completion a runner's instance returns for an eviction: it
sends a bare ``Success()`` of its own (``temporalio/worker/_workflow.py``,
``_handle_cache_eviction``). So ``used_internal_flags`` in the SDK instance's eviction completion
never reaches core, and our hosted runs' empty one differs only where nothing reads it. This
test records, at the bridge, what core is sent for each eviction under both runners."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from temporay import RayWorkflowRunner
from tests.e2e.scenarios.cold_workflows import SignalledAtStartWorkflow


def _record_evictions(worker: Worker) -> list[bytes]:
    """Wrap the Worker's bridge so every completion sent for an eviction is kept."""
    bridge: Any = worker._bridge_worker
    evicting: set[str] = set()
    sent: list[bytes] = []
    poll, complete = bridge.poll_workflow_activation, bridge.complete_workflow_activation

    async def recording_poll() -> wfact.WorkflowActivation:
        act = await poll()
        if any(job.HasField("remove_from_cache") for job in act.jobs):
            evicting.add(act.run_id)
        return act

    async def recording_complete(completion: wfcomp.WorkflowActivationCompletion) -> None:
        if completion.run_id in evicting:
            evicting.discard(completion.run_id)
            copy = wfcomp.WorkflowActivationCompletion()
            copy.CopyFrom(completion)
            copy.run_id = ""
            sent.append(copy.SerializeToString(deterministic=True))
        await complete(completion)

    bridge.poll_workflow_activation = recording_poll
    bridge.complete_workflow_activation = recording_complete
    return sent


async def _evictions_sent(client: Client, runner: WorkflowRunner) -> list[bytes]:
    task_queue = f"evict-{uuid.uuid4().hex[:8]}"
    worker = Worker(client, task_queue=task_queue, workflows=[SignalledAtStartWorkflow],
                    workflow_runner=runner, max_cached_workflows=10)
    sent = _record_evictions(worker)
    async with worker:
        for i in range(3):
            handle = await client.start_workflow(
                SignalledAtStartWorkflow.run, id=f"evict-{i}-{uuid.uuid4().hex[:6]}",
                task_queue=task_queue, start_signal="greet", start_signal_args=[f"n{i}"],
            )
            assert await handle.result() == [f"n{i}"]
    return sent


@pytest.mark.timeout(300)
async def test_core_gets_the_same_eviction_completions(client: Client, ray_cluster: None) -> None:
    sdk = await _evictions_sent(client, UnsandboxedWorkflowRunner())
    with RayWorkflowRunner(shards=1) as runner:
        ours = await _evictions_sent(client, runner)
    assert len(sdk) == len(ours) == 3
    bare = wfcomp.WorkflowActivationCompletion(successful=wfcomp.Success())
    assert set(sdk) == set(ours) == {bare.SerializeToString(deterministic=True)}
