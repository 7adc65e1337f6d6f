"""MessagePack payloads (``binary/msgpack``): smaller and faster than JSON, same Python types.

``MsgPackPayloadConverter`` encodes what the SDK's JSON converter encodes — dataclasses, ``datetime``,
``UUID``, enums, pydantic models, containers — as MessagePack, and decodes it back to the types
the caller's type hints ask for, with the SDK's own ``value_to_type``. ``msgpack_data_converter``
is a ``DataConverter`` ready for clients, workers and workflows:

.. code-block:: python

    client = await Client.connect("localhost:7233", data_converter=msgpack_data_converter)

Encoding: aware ``datetime`` values use MessagePack's Timestamp extension (``-1``), naive ones an
ISO-8601 string; ``date``/``time`` ISO strings; ``UUID`` and ``Decimal`` their string form; enums
their value; sets and tuples arrays; ``bytes`` MessagePack bin. Values MessagePack cannot
represent fall through to the JSON converter. Payloads of the other encodings (``json/plain``,
``binary/null``, ``binary/plain``, protobuf) decode as before, so histories written with the
default converter keep replaying.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
import temporalio.api.common.v1
import temporalio.converter
from temporalio.converter import (
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    JSONProtoPayloadConverter,
    JSONTypeConverter,
)

__all__ = [
    "MSGPACK_ENCODING",
    "MsgPackDefaultPayloadConverter",
    "MsgPackPayloadConverter",
    "msgpack_data_converter",
]

MSGPACK_ENCODING = "binary/msgpack"


class _Unsupported(TypeError):
    """A value MessagePack cannot represent (the next converter gets a chance)."""


def _default(value: Any) -> Any:
    """What MessagePack packs for a value it has no native form for (applied recursively)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return msgpack.Timestamp.from_datetime(value)
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    model_dump = getattr(value, "model_dump", None)
    if model_dump is not None and callable(model_dump):
        return model_dump(mode="python")
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise _Unsupported(f"cannot encode {type(value).__qualname__} as {MSGPACK_ENCODING}")


class _MsgPackTypeConverter(JSONTypeConverter):
    """The conversions ``value_to_type`` lacks for MessagePack values."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if hint is datetime.date and isinstance(value, str):
            return datetime.date.fromisoformat(value)
        if hint is datetime.time and isinstance(value, str):
            return datetime.time.fromisoformat(value)
        if hint is decimal.Decimal:
            return decimal.Decimal(value)
        if inspect.isclass(hint):
            if issubclass(hint, datetime.datetime) and hint is not datetime.datetime:
                # A stand-in of temporay's shims, or a user subclass: still a datetime.
                return temporalio.converter.value_to_type(datetime.datetime, value, [self])
            if issubclass(hint, enum.Enum) and not issubclass(hint, (int, str)):
                return hint(value)
            validate = getattr(hint, "model_validate", None)
            if validate is not None and callable(validate):
                return validate(value)
        return JSONTypeConverter.Unhandled


class MsgPackPayloadConverter(EncodingPayloadConverter):
    """Encodes values as MessagePack (``binary/msgpack``), decodes them by type hint.

    Args:
        custom_type_converters: Extra ``JSONTypeConverter``s tried before the built-in
            conversions when decoding to a type hint (as for the SDK's JSON converter).
    """

    def __init__(self, custom_type_converters: Sequence[JSONTypeConverter] = ()) -> None:
        self._type_converters: list[JSONTypeConverter] = [
            *custom_type_converters,
            _MsgPackTypeConverter(),
        ]
        self._packer_default: Callable[[Any], Any] = _default

    @property
    def encoding(self) -> str:
        return MSGPACK_ENCODING

    def to_payload(self, value: Any) -> temporalio.api.common.v1.Payload | None:
        try:
            data = msgpack.packb(value, default=self._packer_default, use_bin_type=True)
        except _Unsupported:
            return None
        except (TypeError, ValueError, OverflowError) as err:
            if isinstance(err.__context__, _Unsupported) or "can not serialize" in str(err):
                return None
            raise
        return temporalio.api.common.v1.Payload(
            metadata={"encoding": MSGPACK_ENCODING.encode()}, data=data
        )

    def from_payload(
        self, payload: temporalio.api.common.v1.Payload, type_hint: type | None = None
    ) -> Any:
        try:
            value = msgpack.unpackb(payload.data, raw=False, timestamp=3, strict_map_key=False)
            if type_hint is not None:
                value = temporalio.converter.value_to_type(
                    type_hint, value, self._type_converters
                )
            return value
        except (ValueError, TypeError, msgpack.UnpackException) as err:
            raise RuntimeError(f"Failed decoding {MSGPACK_ENCODING} payload") from err


class MsgPackDefaultPayloadConverter(CompositePayloadConverter):
    """The SDK's default converters with MessagePack in place of JSON for plain values.

    ``None``, ``bytes`` and protobuf messages keep their standard encodings; everything else is
    ``binary/msgpack``, except values MessagePack cannot represent (JSON then). ``json/plain``
    payloads still decode.
    """

    def __init__(self) -> None:
        super().__init__(
            BinaryNullPayloadConverter(),
            BinaryPlainPayloadConverter(),
            JSONProtoPayloadConverter(),
            BinaryProtoPayloadConverter(),
            MsgPackPayloadConverter(),
            JSONPlainPayloadConverter(),
        )


msgpack_data_converter = DataConverter(payload_converter_class=MsgPackDefaultPayloadConverter)
"""A ``DataConverter`` writing ``binary/msgpack`` payloads (the SDK's failure converter and no
codec); give it to ``Client.connect(..., data_converter=...)``."""
