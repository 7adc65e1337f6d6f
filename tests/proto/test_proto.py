"""The committed generated code matches what proto/regenerate.py produces from the .proto files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from temporay.proto import hosting as pb

PROTO_DIR = Path(__file__).resolve().parents[2] / "proto"


def test_generated_code_is_current(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("regenerate", PROTO_DIR / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.regenerate(tmp_path)
    assert generated, "protoc produced nothing"
    for path in generated:
        committed = PROTO_DIR / path.name
        assert committed.exists(), f"{path.name} is not committed; run python proto/regenerate.py"
        assert committed.read_text() == path.read_text(), (
            f"{path.name} is stale; run python proto/regenerate.py"
        )


def test_messages_round_trip() -> None:
    batch = pb.ActivationBatch()
    item = batch.items.add(activation=b"\x01\x02", budget_ms=1500)
    item.key.router_id, item.key.run_id, item.key.incarnation = "r", "run", 7
    item.spec.template_id = "t"
    batch.dispose.add(router_id="r", run_id="old", incarnation=3)
    again = pb.ActivationBatch.FromString(batch.SerializeToString())
    assert again == batch
    assert again.items[0].key.incarnation == 7 and again.dispose[0].run_id == "old"
