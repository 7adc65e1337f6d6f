"""Canaries for the private temporalio surfaces temporay's engine relies on.

The engine reuses the SDK's types rather than copying them, and a few of those are private. When
a temporalio upgrade moves or changes one of them, these fail first, naming it, instead of the
engine failing somewhere in a workflow.
"""

from __future__ import annotations

import inspect

import temporalio.activity
import temporalio.common
import temporalio.nexus.system
import temporalio.workflow
from temporalio.nexus.system.workflow_service import _system_nexus_interceptor
from temporalio.worker import _command_aware_visitor, _workflow_instance
from temporalio.workflow import _event_groups


def _params(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


def test_runtime_abstract_methods_are_all_implemented() -> None:
    from temporay.runtime.engine.context import WorkflowContext

    missing = sorted(getattr(WorkflowContext, "__abstractmethods__", set()))
    assert not missing, f"_Runtime grew abstract methods we do not implement: {missing}"
    expected = {
        name
        for name, member in vars(temporalio.workflow._Runtime).items()
        if getattr(member, "__isabstractmethod__", False)
    }
    assert len(expected) == 46, f"_Runtime now has {len(expected)} abstract methods"


def test_runtime_lookup_is_an_attribute_of_the_running_loop() -> None:
    source = inspect.getsource(temporalio.workflow._Runtime.maybe_current)
    assert "__temporal_workflow_runtime" in source
    assert _params(temporalio.workflow._Runtime.set_on_loop) == ["loop", "runtime"]


def test_event_group_helpers() -> None:
    assert _params(_event_groups._capture_event_group_markers) == ["directs"]
    assert _params(_event_groups._inbound_event_group) == ["event_id"]
    assert _params(_event_groups._inbound_update_event_group) == ["update_id"]


def test_current_update_info_setter() -> None:
    assert _params(temporalio.workflow._set_current_update_info) == ["info"]


def test_handler_definitions() -> None:
    for cls in (
        temporalio.workflow._QueryDefinition,
        temporalio.workflow._SignalDefinition,
        temporalio.workflow._UpdateDefinition,
    ):
        fields = set(cls.__dataclass_fields__)
        assert {"name", "fn", "is_method", "arg_types", "dynamic_vararg", "description"} <= fields
        assert hasattr(cls, "bind_fn")
    assert "unfinished_policy" in temporalio.workflow._SignalDefinition.__dataclass_fields__
    assert hasattr(temporalio.workflow._UpdateDefinition, "set_validator")
    assert hasattr(temporalio.workflow._UpdateDefinition, "bind_validator")
    defn_fields = set(temporalio.workflow._Definition.__dataclass_fields__)
    assert {
        "name",
        "cls",
        "run_fn",
        "signals",
        "queries",
        "updates",
        "failure_exception_types",
        "arg_types",
        "ret_type",
        "versioning_behavior",
        "dynamic_config_fn",
    } <= defn_fields
    assert hasattr(temporalio.activity._Definition, "must_from_callable")


def test_eviction_error_and_logic_flags() -> None:
    assert issubclass(_workflow_instance._WorkflowBeingEvictedError, BaseException)
    assert not issubclass(_workflow_instance._WorkflowBeingEvictedError, Exception)
    flags = {flag.name: int(flag) for flag in _workflow_instance._WorkflowLogicFlag}
    assert flags == {
        "RAISE_ON_CANCELLING_COMPLETED_ACTIVITY": 1,
        "PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH": 2,
    }


def test_system_nexus_hooks() -> None:
    assert hasattr(temporalio.nexus.system, "_get_serialization_context")
    assert hasattr(temporalio.nexus.system, "_get_payload_converter")
    assert hasattr(temporalio.nexus.system, "is_system_endpoint")
    assert _params(_system_nexus_interceptor._start_system_nexus_operation) == [
        "interceptor",
        "input",
    ]
    terminal = _system_nexus_interceptor._SystemNexusWorkflowOutboundInterceptorTerminal
    assert "_intercept_system_nexus_operation" in terminal.__abstractmethods__


def test_common_helpers() -> None:
    assert _params(temporalio.common._apply_headers) == ["source", "dest"]
    assert _params(temporalio.common._arg_or_args) == ["arg", "args"]
    assert hasattr(temporalio.common, "_arg_unset")
    assert hasattr(temporalio.common.SearchAttributeKey, "_guess_from_untyped_values")
    assert hasattr(temporalio.common.Priority, "_to_proto")
    assert hasattr(temporalio.workflow.VersioningIntent, "_to_proto")
    assert hasattr(temporalio.workflow.Info, "_logger_details")
    assert {"command_type", "command_seq"} <= set(
        _command_aware_visitor.CommandInfo.__dataclass_fields__
    )
