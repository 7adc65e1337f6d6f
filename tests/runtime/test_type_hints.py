"""The shard's memo of resolved class type hints (runtime/type_hints.py)."""

from __future__ import annotations

import dataclasses
import gc
import sys
import types
import typing
import weakref
from typing import Any

import pytest
import temporalio.converter
import temporalio.converter._payload_converter as sdk_payload_converter

from temporay.runtime import type_hints


@dataclasses.dataclass
class Line:
    sku: str
    quantity: int


@dataclasses.dataclass
class Basket:
    owner: str
    lines: list[Line]
    note: str | None = None


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every object ``typing.get_type_hints`` really resolves, in order."""
    calls: list[object] = []
    real = typing.get_type_hints

    def counting(obj: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(typing, "get_type_hints", counting)
    return calls


def test_a_class_is_resolved_once_and_each_caller_gets_its_own_dict(counted: list[object]) -> None:
    first = type_hints.memoised_get_type_hints(Basket)
    assert first == {"owner": str, "lines": list[Line], "note": str | None}
    first["owner"] = int  # a caller changing its dict changes nobody else's
    second = type_hints.memoised_get_type_hints(Basket)
    assert second["owner"] is str
    assert second is not first
    assert counted.count(Basket) == 1


def test_other_calls_go_to_typing_unchanged(counted: list[object]) -> None:
    def annotated(x: int) -> str:
        return str(x)

    for _ in range(2):
        assert type_hints.memoised_get_type_hints(annotated) == {"x": int, "return": str}
        assert type_hints.memoised_get_type_hints(Line, include_extras=True) == {
            "sku": str,
            "quantity": int,
        }
    assert counted == [annotated, Line, annotated, Line]


def test_a_class_whose_hints_fail_is_not_remembered() -> None:
    module = types.ModuleType("forward_ref_module")
    sys.modules[module.__name__] = module
    try:
        exec(  # a module whose dataclass refers to a class it defines later
            "from __future__ import annotations\n"
            "import dataclasses\n"
            "@dataclasses.dataclass\n"
            "class Early:\n"
            "    later: Later\n",
            module.__dict__,
        )
        with pytest.raises(NameError, match="Later"):
            type_hints.memoised_get_type_hints(module.Early)
        exec("class Later: pass", module.__dict__)
        assert type_hints.memoised_get_type_hints(module.Early) == {"later": module.Later}
    finally:
        del sys.modules[module.__name__]


def test_classes_are_held_weakly() -> None:
    def make() -> type:
        @dataclasses.dataclass
        class Passing:
            value: int

        return Passing

    cls = make()
    hints = type_hints.memoised_get_type_hints(cls)
    assert len(type_hints._hints) >= 1
    gone = weakref.ref(cls)
    del cls
    gc.collect()
    assert hints == {"value": int}
    assert gone() is None  # the memo did not keep it alive


def test_installed_sdk_converter_decodes_as_before(
    monkeypatch: pytest.MonkeyPatch, counted: list[object]
) -> None:
    monkeypatch.setattr(sdk_payload_converter, "get_type_hints", typing.get_type_hints)
    converter = temporalio.converter.default().payload_converter
    basket = Basket("ann", [Line("tea", 2), Line("jam", 1)], note=None)
    payloads = converter.to_payloads([basket])
    before = converter.from_payloads(payloads, [Basket])
    resolved_without = len(counted)
    assert not type_hints.installed()
    type_hints.install()  # undone by monkeypatch after the test
    assert type_hints.installed()
    counted.clear()
    for _ in range(3):
        assert converter.from_payloads(payloads, [Basket]) == before == [basket]
    # Without the memo every decode resolves Basket and each Line; with it, at most once each.
    assert resolved_without >= 3
    assert counted.count(Basket) <= 1 and counted.count(Line) <= 1
