"""The ``workflow.*`` calls that start an operation: each builds the SDK's interceptor input
(names and types from the activity or workflow definition when given one) and sends it through
the run's outbound interceptor chain, whose root issues the command (``interceptors.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn

import nexusrpc
import temporalio.activity
import temporalio.common
import temporalio.nexus.system
import temporalio.workflow
from temporalio.nexus.system.workflow_service._system_nexus_interceptor import (
    _start_system_nexus_operation,
)
from temporalio.worker import (
    ContinueAsNewInput,
    StartActivityInput,
    StartChildWorkflowInput,
    StartLocalActivityInput,
    StartNexusOperationInput,
    WorkflowOutboundInterceptor,
)

from temporay.runtime.engine.environment import RunEnvironment


class OutboundCalls(temporalio.workflow._Runtime):
    """The operation-starting part of the run's ``workflow._Runtime`` (``WorkflowContext``
    is made of it and its siblings; it declares what of the context it reads)."""

    __slots__ = ()

    env: RunEnvironment
    outbound: WorkflowOutboundInterceptor
    extern_functions: Mapping[str, Callable[..., Any]]
    disable_eager_activity_execution: bool

    def workflow_continue_as_new(
        self,
        *args: Any,
        workflow: Callable[..., Any] | str | None,
        task_queue: str | None,
        run_timeout: timedelta | None,
        task_timeout: timedelta | None,
        backoff_start_interval: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        memo: Mapping[str, Any] | None,
        search_attributes: temporalio.common.SearchAttributes
        | temporalio.common.TypedSearchAttributes
        | None,
        versioning_intent: temporalio.workflow.VersioningIntent | None,
        initial_versioning_behavior: temporalio.workflow.ContinueAsNewVersioningBehavior | None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> NoReturn:
        self.env.assert_not_read_only("continue as new")
        name: str | None = None
        arg_types: list[type] | None = None
        if isinstance(workflow, str):
            name = workflow
        elif callable(workflow):
            defn = temporalio.workflow._Definition.must_from_run_fn(workflow)  # type: ignore[arg-type]
            name = defn.name
            arg_types = defn.arg_types
        elif workflow is not None:
            raise TypeError("Workflow must be None, a string, or callable")
        self.outbound.continue_as_new(
            ContinueAsNewInput(
                workflow=name,
                args=args,
                task_queue=task_queue,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                backoff_start_interval=backoff_start_interval,
                retry_policy=retry_policy,
                memo=memo,
                search_attributes=search_attributes,
                headers={},
                arg_types=arg_types,
                versioning_intent=versioning_intent,
                initial_versioning_behavior=initial_versioning_behavior,
                event_groups=event_groups,
            )
        )

    def workflow_start_activity(
        self,
        activity: Any,
        *args: Any,
        task_queue: str | None,
        result_type: type | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        heartbeat_timeout: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        cancellation_type: temporalio.workflow.ActivityCancellationType,
        activity_id: str | None,
        versioning_intent: temporalio.workflow.VersioningIntent | None,
        summary: str | None = None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
        priority: temporalio.common.Priority = temporalio.common.Priority.default,
    ) -> temporalio.workflow.ActivityHandle[Any]:
        self.env.assert_not_read_only("start activity")
        name, arg_types, ret_type = _activity_name_and_types(activity, result_type)
        return self.outbound.start_activity(
            StartActivityInput(
                activity=name,
                args=args,
                activity_id=activity_id,
                task_queue=task_queue,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                heartbeat_timeout=heartbeat_timeout,
                retry_policy=retry_policy,
                cancellation_type=cancellation_type,
                headers={},
                disable_eager_execution=self.disable_eager_activity_execution,
                arg_types=arg_types,
                ret_type=ret_type,
                versioning_intent=versioning_intent,
                summary=summary,
                event_groups=event_groups,
                priority=priority,
            )
        )

    def workflow_start_local_activity(
        self,
        activity: Any,
        *args: Any,
        result_type: type | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        retry_policy: temporalio.common.RetryPolicy | None,
        local_retry_threshold: timedelta | None,
        cancellation_type: temporalio.workflow.ActivityCancellationType,
        activity_id: str | None,
        summary: str | None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> temporalio.workflow.ActivityHandle[Any]:
        # No read-only check here (the SDK has none); scheduling the task refuses instead.
        name, arg_types, ret_type = _activity_name_and_types(activity, result_type)
        self.extern_functions["__temporal_assert_local_activity_valid"](name)
        return self.outbound.start_local_activity(
            StartLocalActivityInput(
                activity=name,
                args=args,
                activity_id=activity_id,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                retry_policy=retry_policy,
                local_retry_threshold=local_retry_threshold,
                cancellation_type=cancellation_type,
                summary=summary,
                event_groups=event_groups,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
            )
        )

    async def workflow_start_child_workflow(
        self,
        workflow: Any,
        *args: Any,
        id: str,
        task_queue: str | None,
        result_type: type | None,
        cancellation_type: temporalio.workflow.ChildWorkflowCancellationType,
        parent_close_policy: temporalio.workflow.ParentClosePolicy,
        execution_timeout: timedelta | None,
        run_timeout: timedelta | None,
        task_timeout: timedelta | None,
        id_reuse_policy: temporalio.common.WorkflowIDReusePolicy,
        retry_policy: temporalio.common.RetryPolicy | None,
        cron_schedule: str,
        memo: Mapping[str, Any] | None,
        search_attributes: temporalio.common.SearchAttributes
        | temporalio.common.TypedSearchAttributes
        | None,
        versioning_intent: temporalio.workflow.VersioningIntent | None,
        static_summary: str | None = None,
        static_details: str | None = None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
        priority: temporalio.common.Priority = temporalio.common.Priority.default,
        versioning_override: temporalio.common.VersioningOverride | None = None,
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        name: str
        arg_types: list[type] | None = None
        ret_type = result_type
        if isinstance(workflow, str):
            name = workflow
        elif callable(workflow):
            defn = temporalio.workflow._Definition.must_from_run_fn(workflow)
            if not defn.name:
                raise TypeError("Cannot invoke dynamic workflow explicitly")
            name = defn.name
            arg_types = defn.arg_types
            ret_type = defn.ret_type
        else:
            raise TypeError("Workflow must be a string or callable")
        return await self.outbound.start_child_workflow(
            StartChildWorkflowInput(
                workflow=name,
                args=args,
                id=id,
                task_queue=task_queue,
                cancellation_type=cancellation_type,
                parent_close_policy=parent_close_policy,
                execution_timeout=execution_timeout,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                id_reuse_policy=id_reuse_policy,
                retry_policy=retry_policy,
                cron_schedule=cron_schedule,
                memo=memo,
                search_attributes=search_attributes,
                headers={},
                arg_types=arg_types,
                ret_type=ret_type,
                versioning_intent=versioning_intent,
                versioning_override=versioning_override,
                static_summary=static_summary,
                static_details=static_details,
                event_groups=event_groups,
                priority=priority,
            )
        )

    async def workflow_start_nexus_operation(
        self,
        endpoint: str,
        service: str,
        operation: nexusrpc.Operation[Any, Any] | str | Callable[..., Any],
        input: Any,
        output_type: type[Any] | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        cancellation_type: temporalio.workflow.NexusOperationCancellationType,
        headers: Mapping[str, str] | None,
        summary: str | None,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> temporalio.workflow.NexusOperationHandle[Any]:
        if temporalio.nexus.system.is_system_endpoint(endpoint):
            # System operations go through the interceptors' typed system hooks.
            return await _start_system_nexus_operation(
                self.outbound,
                StartNexusOperationInput(
                    endpoint=temporalio.nexus.system.TEMPORAL_SYSTEM_ENDPOINT,
                    service=service,
                    operation=operation,
                    input=input,
                    output_type=output_type,
                    schedule_to_close_timeout=schedule_to_close_timeout,
                    schedule_to_start_timeout=schedule_to_start_timeout,
                    start_to_close_timeout=start_to_close_timeout,
                    cancellation_type=cancellation_type,
                    headers=None,
                    summary=summary,
                    event_groups=event_groups,
                ),
            )
        return await self.outbound.start_nexus_operation(
            StartNexusOperationInput(
                endpoint=endpoint,
                service=service,
                operation=operation,
                input=input,
                output_type=output_type,
                schedule_to_close_timeout=schedule_to_close_timeout,
                schedule_to_start_timeout=schedule_to_start_timeout,
                start_to_close_timeout=start_to_close_timeout,
                cancellation_type=cancellation_type,
                headers=headers,
                summary=summary,
                event_groups=event_groups,
            )
        )


def _activity_name_and_types(
    activity: Any, result_type: type | None
) -> tuple[str, list[type] | None, type | None]:
    if isinstance(activity, str):
        return activity, None, result_type
    if callable(activity):
        defn = temporalio.activity._Definition.must_from_callable(activity)
        if not defn.name:
            raise ValueError("Cannot invoke dynamic activity explicitly")
        return defn.name, defn.arg_types, defn.ret_type
    raise TypeError("Activity must be a string or callable")
