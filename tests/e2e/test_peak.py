"""Peak traffic on the local stack: provisioned environments initialised before traffic,
`lambdaserve capacity` reading and setting them, and a throttle past reserved concurrency
answered as the template maps it (503, Retry-After, problem+json)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from e2e.running import Running, running_stack

from lambdaserve import sample
from lambdaserve.problem import TYPE_BASE

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def peak(sam_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from running_stack(
        sam_build, tmp_path_factory,
        "--parameter", "ColdStartStrategy=provisioned",
        "--parameter", "ProvisionedConcurrency=2",
        "--parameter", "ReservedConcurrency=3",
    )  # fmt: skip


def _inits(running: Running) -> list[str]:
    return [
        m[1]
        for line in running.logs
        if (m := re.search(r"PredictFunction:\d+\] INIT_START pid \d+ env (\d+)", line))
    ]


def _capacity(running: Running, *args: str) -> dict[str, Any]:
    done = running.cli("capacity", "--json", *args)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_provisioned_environments_are_initialised_before_traffic(peak: Running) -> None:
    before = _inits(peak)
    assert {"1", "2"} <= set(before), peak.logs[-20:]
    body = {"instances": sample.generate(3000, 701)[0]}
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: peak.call("/predict", body), range(2)))
    assert [a[0] for a in answers] == [200, 200]
    assert _inits(peak) == before, "no cold start: both environments were ready"


def test_capacity_shows_and_sets_the_live_figures(peak: Running) -> None:
    shown = _capacity(peak)
    assert (shown["strategy"], shown["reserved_concurrency"]) == ("provisioned", 3)
    assert shown["provisioned"] == {
        "requested": 2, "allocated": 2, "available": 2, "status": "READY", "status_reason": None,
    }  # fmt: skip
    raised = _capacity(peak, "--set", "3", "--wait")
    assert (raised["provisioned"]["allocated"], raised["provisioned"]["status"]) == (3, "READY")
    assert "3" in _inits(peak)


def test_past_reserved_concurrency_clients_get_503_with_retry_after(peak: Running) -> None:
    body = {"instances": sample.generate(8000, 702)[0]}  # long enough to overlap
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: peak.call("/predict", body), range(16)))
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) == {200, 503}, statuses
    for status, headers, payload in answers:
        if status == 503:
            assert headers["Retry-After"] == "1"
            assert payload["type"] == TYPE_BASE + "function-unavailable"
    print(f"16 requests, 8 at a time, reserved concurrency 3: {dict(statuses)}")
