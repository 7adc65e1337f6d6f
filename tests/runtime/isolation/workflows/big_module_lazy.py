"""Imported by big_module.ImportingWorkflow inside its run method only (never at module level)."""

COUNT = 0


def bump() -> int:
    global COUNT
    COUNT += 1
    return COUNT
