"""The Black-Friday profile for locust (headless): steady traffic, a ramp to N times the users
in a short window, then a spike; every request is written to a JSON-lines file with what the
local stack's gateway says about it (cold start, environment, Retry-After), for run.py.

Settings from the environment (run.py sets them): LOADTEST_ROWS_FILE, LOADTEST_STEADY_USERS,
LOADTEST_RAMP_X, LOADTEST_SPIKE_X, LOADTEST_WARMUP_S, LOADTEST_STEADY_S, LOADTEST_RAMP_S,
LOADTEST_SPIKE_S, LOADTEST_USER_RPS (what one user sends a second), LOADTEST_API_KEY (API_KEY).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from locust import HttpUser, LoadTestShape, constant_throughput, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
from lambdaserve.bundle import sample

STEADY_USERS = int(os.environ.get("LOADTEST_STEADY_USERS", "2"))
RAMP_X = float(os.environ.get("LOADTEST_RAMP_X", "8"))
SPIKE_X = float(os.environ.get("LOADTEST_SPIKE_X", "12"))
PHASES = [  # (name, seconds); warm-up: steady traffic until its environments exist
    ("warmup", float(os.environ.get("LOADTEST_WARMUP_S", "5"))),
    ("steady", float(os.environ.get("LOADTEST_STEADY_S", "20"))),
    ("ramp", float(os.environ.get("LOADTEST_RAMP_S", "15"))),
    ("spike", float(os.environ.get("LOADTEST_SPIKE_S", "10"))),
]
RECORDS, _ = sample.generate(2000, 811)
ROWS_PER_REQUEST = 5
_rows = open(os.environ.get("LOADTEST_ROWS_FILE", "loadtest-rows.jsonl"), "w")  # noqa: SIM115


def phase_at(elapsed: float) -> tuple[str, float] | None:
    """The phase at `elapsed` seconds into the run and how far into it (0-1); None: done."""
    start = 0.0
    for name, seconds in PHASES:
        if elapsed < start + seconds:
            return name, (elapsed - start) / seconds
        start += seconds
    return None


class BlackFriday(LoadTestShape):
    """Users over time: steady (after a warm-up at the same level), a linear ramp to RAMP_X
    times the users, then a sudden spike to SPIKE_X times (all of them at once)."""

    def tick(self) -> tuple[int, float] | None:
        now = phase_at(self.get_run_time())
        if now is None:
            return None
        name, progress = now
        if name in ("warmup", "steady"):
            return STEADY_USERS, STEADY_USERS
        if name == "ramp":
            users = STEADY_USERS + (RAMP_X - 1) * STEADY_USERS * progress
            return max(STEADY_USERS, round(users)), STEADY_USERS * RAMP_X
        spike = round(STEADY_USERS * SPIKE_X)
        return spike, spike  # every spike user at once


class Shopper(HttpUser):
    """A storefront asking for propensities of a few customers, USER_RPS times a second."""

    wait_time = constant_throughput(float(os.environ.get("LOADTEST_USER_RPS", "4")))

    @task
    def predict(self) -> None:
        start = random.randrange(0, len(RECORDS) - ROWS_PER_REQUEST)  # nosec B311 - a load mix
        body = {"instances": RECORDS[start : start + ROWS_PER_REQUEST]}
        headers = (
            {"x-api-key": os.environ["LOADTEST_API_KEY"]}
            if "LOADTEST_API_KEY" in os.environ
            else {}
        )
        with self.client.post(
            "/predict", json=body, headers=headers, catch_response=True
        ) as answer:
            if answer.status_code != 200:
                answer.failure(f"HTTP {answer.status_code}")


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    response: Any = None,
    exception: Any = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    headers = getattr(response, "headers", None) or {}
    row = {
        "start": start_time if start_time is not None else time.time() - response_time / 1000,
        "ms": response_time,
        "status": (getattr(response, "status_code", 0) or 0) if response is not None else 0,
        "cold": headers.get("X-Lambdaserve-Cold-Start", ""),
        "environment": headers.get("X-Lambdaserve-Environment", ""),
        "retry_after": headers.get("Retry-After", ""),
        "error": str(exception) if exception is not None and response is None else "",
    }
    _rows.write(json.dumps(row) + "\n")


@events.test_start.add_listener
def _started(**_: Any) -> None:
    _rows.write(json.dumps({"test_start": time.time()}) + "\n")


@events.quitting.add_listener
def _done(**_: Any) -> None:
    _rows.flush()
