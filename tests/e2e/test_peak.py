"""Peak traffic on the local stack: provisioned environments initialised before traffic,
`lambdaserve capacity` reading and setting them, and a throttle past reserved concurrency
answered as the template maps it (503, Retry-After, problem+json)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from e2e.running import Running, running_stack
from support import ROOT

from lambdaserve.bundle import sample
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


def test_the_load_test_runs_the_black_friday_profile(peak: Running, tmp_path: Path) -> None:
    """`make loadtest`'s runner, small: every phase reported, every throttle with Retry-After,
    no other 5xx, and the plot drawn."""
    out = tmp_path / "loadtest"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadtest" / "run.py"), "--url", peak.url,
         "--strategies", "provisioned", "--warmup", "2", "--steady", "3", "--ramp", "3",
         "--spike", "3", "--users", "1", "--out", str(out)],
        env={**os.environ, "LOADTEST_API_KEY": peak.env["LAMBDASERVE_API_KEY"]},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "loadtest_results.json").read_text())
    phases = results["strategies"]["provisioned"]["phases"]
    assert list(phases) == ["warmup", "steady", "ramp", "spike"]
    for name, phase in phases.items():
        assert phase["requests"] > 0, name
        assert phase["throttles_without_retry_after"] == 0, name
        assert (phase["errors_5xx"], phase["connection_errors"]) == (0, 0), name
    assert results["figures"]["provisioned"]["unmapped_5xx"] == 0
    assert (out / "loadtest_results.png").stat().st_size > 10_000
    assert "| provisioned | spike |" in (out / "loadtest_results.md").read_text()
    assert results["machine"]  # stamped with where it ran, for the performance page


def _started(running: Running, version: str) -> int:
    return sum(f"PredictFunction:{version}] INIT_START" in line for line in running.logs)


def test_a_canary_in_provisioned_mode_is_provisioned_before_it_serves(
    peak: Running, second_bundle_session: Path
) -> None:
    published = peak.cli("publish", str(second_bundle_session), "--json")
    assert published.returncode == 0, published.stderr
    canary = peak.cli("deploy", "retail-propensity", json.loads(published.stdout)["version"],
                      "--canary", "10")  # fmt: skip
    assert canary.returncode == 0, canary.stderr
    said = canary.stdout + canary.stderr
    version = re.search(r"provisioning 1 environments of version (\d+) before it serves", said)
    assert version, said
    assert _started(peak, version[1]) >= 1
    assert "provisioned concurrency is ready for its new split" in said
    # Lambda refuses to change an alias's provisioned concurrency while it has weights.
    refused = peak.cli("capacity", "--set", "2")
    assert refused.returncode == 5
    assert "canary is in progress" in refused.stderr
    promoted = peak.cli("promote")
    assert promoted.returncode == 0, promoted.stderr
    said = promoted.stderr
    assert f"provisioning 3 environments of version {version[1]} before it serves" in said
    assert _started(peak, version[1]) >= 3  # all its share, before all the traffic
    shown = _capacity(peak)["provisioned"]
    assert (shown["requested"], shown["status"]) == (3, "READY")
    back = peak.cli("rollback")
    assert back.returncode == 0, back.stderr
    assert "provisioning" not in back.stderr  # a rollback moves at once
