"""State of big_module's unrelated workflows, in a module of its own (bound at module level)."""

COUNT = 0


def bump() -> int:
    global COUNT
    COUNT += 1
    return COUNT
