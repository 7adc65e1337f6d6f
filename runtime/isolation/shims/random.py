"""The run's own random stream behind ``random``, ``uuid``, ``os.urandom`` and ``secrets``.

Every draw comes from one per-run stream (:meth:`RunState.rng`), re-created identically on
replay and never shared with ``workflow.random()``: a hidden ``random.random()`` in a library
must not shift ``workflow.uuid4()``. ``secrets`` and ``SystemRandom`` become deterministic too,
so they are no longer cryptographically secure inside a run; that is the price of replaying.

Each ``random`` function is a bound method of ``random._inst``, fetched anew on every attribute
access: :data:`RANDOM_BOUND` finds them by (owner, name).
"""

from __future__ import annotations

import base64
import os as _os
import random as _random
import secrets as _secrets
import uuid as _uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from temporay.runtime.isolation.run_state import draw_run, present_as

__all__ = [
    "OS_OVERRIDES",
    "RANDOM_BOUND",
    "RANDOM_OVERRIDES",
    "SECRETS_OVERRIDES",
    "UUID_OVERRIDES",
]

_T = TypeVar("_T")

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
        st = draw_run(f"random.{name}", _RANDOM_HINT)
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
            st = draw_run("random.Random()", "random.Random(seed) or workflow.random()")
            if st is not None:
                a = st.rng().getrandbits(128)
        super().seed(a, version)


class _ShimSystemRandom(_random.SystemRandom):
    """Stand-in for ``random.SystemRandom`` / ``secrets.SystemRandom``: in a run, draws from the
    run's stream (deterministic, so not cryptographically secure)."""

    def random(self) -> float:
        st = draw_run("random.SystemRandom", _RANDOM_HINT)
        return super().random() if st is None else st.rng().random()

    def getrandbits(self, k: int) -> int:
        st = draw_run("random.SystemRandom", _RANDOM_HINT)
        return super().getrandbits(k) if st is None else st.rng().getrandbits(k)

    def randbytes(self, n: int) -> bytes:
        st = draw_run("random.SystemRandom", _RANDOM_HINT)
        return super().randbytes(n) if st is None else st.rng().randbytes(n)


present_as(_ShimRandom, "Random", "random")
present_as(_ShimSystemRandom, "SystemRandom", "random")

RANDOM_OVERRIDES: dict[str, Any] = {
    name: _random_function(name) for name in _RANDOM_FUNCTIONS if hasattr(_random, name)
}
RANDOM_OVERRIDES.update({"Random": _ShimRandom, "SystemRandom": _ShimSystemRandom})

RANDOM_BOUND: dict[tuple[int, str], Any] = {
    (id(_random._inst), name): RANDOM_OVERRIDES[name]  # type: ignore[attr-defined]
    for name in _RANDOM_FUNCTIONS
    if name in RANDOM_OVERRIDES
}


# --- uuid --------------------------------------------------------------------------------------

_real_uuid1 = _uuid.uuid1
_real_uuid4 = _uuid.uuid4
# 100-ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
_UUID_EPOCH_OFFSET = 0x01B21DD213814000


def _uuid4() -> _uuid.UUID:
    st = draw_run("uuid.uuid4", "workflow.uuid4()")
    if st is None:
        return _real_uuid4()
    return _uuid.UUID(int=st.rng().getrandbits(128), version=4)


def _uuid1(node: int | None = None, clock_seq: int | None = None) -> _uuid.UUID:
    st = draw_run("uuid.uuid1", "workflow.uuid4()")
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


UUID_OVERRIDES: dict[str, Any] = {"uuid1": _uuid1, "uuid4": _uuid4}


# --- os / secrets ------------------------------------------------------------------------------

_real_urandom = _os.urandom


def _urandom(size: int, /) -> bytes:
    st = draw_run("os.urandom", "workflow.random().randbytes(n)")
    return _real_urandom(size) if st is None else st.rng().randbytes(size)


def _getrandom(size: int, flags: int = 0) -> bytes:
    st = draw_run("os.getrandom", "workflow.random().randbytes(n)")
    if st is None:
        return _os.getrandom(size, flags)
    return st.rng().randbytes(size)


OS_OVERRIDES: dict[str, Any] = {"urandom": _urandom}
if hasattr(_os, "getrandom"):
    OS_OVERRIDES["getrandom"] = _getrandom

_DEFAULT_ENTROPY = 32


def _token_bytes(nbytes: int | None = None) -> bytes:
    st = draw_run("secrets.token_bytes", "workflow.random().randbytes(n)")
    if st is None:
        return _secrets.token_bytes(nbytes)
    return st.rng().randbytes(_DEFAULT_ENTROPY if nbytes is None else nbytes)


def _token_hex(nbytes: int | None = None) -> str:
    return _token_bytes(nbytes).hex()


def _token_urlsafe(nbytes: int | None = None) -> str:
    return base64.urlsafe_b64encode(_token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def _secrets_choice(seq: Sequence[_T]) -> _T:
    st = draw_run("secrets.choice", "workflow.random().choice(seq)")
    return _secrets.choice(seq) if st is None else st.rng().choice(seq)


def _randbelow(exclusive_upper_bound: int) -> int:
    st = draw_run("secrets.randbelow", "workflow.random().randrange(n)")
    if st is None:
        return _secrets.randbelow(exclusive_upper_bound)
    if exclusive_upper_bound <= 0:
        raise ValueError("Upper bound must be positive.")
    return st.rng().randrange(exclusive_upper_bound)


def _randbits(k: int) -> int:
    st = draw_run("secrets.randbits", "workflow.random().getrandbits(k)")
    return _secrets.randbits(k) if st is None else st.rng().getrandbits(k)


SECRETS_OVERRIDES: dict[str, Any] = {
    "token_bytes": _token_bytes,
    "token_hex": _token_hex,
    "token_urlsafe": _token_urlsafe,
    "choice": _secrets_choice,
    "randbelow": _randbelow,
    "randbits": _randbits,
    "SystemRandom": _ShimSystemRandom,
}
