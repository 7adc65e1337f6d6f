"""Canaries: each private temporalio/Ray surface the hosting layer touches, checked for the shape and
behaviour we rely on. When an upgrade changes one, this file fails first, naming it."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading
import time

import temporalio.converter
import temporalio.worker
from temporalio.client import Client
from temporalio.worker import Worker, WorkflowInstanceDetails

from bench.workloads import hosting as wf
from temporay.runtime.hosting.externs import LocalActivityCatalog


def test_command_info_and_its_context_variable() -> None:
    from temporalio.worker import _command_aware_visitor as cav

    info = cav.CommandInfo(command_type=1, command_seq=2)  # type: ignore[arg-type]
    assert (info.command_type, info.command_seq) == (1, 2)
    assert cav.current_command_info.get() is None


def test_deadlock_error_captures_a_thread_stack_and_interrupt_lands() -> None:
    from temporalio.bridge.runtime import Runtime
    from temporalio.worker._workflow import _DeadlockError, _InterruptDeadlockError

    outcome: list[BaseException] = []
    started = threading.Event()

    def spin_here_forever() -> None:
        started.set()
        try:
            while True:
                pass
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=spin_here_forever, daemon=True)
    thread.start()
    started.wait()

    class Ref:
        def get_thread_id(self) -> int | None:
            return thread.ident

    err = _DeadlockError.from_deadlocked_workflow(Ref(), 2)  # type: ignore[arg-type]
    err.swap_traceback()
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "spin_here_forever" in frames
    assert "TMPRL1101" in str(err)
    assert Runtime._raise_in_thread(thread.ident, _InterruptDeadlockError)  # type: ignore[arg-type]
    thread.join(5)
    assert outcome and isinstance(outcome[0], _InterruptDeadlockError)
    assert not issubclass(_InterruptDeadlockError, Exception)


def test_logic_flags_and_instance_details_fields() -> None:
    from temporalio.worker._workflow_instance import _WorkflowLogicFlag

    assert int(_WorkflowLogicFlag.RAISE_ON_CANCELLING_COMPLETED_ACTIVITY) == 1
    assert int(_WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH) == 2
    fields = {f.name for f in dataclasses.fields(WorkflowInstanceDetails)}
    assert fields == {
        "payload_converter_factory",
        "failure_converter_class",
        "interceptor_classes",
        "defn",
        "info",
        "randomness_seed",
        "extern_functions",
        "disable_eager_activity_execution",
        "worker_level_failure_exception_types",
        "patch_activation_callback",
        "last_completion_result",
        "last_failure",
        "default_workflow_logic_flags",
    }


def test_data_converter_payload_factory_and_fields() -> None:
    dc = temporalio.converter.DataConverter.default
    assert callable(dc._new_payload_converter)
    stripped = dataclasses.replace(dc, payload_codec=None, external_storage=None)
    assert isinstance(stripped._new_payload_converter(), temporalio.converter.PayloadConverter)


def test_workflow_instance_contract_methods() -> None:
    abstract = temporalio.worker.WorkflowInstance.__abstractmethods__
    assert abstract == {
        "activate",
        "get_serialization_context",
        "get_external_store_context",
        "get_info",
    }
    assert "get_thread_id" in vars(temporalio.worker.WorkflowInstance)


def test_running_workflow_activate_only_wraps_the_instance() -> None:
    """``HopExecutor`` recognises the Worker's ``running.activate`` and calls the instance's
    own steps instead: that skips only the interruptible flag, used with a thread id."""
    from temporalio.worker._workflow import _RunningWorkflow

    calls: list[object] = []

    class Recording:
        def activate(self, act: object) -> str:
            calls.append(act)
            return "done"

        def get_thread_id(self) -> int | None:
            calls.append("thread id asked")
            return None

    running = _RunningWorkflow(Recording(), "wf")  # type: ignore[arg-type]
    assert running.activate("act") == "done"  # type: ignore[arg-type]
    assert calls == ["act"]
    running.attempt_deadlock_interruption()  # outside an activation: asks nothing
    assert calls == ["act"]
    source = inspect.getsource(_RunningWorkflow.activate)
    assert source.count("self.instance.activate(act)") == 1


def test_running_loop_accessors() -> None:
    assert asyncio._get_running_loop() is None
    loop = asyncio.new_event_loop()
    asyncio._set_running_loop(loop)
    try:
        assert asyncio.get_running_loop() is loop
    finally:
        asyncio._set_running_loop(None)
        loop.close()


def test_ray_runtime_env_upload_functions() -> None:
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    for fn in (upload_py_modules_if_needed, upload_working_dir_if_needed):
        params = inspect.signature(fn).parameters
        assert {"runtime_env", "include_gitignore", "scratch_dir"} <= set(params)


async def test_worker_bridge_eviction_and_local_activity_check(client: Client) -> None:
    worker = Worker(
        client,
        task_queue="canary-tq",
        workflows=[wf.LocalActivityWorkflow],
        activities=[wf.charge, wf.always_fails],
    )
    assert callable(worker._bridge_worker.request_workflow_eviction)
    externs = worker._workflow_worker._extern_functions  # type: ignore[union-attr]
    check = externs["__temporal_assert_local_activity_valid"]
    catalog = LocalActivityCatalog.probe(check)
    assert not catalog.accepts_all
    assert catalog.names == {"charge", "always_fails"}
    # The catalog refuses exactly as the Worker's own check does.
    for name in ("nope", "charge"):
        ours: str | None = None
        theirs: str | None = None
        try:
            catalog.check(name)
        except ValueError as err:
            ours = str(err)
        try:
            check(name)
        except ValueError as err:
            theirs = str(err)
        assert ours == theirs
    del worker
    time.sleep(0)
