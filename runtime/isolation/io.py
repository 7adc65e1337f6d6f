"""Refusing I/O reached from workflow code, directly or through a library.

An audit hook sees every ``open``, socket, subprocess and environment write of the process, also
those a library makes on the workflow's behalf, which no namespace shim could catch. It is
process-wide and cannot be removed, so it must be inert unless a restricted run's activation is on
this context (:data:`CURRENT_RUN`) *and* workflow code is on the stack: imports, tracebacks and log
handlers doing I/O during an activation are the infrastructure's, not the workflow's.

The error is the SDK's ``RestrictedWorkflowAccessError`` naming the call and what to use instead,
so the workflow task fails and is retried, as under the SDK's sandbox.
"""

from __future__ import annotations

import sys
import threading
import types
from typing import Any

from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

from temporay.runtime.isolation.imports import WORKFLOW_BUILTINS
from temporay.runtime.isolation.run_state import RunState, restricting_run

__all__ = ["install_restrictions"]


_FILES = "file I/O is not replayed: read or write files in an activity"
_NETWORK = "network I/O is not replayed: call other services from an activity"
_PROCESSES = "a subprocess is not replayed: run it from an activity"
_ENVIRONMENT = (
    "the environment is shared by every run in the worker: pass configuration as workflow input, "
    "or read it in an activity"
)

_AUDITED: dict[str, tuple[str, str]] = {
    "open": ("open()", _FILES),
    "os.remove": ("os.remove()", _FILES),
    "os.rename": ("os.rename()", _FILES),
    "os.rmdir": ("os.rmdir()", _FILES),
    "os.mkdir": ("os.mkdir()", _FILES),
    "os.truncate": ("os.truncate()", _FILES),
    "os.chmod": ("os.chmod()", _FILES),
    "os.chown": ("os.chown()", _FILES),
    "os.link": ("os.link()", _FILES),
    "os.symlink": ("os.symlink()", _FILES),
    "os.utime": ("os.utime()", _FILES),
    "os.listdir": ("os.listdir()", _FILES),
    "os.scandir": ("os.scandir()", _FILES),
    "os.chdir": ("os.chdir()", _FILES),
    "glob.glob": ("glob.glob()", _FILES),
    "shutil.copyfile": ("shutil.copyfile()", _FILES),
    "shutil.copytree": ("shutil.copytree()", _FILES),
    "shutil.rmtree": ("shutil.rmtree()", _FILES),
    "shutil.move": ("shutil.move()", _FILES),
    "shutil.make_archive": ("shutil.make_archive()", _FILES),
    "shutil.unpack_archive": ("shutil.unpack_archive()", _FILES),
    "tempfile.mkstemp": ("tempfile.mkstemp()", _FILES),
    "tempfile.mkdtemp": ("tempfile.mkdtemp()", _FILES),
    "builtins.input": ("input()", "workflow code cannot read the terminal"),
    "socket.__new__": ("socket.socket()", _NETWORK),
    "socket.connect": ("socket.connect()", _NETWORK),
    "socket.bind": ("socket.bind()", _NETWORK),
    "socket.getaddrinfo": ("socket.getaddrinfo()", _NETWORK),
    "socket.gethostbyname": ("socket.gethostbyname()", _NETWORK),
    "socket.gethostbyaddr": ("socket.gethostbyaddr()", _NETWORK),
    "socket.sendto": ("socket.sendto()", _NETWORK),
    "urllib.Request": ("urllib.request.urlopen()", _NETWORK),
    "subprocess.Popen": ("subprocess.Popen()", _PROCESSES),
    "os.system": ("os.system()", _PROCESSES),
    "os.exec": ("os.exec*()", _PROCESSES),
    "os.spawn": ("os.spawn*()", _PROCESSES),
    "os.posix_spawn": ("os.posix_spawn()", _PROCESSES),
    "os.fork": ("os.fork()", _PROCESSES),
    "os.forkpty": ("os.forkpty()", _PROCESSES),
    "os.kill": ("os.kill()", _PROCESSES),
    "os.killpg": ("os.killpg()", _PROCESSES),
    "os.putenv": ("os.environ[...] = ... (os.putenv)", _ENVIRONMENT),
    "os.unsetenv": ("del os.environ[...] (os.unsetenv)", _ENVIRONMENT),
    "webbrowser.open": ("webbrowser.open()", "workflow code cannot open a browser"),
}

# Frames of these modules between the I/O and the workflow code make it infrastructure (imports,
# source lines for tracebacks, log handlers), not the workflow's own I/O.
_EXEMPT_MODULES = (
    "importlib",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "zipimport",
    "pkgutil",
    "linecache",
    "tokenize",
    "traceback",
    "inspect",
    "warnings",
    "logging",
    "temporay.runtime",
)


def _from_workflow_code(st: RunState, frame: types.FrameType | None) -> bool:
    code_globals = st.code_globals
    while frame is not None:
        # Isolated workflow code is recognised by its builtins; unisolated by its namespace.
        if frame.f_builtins is WORKFLOW_BUILTINS or (
            code_globals and id(frame.f_globals) in code_globals
        ):
            return True
        name = frame.f_globals.get("__name__")
        if isinstance(name, str) and name.startswith(_EXEMPT_MODULES):
            return False
        frame = frame.f_back
    return False


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    rule = _AUDITED.get(event)
    if rule is None:
        return
    st = restricting_run()
    if st is None:
        return
    if not _from_workflow_code(st, sys._getframe(1)):
        return
    call, reason = rule
    detail = ""
    if event == "open" and args:
        detail = f" of {args[0]!r}"
    raise RestrictedWorkflowAccessError(
        call,
        override_message=(
            f"Cannot call {call}{detail} from workflow code: {reason}. "
            "(workflow.unsafe.sandbox_unrestricted() lifts this for code you know is safe.)"
        ),
    )


_audit_installed = False
_audit_lock = threading.Lock()


def install_restrictions() -> None:
    """Install the I/O audit hook (once per process; it cannot be removed, and does nothing
    outside a restricted run's activation)."""
    global _audit_installed
    if _audit_installed:
        return
    with _audit_lock:
        if not _audit_installed:
            sys.addaudithook(_audit_hook)
            _audit_installed = True
