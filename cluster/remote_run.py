"""``RemoteRun``: the Worker-side proxy of one workflow run hosted on a shard.

It honours the SDK's runner contract, which forbids blocking the Worker's event loop: nothing
remote before the first activation (which runs on an executor thread); serialization contexts
answered from the mirror its shard's completions keep current; ``get_thread_id() -> None`` and
our own activation budget; evictions that complete locally at once and never raise.

An activation is prepared (as one ``InFlightActivation``), sent, and its answer turned into a
completion. ``activate`` does all three on the Worker's executor thread; with ``HopExecutor``,
``begin`` prepares and sends on the Worker's event loop (only what cannot block there) and
``finish`` does the rest on the thread, both with the same ``InFlightActivation``.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow
from temporalio.converter import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker._command_aware_visitor import CommandInfo

from temporay.actors.wire import RunKey, delta_from_proto, metric_op_from_proto
from temporay.cluster.routing import InFlightActivation, ShardChannel
from temporay.cluster.templates import TemplateBlob
from temporay.proto import hosting as pb
from temporay.runtime.hosting.context_mirror import ContextMirror
from temporay.runtime.hosting.externs import MetricReplayer
from temporay.runtime.hosting.failures import failed_completion
from temporay.runtime.hosting.log_shipping import emit_shipped, unpack_records

logger = logging.getLogger(__name__)


class ShardLostError(RuntimeError):
    """The shard hosting a run died or stopped answering; the Worker will evict and replay it."""


class RunnerClosedError(RuntimeError):
    """The runner was closed; it cannot host runs any more."""


class RunHost(Protocol):
    """What a run needs from its runner."""

    deadlock_budget: float | None

    def place(self, run: RemoteRun) -> ShardChannel: ...

    def unplace(self, run: RemoteRun, channel: ShardChannel) -> None: ...

    def place_at_once(self, run: RemoteRun) -> ShardChannel | None:
        """``place`` if it needs no waiting (``None`` otherwise)."""
        ...

    def placed(self, run: RemoteRun) -> None: ...

    def forget(self, run: RemoteRun) -> None: ...

    def check_cluster(self) -> str | None:
        """Why no run can be hosted any more (Ray went away under the runner), or ``None``;
        cheap: flag checks."""
        ...


def _is_eviction(act: wfact.WorkflowActivation) -> bool:
    return len(act.jobs) == 1 and act.jobs[0].HasField("remove_from_cache")


class RemoteRun(WorkflowInstance):
    def __init__(
        self,
        host: RunHost,
        key: RunKey,
        det: WorkflowInstanceDetails,
        blob: TemplateBlob,
        metrics: MetricReplayer | None,
    ) -> None:
        self._host = host
        self.key = key
        self._info = det.info
        self._blob = blob
        self._mirror = ContextMirror(det.info)
        self._channel: ShardChannel | None = None
        self._metrics = metrics
        self.workflow_class = det.defn.cls
        self.shard_name = ""
        self.dedicated = False
        self.lost: str | None = None
        self.busy = False
        self.closed = False

    # --- WorkflowInstance ---------------------------------------------------------------------------

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        if _is_eviction(act):
            return self._evict(act)
        self.busy = True
        try:
            self._check_usable()
            activation = self._prepare(act, self._place())
            return self._send_and_complete(activation)
        except BaseException as err:  # never raise into the Worker
            logger.exception("Hosting activation of run %s failed", self.key.run_id)
            return failed_completion(act.run_id, err)
        finally:
            self.busy = False

    def begin(self, act: wfact.WorkflowActivation) -> InFlightActivation | None:
        """Prepare the activation and send it if the line to the shard is free, on the Worker's
        event loop: nothing here waits (no shard started, no connection opened, no large
        request sent). ``None``: leave it all to ``activate``. Never raises."""
        self._note_cluster()
        if self.closed or self.lost is not None or _is_eviction(act):
            return None
        placing = self._channel is None
        channel = self._channel
        try:
            if channel is None:
                channel = self._host.place_at_once(self)
                if channel is None:
                    return None
            activation = self._prepare(act, channel)
            channel.start(activation)
        except Exception:
            logger.exception("Starting the activation of run %s failed", self.key.run_id)
            if placing and channel is not None:
                self._channel = None  # placed afresh by activate on its thread
                self._host.unplace(self, channel)
            return None
        self.busy = True
        return activation

    def finish(self, activation: InFlightActivation) -> wfcomp.WorkflowActivationCompletion:
        """The rest of an activation ``begin`` started, on the Worker's executor thread."""
        try:
            return self._send_and_complete(activation)
        except BaseException as err:  # never raise into the Worker
            logger.exception("Hosting activation of run %s failed", self.key.run_id)
            return failed_completion(self.key.run_id, err)
        finally:
            self.busy = False

    def abandon(self, activation: InFlightActivation) -> None:
        """No thread will ``finish`` what ``begin`` started (the Worker's executor refused it)."""
        if activation.begun_early:
            self._channel_of(activation).abandon(activation)
        self.busy = False

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        return self._mirror.serialization_context(command_info)

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        return self._mirror.store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        return self._info

    def get_thread_id(self) -> int | None:
        # The code runs in another process: there is no thread here to interrupt.
        return None

    # --- internals ----------------------------------------------------------------------------------

    def _note_cluster(self) -> None:
        # Asked on every activation: the janitor's periodic check may not have run yet.
        lost = self._host.check_cluster()
        if lost is not None and self.lost is None:
            self.lost = lost

    def _check_usable(self) -> None:
        self._note_cluster()
        if self.closed:
            raise RunnerClosedError("the RayWorkflowRunner hosting this run was closed")
        if self.lost is not None:
            raise ShardLostError(f"run {self.key.run_id} cannot continue: {self.lost}")

    def _place(self) -> ShardChannel:
        return self._channel if self._channel is not None else self._host.place(self)

    def _prepare(self, act: wfact.WorkflowActivation, channel: ShardChannel) -> InFlightActivation:
        """The activation's envelope and deadline on ``channel``; a first activation places the
        run there and carries what the shard needs to create it."""
        budget = self._host.deadlock_budget
        deadline = time.monotonic() + budget if budget is not None else float("inf")
        alone = pb.ActivationBatch()
        envelope = alone.items.add()
        envelope.activation = act.SerializeToString()
        self.key.to_proto(envelope.key)
        first = self._channel is None
        if first:
            self._channel = channel
            self.shard_name = channel.member.name
            self._fill_spec(envelope.spec, channel)
        return InFlightActivation(self.key, envelope, deadline, alone, channel=channel, first=first)

    @staticmethod
    def _channel_of(activation: InFlightActivation) -> ShardChannel:
        channel = activation.channel
        assert channel is not None, "a run's activations are prepared for a channel"
        return channel

    def _send_and_complete(
        self, activation: InFlightActivation
    ) -> wfcomp.WorkflowActivationCompletion:
        """Send (or finish sending) the activation, wait for its answer and make it the
        completion."""
        channel = self._channel_of(activation)
        channel.activate(activation)
        return self._completion(activation, channel)

    def _completion(
        self, activation: InFlightActivation, channel: ShardChannel
    ) -> wfcomp.WorkflowActivationCompletion:
        if activation.result is None:
            failure = activation.failure
            assert failure is not None
            self.lost = failure.message
            if failure.kind == "timeout":
                raise ShardLostError(
                    f"[TMPRL1101] Potential deadlock detected: the activation of run "
                    f"{self.key.run_id} on shard {self.shard_name} did not complete within "
                    f"{self._host.deadlock_budget}s; the run is dropped and will be replayed"
                )
            raise ShardLostError(f"run {self.key.run_id}: {failure.message}")
        result = activation.result
        if activation.first:
            if result.run_lost:
                self._host.unplace(self, channel)
                self._channel = None
            else:
                channel.member.templates_sent.add(self._blob.template_id)
                self._host.placed(self)
        if result.run_lost:
            self.lost = "the shard dropped it"
        if result.HasField("contexts"):  # absent: nothing the mirror holds changed
            self._mirror.apply(delta_from_proto(result.contexts))
        if result.metric_ops and self._metrics is not None:
            self._metrics.apply([metric_op_from_proto(op) for op in result.metric_ops])
        if result.log_records:
            emit_shipped(unpack_records(result.log_records))
        return wfcomp.WorkflowActivationCompletion.FromString(result.completion)

    def _fill_spec(self, spec: pb.RunSpec, channel: ShardChannel) -> None:
        blob = self._blob
        spec.template_id = blob.template_id
        if blob.template_id not in channel.member.templates_sent:
            spec.template = blob.data
            if blob.main is not None:
                spec.main_module_hash = blob.main.digest
                spec.main_module_source = blob.main.source
                spec.main_module_path = blob.main.path
        # The shard rebuilds the run's Info from the activation (runtime/hosting/run_info.py).
        spec.namespace = self._info.namespace
        spec.task_queue = self._info.task_queue

    def _evict(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        """Complete locally at once; the shard unwinds the run when the disposal reaches it."""
        channel = self._channel
        if channel is not None:
            if channel.member.alive and not self.closed:
                channel.dispose(self.key)
            self._host.unplace(self, channel)
            self._channel = None
        self._host.forget(self)
        return wfcomp.WorkflowActivationCompletion(run_id=act.run_id, successful=wfcomp.Success())
