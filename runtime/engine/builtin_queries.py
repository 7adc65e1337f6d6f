"""The queries every workflow answers: ``__stack_trace``, ``__enhanced_stack_trace`` (the UI's
stack view) and ``__temporal_workflow_metadata`` (handler names and current details).

They are registered as ordinary query definitions, so a workflow can override them and they are
listed among the known queries when a query is not found, as with the SDK.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol, cast

import temporalio.api.sdk.v1
import temporalio.workflow
from temporalio.service import __version__ as sdk_version

from temporay.runtime.engine.environment import RunEnvironment
from temporay.runtime.engine.handler_tables import HandlerTables


class InspectedRun(Protocol):
    """What the built-in queries read of a run (the context implements it)."""

    @property
    def env(self) -> RunEnvironment: ...

    @property
    def info(self) -> temporalio.workflow.Info: ...

    @property
    def handlers(self) -> HandlerTables: ...

    def workflow_get_current_details(self) -> str: ...


def _current() -> InspectedRun:
    """The run answering the query: queries run on the run's own loop, which carries it."""
    return cast("InspectedRun", temporalio.workflow._Runtime.current())


def _stack_trace() -> str:
    return render_stack_trace(_current())


def _enhanced_stack_trace() -> temporalio.api.sdk.v1.EnhancedStackTrace:
    return render_enhanced_stack_trace(_current())


def _metadata() -> temporalio.api.sdk.v1.WorkflowMetadata:
    return render_metadata(_current())


DEFINITIONS: Mapping[str | None, temporalio.workflow._QueryDefinition] = MappingProxyType(
    {
        "__stack_trace": temporalio.workflow._QueryDefinition(
            name="__stack_trace", fn=_stack_trace, is_method=False, arg_types=[], ret_type=str
        ),
        "__enhanced_stack_trace": temporalio.workflow._QueryDefinition(
            name="__enhanced_stack_trace",
            fn=_enhanced_stack_trace,
            is_method=False,
            arg_types=[],
            ret_type=temporalio.api.sdk.v1.EnhancedStackTrace,
        ),
        "__temporal_workflow_metadata": temporalio.workflow._QueryDefinition(
            name="__temporal_workflow_metadata",
            fn=_metadata,
            is_method=False,
            arg_types=[],
            ret_type=temporalio.api.sdk.v1.WorkflowMetadata,
        ),
    }
)
"""Shared by every run (they find their run through the loop, rather than a closure per run)."""


def render_stack_trace(ctx: InspectedRun) -> str:
    """One block per task of the run, most recent call last."""
    stacks = []
    for task in list(ctx.env.tasks):
        frames = [
            traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
            for frame in task.get_stack()
        ]
        stacks.append(
            f"Stack for {task!r} (most recent call last):\n"
            + "\n".join(traceback.format_list(frames))
        )
    return "\n\n".join(stacks)


def render_enhanced_stack_trace(ctx: InspectedRun) -> temporalio.api.sdk.v1.EnhancedStackTrace:
    """Stacks with file locations plus the source of every file they touch."""
    sources: dict[str, temporalio.api.sdk.v1.StackTraceFileSlice] = {}
    stacks: list[temporalio.api.sdk.v1.StackTrace] = []
    # Reading source files is I/O a sandbox would refuse.
    with temporalio.workflow.unsafe.sandbox_unrestricted():
        for task in list(ctx.env.tasks):
            locations: list[temporalio.api.sdk.v1.StackTraceFileLocation] = []
            for frame in task.get_stack():
                filename = frame.f_code.co_filename
                if filename not in sources:
                    try:
                        with open(filename) as f:
                            code = f.read()
                    except OSError as ose:
                        code = f"Cannot access code.\n---\n{ose.strerror}"
                    except Exception:
                        code = f"Generic Error.\n\n{traceback.format_exc()}"
                    sources[filename] = temporalio.api.sdk.v1.StackTraceFileSlice(
                        line_offset=0, content=code
                    )
                locations.append(
                    temporalio.api.sdk.v1.StackTraceFileLocation(
                        file_path=filename,
                        line=frame.f_lineno,
                        column=-1,
                        function_name=frame.f_code.co_name,
                        internal_code=False,
                    )
                )
            stacks.append(temporalio.api.sdk.v1.StackTrace(locations=locations))
    # Reported as the Python SDK: the UI keys its rendering on the SDK name.
    return temporalio.api.sdk.v1.EnhancedStackTrace(
        sdk=temporalio.api.sdk.v1.StackTraceSDKInfo(name="sdk-python", version=sdk_version),
        sources=sources,
        stacks=stacks,
    )


def render_metadata(ctx: InspectedRun) -> temporalio.api.sdk.v1.WorkflowMetadata:
    """Handler names and descriptions (the dynamic handler listed as ``""``) and details."""

    def described(defns: object) -> list[temporalio.api.sdk.v1.WorkflowInteractionDefinition]:
        items = [
            temporalio.api.sdk.v1.WorkflowInteractionDefinition(
                name=defn.name or "", description=defn.description or ""
            )
            for defn in defns.values()  # type: ignore[attr-defined]
        ]
        items.sort(key=lambda item: item.name)
        return items

    definition = temporalio.api.sdk.v1.WorkflowDefinition(
        type=ctx.info.workflow_type,
        query_definitions=described(ctx.handlers.queries),
        signal_definitions=described(ctx.handlers.signals),
        update_definitions=described(ctx.handlers.updates),
    )
    return temporalio.api.sdk.v1.WorkflowMetadata(
        definition=definition, current_details=ctx.workflow_get_current_details()
    )
