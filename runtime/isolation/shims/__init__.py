"""Deterministic stand-ins for ``time``, ``datetime``, ``random``, ``uuid``, ``os.urandom``,
``secrets`` and ``threading``, for workflow code written for plain Python.

:mod:`.determinism` is the front of this package: it says which real object each stand-in
replaces, and it is the only module the rest of the isolation asks. The stand-ins themselves are
in :mod:`.clock` (the workflow's clock), :mod:`.random` (the run's own random stream) and
:mod:`.blocking` (refusals of ``time.sleep`` and thread starts); they answer from the run's state
(:mod:`temporay.runtime.isolation.run_state`), which sits below them.
"""
