"""A workflow written for plain Python: it reads the clock, draws random numbers and UUIDs the
usual way. Under temporay's shims these are deterministic; under the SDK's sandbox they are
refused."""

from __future__ import annotations

import datetime
import os
import random
import secrets
import time
import uuid
from datetime import date, timedelta
from datetime import datetime as dt
from time import time as now_seconds
from typing import Any

from temporalio import activity, workflow


@activity.defn
async def record(values: dict[str, str]) -> str:
    return values["key"]


def sample() -> dict[str, str]:
    """Every shimmed source, in one dict of strings."""
    values = {
        "time": repr(time.time()),
        "time_ns": str(time.time_ns()),
        "from_time_import": repr(now_seconds()),
        "monotonic": repr(time.monotonic()),
        "perf_counter": repr(time.perf_counter()),
        "datetime_now": dt.now().isoformat(),
        "datetime_now_utc": dt.now(datetime.UTC).isoformat(),
        "datetime_module_now": datetime.datetime.now().isoformat(),
        "utcnow": dt.utcnow().isoformat(),
        "date_today": date.today().isoformat(),
        "random": repr(random.random()),
        "randint": str(random.randint(0, 10**9)),
        "choice": random.choice("abcdefghij"),
        "uuid4": str(uuid.uuid4()),
        "uuid1": str(uuid.uuid1()),
        "urandom": os.urandom(8).hex(),
        "token_hex": secrets.token_hex(8),
        "unseeded_random": repr(random.Random().random()),
    }
    values["key"] = "|".join(values[k] for k in sorted(values))
    return values


@workflow.defn
class ShimsWorkflow:
    """Samples the shims, records them in an activity's id and input (history), waits for a
    signal (a worker restart can happen here), then samples again."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self) -> dict[str, Any]:
        before = sample()
        checks = {
            "time_is_workflow_time": float(before["time"]) == workflow.time(),
            "now_is_workflow_now": dt.now(datetime.UTC) == workflow.now(),
            "naive_now_is_utc": dt.now() == workflow.now().replace(tzinfo=None),
            "isinstance_real": isinstance(workflow.now(), dt),
        }
        # The shims draw from their own stream: workflow.uuid4() is still the first value of
        # workflow.random() seeded with the run's seed, as if nothing had been drawn before.
        seeded = random.Random(workflow.random_seed())
        expected_uuid = uuid.UUID(bytes=seeded.getrandbits(128).to_bytes(16, "big"), version=4)
        checks["workflow_uuid4_unshifted"] = workflow.uuid4() == expected_uuid
        # The sample is the activity id too: replay with different values is a nondeterminism
        # error reported by sdk-core, not just a different result.
        await workflow.execute_activity(
            record,
            before,
            activity_id="record-" + "-".join(
                before[k] for k in ("time_ns", "uuid4", "randint", "urandom", "date_today")
            ),
            start_to_close_timeout=timedelta(seconds=30),
        )
        await workflow.wait_condition(lambda: self.go)
        after = sample()
        return {"before": before, "after": after, "checks": checks}


@workflow.defn
class StrictShimsWorkflow:
    """Calls time.time(); in strict mode that raises RestrictedWorkflowAccessError."""

    @workflow.run
    async def run(self) -> str:
        try:
            time.time()
        except Exception as err:
            return f"{type(err).__name__}: {err}"
        return "allowed"


@workflow.defn
class UnrestrictedWorkflow:
    """Inside sandbox_unrestricted() the real functions answer."""

    @workflow.run
    async def run(self) -> dict[str, bool]:
        with workflow.unsafe.sandbox_unrestricted():
            real = time.time()
        return {"real_clock": real != workflow.time()}


@workflow.defn
class ClockScopeWorkflow:
    """The shims answer workflow code only: a log record made on the workflow's own thread, and a
    thread started from workflow code, read the real clock."""

    @workflow.run
    async def run(self) -> dict[str, bool]:
        import logging
        import threading as real_threading_for_test  # the stand-in: only start() is guarded

        workflow_time = workflow.time()
        record = logging.getLogger("temporay.test").makeRecord(
            "temporay.test", logging.INFO, __file__, 1, "x", (), None
        )
        from_thread: list[float] = []
        with workflow.unsafe.sandbox_unrestricted():
            thread = real_threading_for_test.Thread(target=lambda: from_thread.append(time.time()))
            thread.start()
            thread.join()
        return {
            "shim_is_workflow_time": time.time() == workflow_time,
            "log_record_real": record.created != workflow_time,
            "other_thread_real": from_thread[0] != workflow_time,
        }


@workflow.defn
class QueryDrawWorkflow:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def clock(self) -> float:
        return time.time()

    @workflow.query
    def draw(self) -> float:
        return random.random()
