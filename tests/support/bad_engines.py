"""Engines that misbehave on purpose (importable by shards, so they pickle by reference)."""

from __future__ import annotations

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowInstance, WorkflowInstanceDetails


class ExplodingEngine(UnsandboxedWorkflowRunner):
    """Prepares fine (so the Worker starts) but refuses to create any run."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        raise RuntimeError(f"engine refused to create run {det.info.run_id}")
