"""Making a loop the thread's running loop for a while, and restoring the one before.

Workflow code finds its run through ``asyncio.get_running_loop()`` (the SDK's ``_Runtime``
lookup), so whoever runs workflow code, or builds what may call the workflow API (interceptors,
an engine's instance), makes the run's loop the running one first. The caller's thread may itself
be running a loop (an executor thread of the Worker's, a test's event loop): the previous one is
put back on the way out, whatever happens inside.
"""

from __future__ import annotations

import asyncio


class running:
    """``with running(loop):`` makes ``loop`` the thread's running loop inside the block.

    Named like a function because it is used like one. A class, not a generator: it is on the
    path of every activation and of every new run's creation.
    """

    __slots__ = ("_loop", "_previous")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> None:
        self._previous = asyncio._get_running_loop()
        asyncio._set_running_loop(self._loop)

    def __exit__(self, *_: object) -> None:
        asyncio._set_running_loop(self._previous)
