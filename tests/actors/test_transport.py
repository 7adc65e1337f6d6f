"""The socket transport between routers and shards, on real sockets.

A router on the shard's host talks to it over the shard's abstract Unix socket, anyone else over
TCP; both hold the framing to what the ends expect (any size, errors answered without losing the
connection) and both require the secret.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from temporay.actors.transport import (
    COLLECT,
    RUN_BATCH,
    Endpoint,
    ShardServer,
    ShardUnreachable,
    SocketTransport,
    recv_frame,
    send_frame,
)

SECRET = b"s" * 32


def _fail(_: bytes) -> bytes:
    raise ValueError("handler refused")


@pytest.fixture
def server() -> Iterator[ShardServer]:
    served = ShardServer(
        "127.0.0.1", SECRET, {RUN_BATCH: lambda data: data[::-1], COLLECT: _fail}, name="t"
    )
    yield served
    served.close()


def _transport(
    server: ShardServer, secret: bytes = SECRET, local_name: str | None = None
) -> SocketTransport:
    host, port = server.address
    name = server.local_name if local_name is None else local_name
    return SocketTransport(Endpoint(host, port, secret, name))


@pytest.mark.parametrize("local_name", [None, ""], ids=["unix", "tcp"])
@pytest.mark.parametrize("size", [0, 1, 65_536, 3 * 1024 * 1024 + 7])
def test_requests_of_any_size_come_back_whole(
    server: ShardServer, size: int, local_name: str | None
) -> None:
    transport = _transport(server, local_name=local_name)
    try:
        payload = bytes(i % 251 for i in range(size))
        assert transport.request(RUN_BATCH, payload, 10.0) == payload[::-1]
        assert transport.request(RUN_BATCH, b"again", 10.0) == b"niaga"
        assert transport.local is (local_name is None)
    finally:
        transport.close()


def test_a_router_on_the_same_host_uses_the_unix_socket(server: ShardServer) -> None:
    assert server.local_name  # this is Linux
    transport = _transport(server)
    try:
        assert transport.request(RUN_BATCH, b"ab", 10.0) == b"ba"
        assert transport.local
    finally:
        transport.close()


def test_an_unreachable_unix_socket_falls_back_to_tcp(server: ShardServer) -> None:
    # As from another host, where the shard's abstract name does not exist.
    transport = _transport(server, local_name="temporay-nowhere")
    try:
        assert transport.request(RUN_BATCH, b"ab", 10.0) == b"ba"
        assert not transport.local
    finally:
        transport.close()


def test_a_failing_handler_is_an_error_and_the_connection_still_serves(
    server: ShardServer,
) -> None:
    transport = _transport(server)
    try:
        with pytest.raises(RuntimeError, match="handler refused"):
            transport.request(COLLECT, b"x", 10.0)
        assert transport.request(RUN_BATCH, b"ab", 10.0) == b"ba"
    finally:
        transport.close()


@pytest.mark.parametrize("local_name", [None, ""], ids=["unix", "tcp"])
def test_a_wrong_secret_is_refused(server: ShardServer, local_name: str | None) -> None:
    transport = _transport(server, secret=b"w" * 32, local_name=local_name)
    try:
        with pytest.raises(ShardUnreachable):
            transport.request(RUN_BATCH, b"x", 10.0)
    finally:
        transport.close()


def test_a_closed_shard_is_unreachable_over_either_socket(server: ShardServer) -> None:
    transport = _transport(server)
    try:
        assert transport.request(RUN_BATCH, b"ab", 10.0) == b"ba"
        server.close()
        transport.close()
        with pytest.raises(ShardUnreachable):
            _transport(server).request(RUN_BATCH, b"x", 10.0)
    finally:
        transport.close()


def test_a_frame_is_read_whole_however_it_arrives_and_nothing_past_it() -> None:
    left, right = socket.socketpair()
    try:
        send_frame(left, RUN_BATCH, b"one")
        assert recv_frame(right) == (RUN_BATCH, b"one")
        # In pieces: part of the header, the rest of it, the payload in two.
        big = bytes(range(256)) * 1024  # larger than a first read
        frame = struct.pack(">BI", COLLECT, len(big)) + big

        def write_in_pieces() -> None:
            for piece in (frame[:2], frame[2:5], frame[5:1000], frame[1000:]):
                left.sendall(piece)
                time.sleep(0.01)

        writer = threading.Thread(target=write_in_pieces)
        writer.start()
        assert recv_frame(right) == (COLLECT, big)
        writer.join()
        # Peers take turns (request, reply): bytes past a frame break the protocol.
        left.sendall(struct.pack(">BI", RUN_BATCH, 3) + b"onetwo")
        with pytest.raises(ConnectionError, match="past the end"):
            recv_frame(right)
        left.sendall(b"\x01\x00\x00")  # half a header, then gone
        left.close()
        with pytest.raises(ConnectionError):
            recv_frame(right)
    finally:
        right.close()
