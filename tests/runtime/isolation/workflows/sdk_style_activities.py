"""Activities and payload types of the sdk_style workflows (imported through
imports_passed_through(), as the SDK's samples do)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity


@dataclass
class GreetingInput:
    greeting: str
    name: str


@activity.defn
async def compose_greeting(input: GreetingInput) -> str:
    return f"{input.greeting}, {input.name}!"
