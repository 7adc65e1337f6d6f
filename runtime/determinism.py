"""Deterministic stand-ins for the nondeterministic parts of the standard library.

Workflow code written for plain Python calls ``time.time()``, ``datetime.now()``, ``random.random()``
or ``uuid.uuid4()``. The SDK's sandbox refuses those calls; temporay answers them deterministically
instead: the time is the workflow's time (``workflow.now()``), the randomness a per-run stream that
is re-created identically on replay.

How the shims reach workflow code, and only workflow code (DESIGN.md §4):

* They are **stand-in modules and objects** (:data:`STAND_INS`), put into the per-run module
  namespaces of the workflow's own modules by :mod:`temporay.runtime.sandbox`: ``import time`` in a
  workflow module binds the stand-in ``time`` module, ``from time import time`` the stand-in
  function. The real modules are never patched, so logging, Ray, gRPC and every other library keep
  the real clock even on the workflow's thread.
* They are **scoped by a per-run ContextVar** (:data:`CURRENT_RUN`) that the isolation layer sets
  around each activation: a stand-in called outside an activation (another thread, a callback kept
  after the run, module import time) behaves exactly like the real function.
* The randomness is the run's own stream (:class:`RunState`), seeded from the run's randomness seed
  and re-seeded when the server sends a new one; it never draws from ``workflow.random()``, so a
  hidden ``random.random()`` cannot shift ``workflow.uuid4()``.
* ``strict`` runs refuse these calls like the SDK sandbox (``RestrictedWorkflowAccessError``).
* ``workflow.unsafe.sandbox_unrestricted()`` turns the shims off (the real functions answer).

Naive datetimes (``datetime.now()``, ``utcnow()``, ``today()``, ``date.today()``) are UTC, never
the host's local time zone: a worker in another time zone must replay the same values.
"""

from __future__ import annotations

import _thread
import base64
import datetime as _dt
import os as _os
import random as _random
import secrets as _secrets
import threading as _threading
import time as _time
import types
import uuid as _uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import temporalio.workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

__all__ = [
    "CURRENT_RUN",
    "STAND_INS",
    "RunState",
    "current_run",
    "shim_date",
    "shim_datetime",
    "stand_in_module",
]

_T = TypeVar("_T")

_unsafe = temporalio.workflow.unsafe
_Runtime = temporalio.workflow._Runtime


class RunState:
    """What the shims of one run need: its seed, its random stream, its time, its options.

    One per run, referenced from the run's ContextVar value (and therefore from every asyncio task
    the run creates). Kept small: the random stream (2.5 KiB of Mersenne Twister state) is created
    only when the run first draws from it.
    """

    __slots__ = (
        "_rng",
        "_seed",
        "code_globals",
        "modules",
        "plan",
        "restrict_io",
        "run_id",
        "shims",
        "strict",
        "time_ns",
    )

    def __init__(
        self,
        seed: int,
        *,
        run_id: str = "",
        shims: bool = True,
        strict: bool = False,
        restrict_io: bool = True,
        modules: dict[int, types.ModuleType] | None = None,
        code_globals: frozenset[int] = frozenset(),
    ) -> None:
        self._seed = seed
        self._rng: _random.Random | None = None
        self.run_id = run_id
        self.shims = shims
        self.strict = strict
        self.restrict_io = restrict_io
        # id(template module) -> this run's copy, for imports executed by workflow code.
        self.modules: dict[int, types.ModuleType] = modules if modules is not None else {}
        # ids of the template namespaces whose frames count as workflow code when the run is not
        # isolated (isolated code is recognised by its builtins).
        self.code_globals = code_globals
        # The isolation plan the run was made from (package views for imports), if isolated.
        self.plan: Any = None
        self.time_ns = 0

    @property
    def seed(self) -> int:
        return self._seed

    def reseed(self, seed: int) -> None:
        """A new randomness seed from the server (``UpdateRandomSeed``): restart the stream."""
        self._seed = seed
        self._rng = None

    def rng(self) -> _random.Random:
        rng = self._rng
        if rng is None:
            # A str seed is hashed with SHA-512 (not the per-process hash()), so every worker
            # derives the same stream; the prefix keeps it apart from workflow.random()'s.
            rng = self._rng = _random.Random(f"temporay-shims:{self._seed}")
        return rng

    def now_ns(self) -> int:
        """The workflow's current time, exactly as ``workflow.time_ns()`` reports it."""
        runtime = _Runtime.maybe_current()
        if runtime is not None:
            return runtime.workflow_time_ns()
        return self.time_ns


CURRENT_RUN: ContextVar[RunState | None] = ContextVar("temporay_current_run", default=None)
"""The run whose workflow code is executing in this context; ``None`` outside activations."""


def current_run() -> RunState | None:
    """The run the calling workflow code belongs to, or ``None`` (not in an activation)."""
    return CURRENT_RUN.get()


def _refusal(qualified_name: str, alternative: str) -> RestrictedWorkflowAccessError:
    return RestrictedWorkflowAccessError(
        qualified_name,
        override_message=(
            f"Cannot call {qualified_name} from workflow code: this worker runs workflows in "
            f"strict mode (LocalWorkflowRunner(strict=True)). Use {alternative} instead."
        ),
    )


def _clock_run(name: str, alternative: str) -> RunState | None:
    """The run whose deterministic clock answers, or ``None`` for the real clock."""
    st = CURRENT_RUN.get()
    if st is None or not st.shims or _unsafe.is_sandbox_unrestricted():
        return None
    if st.strict:
        raise _refusal(name, alternative)
    return st


def _draw_run(name: str, alternative: str) -> RunState | None:
    """The run whose random stream answers, or ``None`` for the real source.

    Like ``workflow.random()``, refuses in read-only contexts (queries, update validators): a
    draw there would shift the stream for this worker only and break replay elsewhere.
    """
    st = _clock_run(name, alternative)
    if st is not None:
        runtime = _Runtime.maybe_current()
        if runtime is not None and runtime.workflow_is_read_only():
            raise temporalio.workflow.ReadOnlyContextError(
                f"{name} draws from the run's random stream and cannot be called in a query or "
                "an update validator"
            )
    return st


# --- time --------------------------------------------------------------------------------------

_real_time = _time.time
_real_time_ns = _time.time_ns
_real_monotonic = _time.monotonic
_real_monotonic_ns = _time.monotonic_ns
_real_perf_counter = _time.perf_counter
_real_perf_counter_ns = _time.perf_counter_ns
_real_process_time = _time.process_time
_real_process_time_ns = _time.process_time_ns
_real_thread_time = _time.thread_time
_real_thread_time_ns = _time.thread_time_ns
_real_sleep = _time.sleep
_real_localtime = _time.localtime
_real_gmtime = _time.gmtime
_real_ctime = _time.ctime
_real_asctime = _time.asctime
_real_strftime = _time.strftime

_CLOCK_HINT = "workflow.time() / workflow.now()"


def _ns_clock(name: str, real: Callable[[], int]) -> Callable[[], int]:
    def clock_ns() -> int:
        st = _clock_run(f"time.{name}", _CLOCK_HINT)
        return real() if st is None else st.now_ns()

    clock_ns.__name__ = clock_ns.__qualname__ = name
    clock_ns.__doc__ = f"Deterministic ``time.{name}``: the workflow time in a workflow run."
    clock_ns.__module__ = "time"
    return clock_ns


def _float_clock(name: str, real: Callable[[], float]) -> Callable[[], float]:
    def clock() -> float:
        st = _clock_run(f"time.{name}", _CLOCK_HINT)
        return real() if st is None else st.now_ns() / 1e9

    clock.__name__ = clock.__qualname__ = name
    clock.__doc__ = f"Deterministic ``time.{name}``: the workflow time in a workflow run."
    clock.__module__ = "time"
    return clock


def _sleep(secs: float, /) -> None:
    """``time.sleep``: refused in workflow code (it would block the whole worker thread)."""
    st = CURRENT_RUN.get()
    if st is not None and st.restrict_io and not _unsafe.is_sandbox_unrestricted():
        raise RestrictedWorkflowAccessError(
            "time.sleep",
            override_message=(
                "Cannot call time.sleep() from workflow code: it blocks the worker and is not "
                "durable. Use `await asyncio.sleep(...)` or `await workflow.sleep(...)` (a "
                "durable timer) instead."
            ),
        )
    _real_sleep(secs)


def _shim_seconds(secs: float | None, name: str) -> float | None:
    if secs is not None:
        return secs
    st = _clock_run(f"time.{name}", _CLOCK_HINT)
    return None if st is None else st.now_ns() / 1e9


def _localtime(secs: float | None = None, /) -> _time.struct_time:
    return _real_localtime(_shim_seconds(secs, "localtime"))


def _gmtime(secs: float | None = None, /) -> _time.struct_time:
    return _real_gmtime(_shim_seconds(secs, "gmtime"))


def _ctime(secs: float | None = None, /) -> str:
    return _real_ctime(_shim_seconds(secs, "ctime"))


def _asctime(t: Any = None, /) -> str:
    if t is None:
        secs = _shim_seconds(None, "asctime")
        if secs is not None:
            t = _real_localtime(secs)
    return _real_asctime() if t is None else _real_asctime(t)


def _strftime(fmt: str, t: Any = None, /) -> str:
    if t is None:
        secs = _shim_seconds(None, "strftime")
        if secs is not None:
            t = _real_localtime(secs)
    return _real_strftime(fmt) if t is None else _real_strftime(fmt, t)


# --- datetime ----------------------------------------------------------------------------------

_real_datetime = _dt.datetime
_real_date = _dt.date
_UTC = _dt.UTC


def _workflow_now(name: str) -> _dt.datetime | None:
    st = _clock_run(name, "workflow.now()")
    if st is None:
        return None
    # Exactly workflow.now(): datetime.fromtimestamp(time_ns / 1e9, timezone.utc).
    return _real_datetime.fromtimestamp(st.now_ns() / 1e9, _UTC)


class _TransparentMeta(type):
    """Metaclass of the stand-in ``datetime``/``date`` classes: constructing one gives a real
    ``datetime.datetime``/``date`` and ``isinstance``/``issubclass`` answer for the real class, so
    converters, pydantic and ``type(x) is datetime`` checks in libraries see real objects."""

    _real: type

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls._real)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls._real)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls._real is not None and cls.__dict__.get("_stand_in", False):
            return cls._real(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class _ShimDatetime(_real_datetime, metaclass=_TransparentMeta):
    """Stand-in for ``datetime.datetime``: ``now``/``utcnow``/``today`` read the workflow clock."""

    _real = _real_datetime
    _stand_in = True

    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
        now = _workflow_now("datetime.datetime.now")
        if now is None:
            return _real_datetime.now(tz)
        return now.replace(tzinfo=None) if tz is None else now.astimezone(tz)

    @classmethod
    def utcnow(cls) -> _dt.datetime:  # type: ignore[override]
        now = _workflow_now("datetime.datetime.utcnow")
        if now is None:
            return _real_datetime.now(_UTC).replace(tzinfo=None)
        return now.replace(tzinfo=None)

    @classmethod
    def today(cls) -> _dt.datetime:  # type: ignore[override]
        now = _workflow_now("datetime.datetime.today")
        if now is None:
            return _real_datetime.today()
        return now.replace(tzinfo=None)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(_real_datetime)


class _ShimDate(_real_date, metaclass=_TransparentMeta):
    """Stand-in for ``datetime.date``: ``today`` reads the workflow clock (UTC)."""

    _real = _real_date
    _stand_in = True

    @classmethod
    def today(cls) -> _dt.date:  # type: ignore[override]
        now = _workflow_now("datetime.date.today")
        return _real_date.today() if now is None else now.date()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(_real_date)


def _rename(cls: type, name: str, module: str) -> None:
    cls.__name__ = cls.__qualname__ = name
    cls.__module__ = module


_rename(_ShimDatetime, "datetime", "datetime")
_rename(_ShimDate, "date", "datetime")

shim_datetime: type[_dt.datetime] = _ShimDatetime
shim_date: type[_dt.date] = _ShimDate


# --- random ------------------------------------------------------------------------------------

_RANDOM_HINT = "workflow.random()"
_RANDOM_FUNCTIONS = (
    "betavariate",
    "binomialvariate",
    "choice",
    "choices",
    "expovariate",
    "gammavariate",
    "gauss",
    "getrandbits",
    "getstate",
    "lognormvariate",
    "normalvariate",
    "paretovariate",
    "randbytes",
    "randint",
    "random",
    "randrange",
    "sample",
    "seed",
    "setstate",
    "shuffle",
    "triangular",
    "uniform",
    "vonmisesvariate",
    "weibullvariate",
)


def _random_function(name: str) -> Callable[..., Any]:
    real = getattr(_random, name)

    def shim(*args: Any, **kwargs: Any) -> Any:
        st = _draw_run(f"random.{name}", _RANDOM_HINT)
        if st is None:
            return real(*args, **kwargs)
        return getattr(st.rng(), name)(*args, **kwargs)

    shim.__name__ = shim.__qualname__ = name
    shim.__doc__ = real.__doc__
    shim.__module__ = "random"
    return shim


class _ShimRandom(_random.Random):
    """Stand-in for ``random.Random``: an unseeded generator created by workflow code is seeded
    from the run's stream instead of the OS entropy pool. Seeded ones are untouched."""

    def seed(self, a: Any = None, version: int = 2) -> None:
        if a is None:
            st = _draw_run("random.Random()", "random.Random(seed) or workflow.random()")
            if st is not None:
                a = st.rng().getrandbits(128)
        super().seed(a, version)


class _ShimSystemRandom(_random.SystemRandom):
    """Stand-in for ``random.SystemRandom`` / ``secrets.SystemRandom``: in a run, draws from the
    run's stream (deterministic, so not cryptographically secure)."""

    def random(self) -> float:
        st = _draw_run("random.SystemRandom", _RANDOM_HINT)
        return super().random() if st is None else st.rng().random()

    def getrandbits(self, k: int) -> int:
        st = _draw_run("random.SystemRandom", _RANDOM_HINT)
        return super().getrandbits(k) if st is None else st.rng().getrandbits(k)

    def randbytes(self, n: int) -> bytes:
        st = _draw_run("random.SystemRandom", _RANDOM_HINT)
        return super().randbytes(n) if st is None else st.rng().randbytes(n)


_rename(_ShimRandom, "Random", "random")
_rename(_ShimSystemRandom, "SystemRandom", "random")


# --- uuid --------------------------------------------------------------------------------------

_real_uuid1 = _uuid.uuid1
_real_uuid4 = _uuid.uuid4
# 100-ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
_UUID_EPOCH_OFFSET = 0x01B21DD213814000


def _uuid4() -> _uuid.UUID:
    st = _draw_run("uuid.uuid4", "workflow.uuid4()")
    if st is None:
        return _real_uuid4()
    return _uuid.UUID(int=st.rng().getrandbits(128), version=4)


def _uuid1(node: int | None = None, clock_seq: int | None = None) -> _uuid.UUID:
    st = _draw_run("uuid.uuid1", "workflow.uuid4()")
    if st is None:
        return _real_uuid1(node, clock_seq)
    rng = st.rng()
    timestamp = st.now_ns() // 100 + _UUID_EPOCH_OFFSET
    if clock_seq is None:
        clock_seq = rng.getrandbits(14)
    if node is None:
        node = rng.getrandbits(48) | 0x010000000000  # multicast bit: not a real MAC
    return _uuid.UUID(
        fields=(
            timestamp & 0xFFFFFFFF,
            (timestamp >> 32) & 0xFFFF,
            (timestamp >> 48) & 0x0FFF,
            (clock_seq >> 8) & 0x3F,
            clock_seq & 0xFF,
            node,
        ),
        version=1,
    )


# --- os / secrets ------------------------------------------------------------------------------

_real_urandom = _os.urandom


def _urandom(size: int, /) -> bytes:
    st = _draw_run("os.urandom", "workflow.random().randbytes(n)")
    return _real_urandom(size) if st is None else st.rng().randbytes(size)


def _getrandom(size: int, flags: int = 0) -> bytes:
    st = _draw_run("os.getrandom", "workflow.random().randbytes(n)")
    if st is None:
        return _os.getrandom(size, flags)
    return st.rng().randbytes(size)


_DEFAULT_ENTROPY = 32


def _token_bytes(nbytes: int | None = None) -> bytes:
    st = _draw_run("secrets.token_bytes", "workflow.random().randbytes(n)")
    if st is None:
        return _secrets.token_bytes(nbytes)
    return st.rng().randbytes(_DEFAULT_ENTROPY if nbytes is None else nbytes)


def _token_hex(nbytes: int | None = None) -> str:
    return _token_bytes(nbytes).hex()


def _token_urlsafe(nbytes: int | None = None) -> str:
    return base64.urlsafe_b64encode(_token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def _secrets_choice(seq: Sequence[_T]) -> _T:
    st = _draw_run("secrets.choice", "workflow.random().choice(seq)")
    return _secrets.choice(seq) if st is None else st.rng().choice(seq)


def _randbelow(exclusive_upper_bound: int) -> int:
    st = _draw_run("secrets.randbelow", "workflow.random().randrange(n)")
    if st is None:
        return _secrets.randbelow(exclusive_upper_bound)
    if exclusive_upper_bound <= 0:
        raise ValueError("Upper bound must be positive.")
    return st.rng().randrange(exclusive_upper_bound)


def _randbits(k: int) -> int:
    st = _draw_run("secrets.randbits", "workflow.random().getrandbits(k)")
    return _secrets.randbits(k) if st is None else st.rng().getrandbits(k)


# --- threads -----------------------------------------------------------------------------------

_THREAD_MESSAGE = (
    "Cannot call {}() from workflow code: workflow code runs on the worker's deterministic event "
    "loop, a thread would escape it. Use asyncio tasks (asyncio.create_task) for concurrency, and "
    "activities for blocking work."
)


def _refuse_thread(qualified_name: str) -> None:
    st = CURRENT_RUN.get()
    if st is not None and st.restrict_io and not _unsafe.is_sandbox_unrestricted():
        raise RestrictedWorkflowAccessError(
            qualified_name, override_message=_THREAD_MESSAGE.format(qualified_name)
        )


class _GuardedThread(_threading.Thread):
    def start(self) -> None:
        _refuse_thread("threading.Thread.start")
        super().start()


class _GuardedTimer(_threading.Timer):
    def start(self) -> None:
        _refuse_thread("threading.Timer.start")
        super().start()


_rename(_GuardedThread, "Thread", "threading")
_rename(_GuardedTimer, "Timer", "threading")


def _start_new_thread(function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any = None) -> int:
    _refuse_thread("_thread.start_new_thread")
    if kwargs is None:
        return _thread.start_new_thread(function, args)
    return _thread.start_new_thread(function, args, kwargs)


# --- the stand-in modules ----------------------------------------------------------------------


def _module(real: types.ModuleType, overrides: dict[str, Any]) -> types.ModuleType:
    mod = types.ModuleType(real.__name__, real.__doc__)
    mod.__dict__.update(real.__dict__)
    mod.__dict__.update(overrides)
    mod.__dict__["__temporay_stand_in__"] = real
    return mod


_TIME_OVERRIDES: dict[str, Any] = {
    "time": _float_clock("time", _real_time),
    "time_ns": _ns_clock("time_ns", _real_time_ns),
    "monotonic": _float_clock("monotonic", _real_monotonic),
    "monotonic_ns": _ns_clock("monotonic_ns", _real_monotonic_ns),
    "perf_counter": _float_clock("perf_counter", _real_perf_counter),
    "perf_counter_ns": _ns_clock("perf_counter_ns", _real_perf_counter_ns),
    "process_time": _float_clock("process_time", _real_process_time),
    "process_time_ns": _ns_clock("process_time_ns", _real_process_time_ns),
    "thread_time": _float_clock("thread_time", _real_thread_time),
    "thread_time_ns": _ns_clock("thread_time_ns", _real_thread_time_ns),
    "sleep": _sleep,
    "localtime": _localtime,
    "gmtime": _gmtime,
    "ctime": _ctime,
    "asctime": _asctime,
    "strftime": _strftime,
}
_DATETIME_OVERRIDES: dict[str, Any] = {"datetime": _ShimDatetime, "date": _ShimDate}
_RANDOM_OVERRIDES: dict[str, Any] = {
    name: _random_function(name) for name in _RANDOM_FUNCTIONS if hasattr(_random, name)
}
_RANDOM_OVERRIDES.update({"Random": _ShimRandom, "SystemRandom": _ShimSystemRandom})
_UUID_OVERRIDES: dict[str, Any] = {"uuid1": _uuid1, "uuid4": _uuid4}
_OS_OVERRIDES: dict[str, Any] = {"urandom": _urandom}
if hasattr(_os, "getrandom"):
    _OS_OVERRIDES["getrandom"] = _getrandom
_SECRETS_OVERRIDES: dict[str, Any] = {
    "token_bytes": _token_bytes,
    "token_hex": _token_hex,
    "token_urlsafe": _token_urlsafe,
    "choice": _secrets_choice,
    "randbelow": _randbelow,
    "randbits": _randbits,
    "SystemRandom": _ShimSystemRandom,
}
_THREADING_OVERRIDES: dict[str, Any] = {"Thread": _GuardedThread, "Timer": _GuardedTimer}
_THREAD_OVERRIDES: dict[str, Any] = {
    "start_new_thread": _start_new_thread,
    "start_new": _start_new_thread,
}

_STAND_IN_MODULES: dict[str, types.ModuleType] = {
    "time": _module(_time, _TIME_OVERRIDES),
    "datetime": _module(_dt, _DATETIME_OVERRIDES),
    "random": _module(_random, _RANDOM_OVERRIDES),
    "uuid": _module(_uuid, _UUID_OVERRIDES),
    "os": _module(_os, _OS_OVERRIDES),
    "secrets": _module(_secrets, _SECRETS_OVERRIDES),
    "threading": _module(_threading, _THREADING_OVERRIDES),
    "_thread": _module(_thread, _THREAD_OVERRIDES),
}

_REAL_MODULES: dict[str, types.ModuleType] = {
    "time": _time,
    "datetime": _dt,
    "random": _random,
    "uuid": _uuid,
    "os": _os,
    "secrets": _secrets,
    "threading": _threading,
    "_thread": _thread,
}

_OVERRIDES: dict[str, dict[str, Any]] = {
    "time": _TIME_OVERRIDES,
    "datetime": _DATETIME_OVERRIDES,
    "random": _RANDOM_OVERRIDES,
    "uuid": _UUID_OVERRIDES,
    "os": _OS_OVERRIDES,
    "secrets": _SECRETS_OVERRIDES,
    "threading": _THREADING_OVERRIDES,
    "_thread": _THREAD_OVERRIDES,
}


def _build_stand_ins() -> tuple[dict[int, Any], frozenset[int]]:
    table: dict[int, Any] = {}
    classes: set[int] = set()
    for name, real in _REAL_MODULES.items():
        table[id(real)] = _STAND_IN_MODULES[name]
        for attr, stand_in in _OVERRIDES[name].items():
            original = getattr(real, attr, None)
            if original is None:
                continue
            # Module attributes are stable objects (random.random is the one bound method
            # random._inst.random stored at import), so identity finds every `from x import y`.
            table[id(original)] = stand_in
            if isinstance(original, type):
                classes.add(id(original))
    return table, frozenset(classes)


STAND_INS, _STAND_IN_CLASSES = _build_stand_ins()
"""``id(real object) -> stand-in`` for modules, functions and classes workflow modules may bind
(``import time``, ``from time import time``, ``from datetime import datetime``)."""

# Bound methods whose identity changes on every access: (self, name) -> stand-in.
_BOUND_STAND_INS: dict[tuple[int, str], Any] = {
    (id(_random._inst), name): _RANDOM_OVERRIDES[name]  # type: ignore[attr-defined]
    for name in _RANDOM_FUNCTIONS
    if name in _RANDOM_OVERRIDES
}
_BOUND_STAND_INS.update(
    {
        (id(_real_datetime), "now"): _ShimDatetime.now,
        (id(_real_datetime), "utcnow"): _ShimDatetime.utcnow,
        (id(_real_datetime), "today"): _ShimDatetime.today,
        (id(_real_date), "today"): _ShimDate.today,
    }
)

def stand_in_for(value: Any, *, classes: bool = True) -> Any:
    """The stand-in for ``value`` (a real module, function, class or bound method), or ``None``.

    ``classes=False`` leaves classes alone (only callables and modules are replaced): used for
    values that are type metadata rather than code's own references.
    """
    stand_in = STAND_INS.get(id(value))
    if stand_in is not None:
        if not classes and id(value) in _STAND_IN_CLASSES:
            return None
        return stand_in
    if isinstance(value, (types.BuiltinMethodType, types.MethodType)):
        owner = getattr(value, "__self__", None)
        if owner is not None:
            return _BOUND_STAND_INS.get((id(owner), value.__name__))
    return None


def stand_in_module(module: types.ModuleType) -> types.ModuleType | None:
    """The stand-in for a real module (``time``, ``datetime``, ...), or ``None``."""
    stand_in = STAND_INS.get(id(module))
    return stand_in if isinstance(stand_in, types.ModuleType) else None


def is_stand_in(value: Any) -> bool:
    return isinstance(value, types.ModuleType) and "__temporay_stand_in__" in value.__dict__

