"""``temporay.converter``: MessagePack payloads for clients, workers and workflows.

See :mod:`temporay.runtime.converter`.
"""

from temporay.runtime.converter import (
    MSGPACK_ENCODING,
    MsgPackDefaultPayloadConverter,
    MsgPackPayloadConverter,
    msgpack_data_converter,
)

__all__ = [
    "MSGPACK_ENCODING",
    "MsgPackDefaultPayloadConverter",
    "MsgPackPayloadConverter",
    "msgpack_data_converter",
]
