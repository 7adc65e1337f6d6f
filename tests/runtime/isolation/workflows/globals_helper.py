"""A user module imported by a workflow module: its state is per run too."""

HELPER_COUNTER = 0


def bump_helper() -> int:
    global HELPER_COUNTER
    HELPER_COUNTER += 1
    return HELPER_COUNTER


def bump_via_module() -> int:
    # An import executed by workflow code resolves to the run's copy of the module.
    from tests.runtime.isolation.workflows import globals_helper as me

    me.HELPER_COUNTER += 1
    return me.HELPER_COUNTER
