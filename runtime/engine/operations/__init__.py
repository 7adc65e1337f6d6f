"""The operations a workflow starts: activities, child workflows, signals and cancels to other
workflows, Nexus operations, and the continue-as-new request.

Each operation is a command now and a result later (a resolve job, matched by sequence number).
The handles are asyncio tasks (as the SDK's public handle types require) whose coroutine waits on
the result future behind a shield (``awaiting.py``), so a task cancellation becomes a Temporal
cancel command and the result decides the outcome. The number of tasks and awaits per operation
is exactly the SDK's: an extra hop through the loop would reorder commands between concurrent
coroutines. Each handle decodes and applies its own resolution (``resolve...``) and answers the
Worker's context questions about its command; the run keeps the ones waiting in
``pending.PendingOperations``.
"""
