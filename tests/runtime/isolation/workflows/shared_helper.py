"""A module workflows import inside imports_passed_through(): shared, never copied."""

TOUCHED = 0


def touch() -> int:
    global TOUCHED
    TOUCHED += 1
    return TOUCHED

REGISTRY: dict[str, int] = {}
