"""Workflow code doing I/O, directly and through libraries: each case must be refused."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import threading
import time
import urllib.request
from time import sleep

from temporalio import workflow


def _open_read() -> None:
    with open(__file__) as f:
        f.read()


def _open_write() -> None:
    with open("/tmp/temporay-isolation-should-not-exist", "w") as f:
        f.write("x")


def _pathlib_read() -> None:
    pathlib.Path(__file__).read_text()


def _socket() -> None:
    socket.socket().close()


def _socket_connect() -> None:
    socket.create_connection(("127.0.0.1", 9), timeout=0.1)


def _urlopen() -> None:
    urllib.request.urlopen("http://127.0.0.1:9/", timeout=0.1)


def _subprocess() -> None:
    subprocess.run(["true"], check=False)


def _os_system() -> None:
    os.system("true")


def _thread() -> None:
    threading.Thread(target=lambda: None).start()


def _sleep() -> None:
    time.sleep(0.01)


def _from_time_import_sleep() -> None:
    sleep(0.01)


def _environ_write() -> None:
    os.environ["TEMPORAY_ISOLATION_TEST"] = "1"


def _environ_delete() -> None:
    os.environ.pop("HOME", None)


def _os_remove() -> None:
    os.remove("/tmp/temporay-isolation-should-not-exist")


CASES = {
    "open_read": (_open_read, "open()"),
    "open_write": (_open_write, "open()"),
    "pathlib_read": (_pathlib_read, "open()"),
    "socket": (_socket, "socket.socket()"),
    "socket_connect": (_socket_connect, "socket"),
    "urlopen": (_urlopen, "urllib.request.urlopen()"),
    "subprocess": (_subprocess, "subprocess.Popen()"),
    "os_system": (_os_system, "os.system()"),
    "thread": (_thread, "threading.Thread.start"),
    "sleep": (_sleep, "time.sleep"),
    "from_time_import_sleep": (_from_time_import_sleep, "time.sleep"),
    "environ_write": (_environ_write, "os.putenv"),
    "environ_delete": (_environ_delete, "os.unsetenv"),
    "os_remove": (_os_remove, "os.remove()"),
}


@workflow.defn
class IOCasesWorkflow:
    """Runs every case, catching the error: returns case -> (error type, message)."""

    @workflow.run
    async def run(self, cases: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in cases:
            fn, _ = CASES[name]
            try:
                fn()
            except Exception as err:
                out[name] = [type(err).__name__, str(err)]
            else:
                out[name] = ["no error", ""]
        return out


@workflow.defn
class UncaughtIOWorkflow:
    """Lets the error escape: the workflow task fails (and is retried)."""

    @workflow.run
    async def run(self) -> None:
        _socket()


@workflow.defn
class UnrestrictedIOWorkflow:
    """Inside sandbox_unrestricted() the I/O is allowed."""

    @workflow.run
    async def run(self) -> str:
        with workflow.unsafe.sandbox_unrestricted():
            _open_read()
            return os.environ.get("HOME", "")
