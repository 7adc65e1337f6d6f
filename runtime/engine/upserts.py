"""The ``workflow.*`` calls on memo and search attributes: reading the memo (decoded once), and
upserting either, which issues the command and updates the run's ``workflow.info()`` in place,
as the SDK does."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, cast

import temporalio.api.common.v1
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.workflow._event_groups import _capture_event_group_markers

from temporay.runtime.engine.environment import RunEnvironment


class MemoAndSearchAttributes(temporalio.workflow._Runtime):
    """The memo and search-attribute part of the run's ``workflow._Runtime``
    (``WorkflowContext`` is made of it and its siblings; it declares what of the context it
    reads)."""

    __slots__ = ()

    env: RunEnvironment
    info: temporalio.workflow.Info
    payload_converter: temporalio.converter.PayloadConverter
    untyped_memo: MutableMapping[str, Any] | None

    def workflow_memo(self) -> Mapping[str, Any]:
        if self.untyped_memo is None:
            self.untyped_memo = {
                key: self.payload_converter.from_payload(value)
                for key, value in self.info.raw_memo.items()
            }
        return self.untyped_memo

    def workflow_memo_value(self, key: str, default: Any, *, type_hint: type | None) -> Any:
        payload = self.info.raw_memo.get(key)
        if not payload:
            if default is temporalio.common._arg_unset:
                raise KeyError(f"Memo does not have a value for key {key}")
            return default
        return self.payload_converter.from_payload(payload, type_hint)  # type: ignore[arg-type]

    def workflow_upsert_memo(
        self,
        updates: Mapping[str, Any],
        *,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        # Convert before adding the command: a conversion error must leave no partial command.
        upserts: dict[str, temporalio.api.common.v1.Payload] = {}
        removals: list[str] = []
        for key, value in updates.items():
            if value is None:
                # Removals of absent keys still go to history, as the SDK sends them.
                removals.append(key)
            else:
                upserts[key] = self.payload_converter.to_payload(value)
        if not upserts and not removals:
            return
        markers = _capture_event_group_markers(event_groups)
        command = self.env.add_command()
        command.event_group_markers.extend(markers)
        fields = command.modify_workflow_properties.upserted_memo.fields
        raw_memo = cast(MutableMapping[str, temporalio.api.common.v1.Payload], self.info.raw_memo)
        for key, payload in upserts.items():
            fields[key].CopyFrom(payload)
            raw_memo[key] = payload
        if removals:
            null = self.payload_converter.to_payload(None)
            for key in removals:
                fields[key].CopyFrom(null)
                raw_memo.pop(key, None)
        if self.untyped_memo is not None:
            for key, payload in upserts.items():
                self.untyped_memo[key] = self.payload_converter.from_payload(payload)
            for key in removals:
                self.untyped_memo.pop(key, None)

    def workflow_upsert_search_attributes(
        self,
        attributes: temporalio.common.SearchAttributes
        | Sequence[temporalio.common.SearchAttributeUpdate],
        *,
        event_groups: Sequence[temporalio.workflow.EventGroup] | None = None,
    ) -> None:
        markers = _capture_event_group_markers(event_groups)
        command = self.env.add_command()
        command.event_group_markers.extend(markers)
        fields = command.upsert_workflow_search_attributes.search_attributes.indexed_fields
        untyped = cast(
            MutableMapping[str, temporalio.common.SearchAttributeValues],
            self.info.search_attributes,
        )
        typed = cast(
            list[temporalio.common.SearchAttributePair],
            self.info.typed_search_attributes.search_attributes,
        )

        def index_of(name: str) -> int | None:
            return next((i for i, pair in enumerate(typed) if pair.key.name == name), None)

        if isinstance(attributes, Mapping):
            # Deprecated untyped form: values are kept exactly as given (an empty list stays an
            # empty list, as on the server); typed view updated on a best-effort guess.
            untyped.update(attributes)
            for name, values in attributes.items():
                fields[name].CopyFrom(temporalio.converter.encode_search_attribute_values(values))
                index = index_of(name)
                if not values:
                    if index is not None:
                        del typed[index]
                    continue
                key = temporalio.common.SearchAttributeKey._guess_from_untyped_values(name, values)
                if not key:
                    continue
                value: Any = values
                if (
                    key.indexed_value_type
                    != temporalio.common.SearchAttributeIndexedValueType.KEYWORD_LIST
                ):
                    if len(values) != 1:
                        continue
                    value = values[0]
                pair = temporalio.common.SearchAttributePair(key, value)
                if index is None:
                    typed.append(pair)
                else:
                    typed[index] = pair
            return
        for update in attributes:
            name = update.key.name
            fields[name].CopyFrom(
                temporalio.converter.encode_typed_search_attribute_value(update.key, update.value)
            )
            index = index_of(name)
            if update.value is None:
                if index is not None:
                    del typed[index]
                untyped[name] = cast(list[str], [])
                continue
            pair = temporalio.common.SearchAttributePair(update.key, update.value)
            if index is None:
                typed.append(pair)
            else:
                typed[index] = pair
            untyped[name] = (
                list(update.value)
                if update.key.indexed_value_type
                == temporalio.common.SearchAttributeIndexedValueType.KEYWORD_LIST
                else [update.value]
            )
