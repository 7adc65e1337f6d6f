"""How activations travel between a router and its shards: one interface, two implementations.

``Transport`` is what a router's ``ShardChannel`` sends through; ``SocketTransport`` (the
default) and ``RayCallTransport`` (``transport="ray"``) are its implementations, beside it.

A Ray actor call costs far more latency and CPU than a framed request on a socket, and
activations are the hot path (docs/design-notes.md, "The hop is a direct connection"). So each
shard also listens on a port of its node; routers learn the address and a per-shard secret
through Ray (the secret travels only in the actor's creation arguments, over Ray's own
authenticated channel) and send activation batches there. Everything else — creation,
placement, health, stats, disposal, teardown — stays on Ray. ``transport="ray"`` sends
activations as Ray actor calls instead.

Framing, both directions: 1 byte kind, 4 bytes big-endian length, payload. The first frame of a
connection must be ``HELLO`` carrying the secret; a connection serves one request at a time.

A shard also listens on a Unix socket in Linux's abstract namespace (no file to clean up), and a
router whose connection to it succeeds — one on the same host and network namespace — uses
that, as it answers faster than loopback TCP. Elsewhere the connection is refused at once and
the router keeps to TCP.
"""

from __future__ import annotations

import hmac
import logging
import queue
import secrets
import socket
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

HELLO = 0
RUN_BATCH = 1
COLLECT = 2
REPLY = 3
ERROR = 4

_HEADER = struct.Struct(">BI")
MAX_FRAME = 1 << 30


class TransportTimeout(TimeoutError):
    """The shard did not answer in time; the request's fate is unknown."""


class ShardUnreachable(ConnectionError):
    """The shard could not be reached or broke the connection."""


class Call(Protocol):
    """A request on its way: ``result`` waits for the answer."""

    def result(self, timeout: float | None) -> bytes: ...

    def abandon(self) -> None:
        """The answer will never be read."""
        ...


class Transport(Protocol):
    """The line a router's ``ShardChannel`` sends requests to one shard on."""

    def send(
        self, kind: int, payload: bytes, timeout: float | None, may_block: bool = True
    ) -> Call | None:
        """Send a request; ``None`` when ``may_block=False`` and sending now could block."""
        ...

    def close(self) -> None: ...


def send_frame(sock: socket.socket, kind: int, payload: bytes) -> None:
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


_FIRST_READ = 1 << 16
"""Bytes asked of the first read of a frame: header and payload of a usual frame in one call."""


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    remaining = n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One frame. The first read takes what is there, up to 64 KiB: a peer sends its next
    frame only once it has our answer to this one (request, reply, request...), so nothing
    of another frame can be in the socket, and a usual frame comes whole in one call (on a
    shard that has been idle each call costs, twice: the wait and the read)."""
    data = sock.recv(_FIRST_READ)
    if not data:
        raise ConnectionError("connection closed")
    if len(data) < _HEADER.size:
        data += _recv_exactly(sock, _HEADER.size - len(data))
    kind, length = _HEADER.unpack_from(data)
    if length > MAX_FRAME:
        raise ConnectionError(f"frame of {length} bytes refused")
    missing = _HEADER.size + length - len(data)
    if missing < 0:
        raise ConnectionError("the peer sent past the end of its frame")
    payload = data[_HEADER.size :]
    if missing:
        payload += _recv_exactly(sock, missing)
    return kind, payload


# --- shard side ----------------------------------------------------------------------------------


class ShardServer:
    """Serves activation batches to authenticated routers, one thread per connection."""

    def __init__(
        self,
        host: str,
        secret: bytes,
        handlers: dict[int, Callable[[bytes], bytes]],
        name: str = "shard",
        after_reply: Callable[[], object] | None = None,
    ) -> None:
        self._secret = secret
        self._handlers = handlers
        # Work that must not delay an answer (the shard's after_answer), done once it is sent.
        self._after_reply = after_reply
        self._name = name
        self._listener = socket.create_server((host, 0), backlog=128)
        self.address: tuple[str, int] = (host, self._listener.getsockname()[1])
        self._listeners = [self._listener]
        # The same service on this host's abstract Unix namespace ("" where there is none).
        self.local_name = ""
        if sys.platform == "linux":
            local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            name_bytes = f"temporay-{secrets.token_hex(16)}".encode()
            local.bind(b"\0" + name_bytes)
            local.listen(128)
            self.local_name = name_bytes.decode()
            self._listeners.append(local)
        self._closed = threading.Event()
        for listener in self._listeners:
            threading.Thread(
                target=self._accept, args=(listener,), name=f"{name}-accept", daemon=True
            ).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(
                target=self._serve, args=(conn,), name=f"{self._name}-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10.0)
                kind, payload = recv_frame(conn)
                if kind != HELLO or not hmac.compare_digest(payload, self._secret):
                    logger.warning("Refused a connection to shard %s: bad hello", self._name)
                    return
                conn.settimeout(None)
                send_frame(conn, REPLY, b"")
                while True:
                    kind, payload = recv_frame(conn)
                    handler = self._handlers.get(kind)
                    if handler is None:
                        send_frame(conn, ERROR, f"unknown request kind {kind}".encode())
                        continue
                    try:
                        reply = handler(payload)
                    except Exception as err:
                        logger.exception("Shard %s request failed", self._name)
                        send_frame(conn, ERROR, repr(err).encode())
                        continue
                    send_frame(conn, REPLY, reply)
                    if self._after_reply is not None:
                        self._run_after_reply()
            except (ConnectionError, OSError):
                return

    def _run_after_reply(self) -> None:
        assert self._after_reply is not None
        try:
            self._after_reply()
        except Exception:
            logger.exception("Shard %s: work after a reply failed", self._name)

    def close(self) -> None:
        self._closed.set()
        for listener in self._listeners:
            try:
                # Wakes the accepting thread: closing alone leaves it listening on Linux.
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()


# --- router side ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    secret: bytes
    local_name: str = ""
    """The shard's abstract Unix socket, tried first (see the module's docstring)."""


class SocketTransport:
    """Requests over a small pool of authenticated connections to one shard."""

    def __init__(self, endpoint: Endpoint, connect_timeout: float = 5.0) -> None:
        self._endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._idle: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()
        self._closed = False
        # Whether the shard's Unix socket is reachable from here (None: not tried yet).
        self._local: bool | None = None if endpoint.local_name else False

    @property
    def local(self) -> bool:
        """Whether requests go over the shard's Unix socket (it shares this host)."""
        return bool(self._local)

    def _open(self) -> socket.socket:
        e = self._endpoint
        if self._local is not False:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._connect_timeout)
            try:
                sock.connect(b"\0" + e.local_name.encode())
                self._local = True
                return sock
            except OSError:
                sock.close()
                if self._local:
                    raise  # it was reachable: the shard is gone, not elsewhere
                self._local = False  # another host, or another network namespace
        sock = socket.create_connection((e.host, e.port), timeout=self._connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _connect(self) -> socket.socket:
        e = self._endpoint
        try:
            sock = self._open()
            send_frame(sock, HELLO, e.secret)
            kind, _ = recv_frame(sock)
        except (OSError, ConnectionError) as err:
            raise ShardUnreachable(f"connecting to {e.host}:{e.port} failed: {err}") from err
        if kind != REPLY:
            sock.close()
            raise ShardUnreachable(f"{e.host}:{e.port} refused the connection")
        return sock

    def send(
        self, kind: int, payload: bytes, timeout: float | None, may_block: bool = True
    ) -> SocketCall | None:
        """Send a request now; its answer is read later with ``SocketCall.result``.

        ``may_block=False`` (a caller on the Worker's event loop): only on an idle connection,
        else ``None`` (opening one takes a round trip to the shard)."""
        if self._closed:
            raise ShardUnreachable("transport closed")
        try:
            sock = self._idle.get_nowait()
        except queue.Empty:
            if not may_block:
                return None
            sock = self._connect()
        try:
            sock.settimeout(timeout)
            send_frame(sock, kind, payload)
        except TimeoutError as err:
            sock.close()
            raise TransportTimeout("the shard did not take the request within the budget") from err
        except (OSError, ConnectionError) as err:
            sock.close()
            raise ShardUnreachable(f"connection to the shard broke: {err}") from err
        return SocketCall(self, sock)

    def request(self, kind: int, payload: bytes, timeout: float | None) -> bytes:
        """Send and wait for the answer, in one go."""
        call = self.send(kind, payload, timeout)
        assert call is not None
        return call.result(timeout)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class SocketCall:
    """A request sent on one connection of a ``SocketTransport``, its answer still to read."""

    __slots__ = ("_sock", "_transport")

    def __init__(self, transport: SocketTransport, sock: socket.socket) -> None:
        self._transport = transport
        self._sock = sock

    def result(self, timeout: float | None) -> bytes:
        sock = self._sock
        try:
            sock.settimeout(timeout)
            reply_kind, reply = recv_frame(sock)
        except TimeoutError as err:
            sock.close()  # a late reply would be read by the next request
            raise TransportTimeout("the shard did not answer within the budget") from err
        except (OSError, ConnectionError) as err:
            sock.close()
            raise ShardUnreachable(f"connection to the shard broke: {err}") from err
        if self._transport._closed:
            sock.close()
        else:
            self._transport._idle.put(sock)
        if reply_kind == ERROR:
            raise RuntimeError(f"the shard failed the request: {reply.decode(errors='replace')}")
        return reply

    def abandon(self) -> None:
        """The answer will never be read: the connection cannot serve another request."""
        self._sock.close()


class RayCallTransport:
    """Requests as Ray actor calls (``transport="ray"``)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def send(
        self, kind: int, payload: bytes, timeout: float | None, may_block: bool = True
    ) -> RayCall | None:
        """Submit the actor call (``None`` for a caller that must not block: submitting may
        wait on Ray's own bookkeeping)."""
        if not may_block:
            return None
        from ray.exceptions import RayActorError

        method = self._handle.run_batch if kind == RUN_BATCH else self._handle.collect
        try:
            return RayCall(method.remote(payload))
        except RayActorError as err:
            raise ShardUnreachable(f"the shard actor is gone: {err}") from err

    def close(self) -> None:
        pass


class RayCall:
    """A submitted actor call of a ``RayCallTransport``."""

    __slots__ = ("_ref",)

    def __init__(self, ref: Any) -> None:
        self._ref = ref

    def result(self, timeout: float | None) -> bytes:
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        try:
            return bytes(ray.get(self._ref, timeout=timeout))
        except GetTimeoutError as err:
            raise TransportTimeout("the shard did not answer within the budget") from err
        except RayActorError as err:
            raise ShardUnreachable(f"the shard actor is gone: {err}") from err

    def abandon(self) -> None:
        pass
