"""Shadow deploys on the local stack over real HTTP: live mirrors a share of its answered
requests through its log group's subscription to the shadow version, which scores them; the
report compares the two on the same rows. No client ever sees a shadow's answer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.running import Running, running_stack

from lambdaserve.bundle import sample

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def stack(sam_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from running_stack(sam_build, tmp_path_factory)


def _ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def _publish(stack: Running, bundle: Path) -> str:
    return str(_ok(stack.cli("publish", str(bundle), "--json"))["version"])


def _traffic_until_compared(stack: Running, rows: int, seed: int) -> dict[str, Any]:
    """Requests of 20 rows (and refused ones, never mirrored) until the report has `rows`."""
    records, _ = sample.generate(4000, seed)
    live = _ok(stack.cli("status", "--json"))["versions"][0]["version"]
    deadline, i = time.monotonic() + 120, 0
    while True:
        for _ in range(10):
            chunk = records[(i * 20) % 3980 : (i * 20) % 3980 + 20]
            status, headers, _ = stack.call("/predict", {"instances": chunk})
            assert status == 200
            assert headers.get("X-Lambdaserve-Function-Version", live) == live
            bad = stack.call("/predict", {"instances": [{**chunk[0], "recency_days": "soon"}]})
            assert bad[0] == 422
            i += 1
        done = stack.cli("shadow", "report", "--min-rows", str(rows), "--json")
        report = json.loads(done.stdout)
        if report["rows"] >= rows or time.monotonic() > deadline:
            assert report["rows"] >= rows, report
            assert report["refused_rows"] == 0  # the refused requests were never mirrored
            return {**report, "exit": done.returncode}


def test_a_near_identical_shadow_agrees_and_becomes_a_canary(
    stack: Running, tmp_path: Path
) -> None:
    retrain = tmp_path / "retrain"
    sample.train(retrain)  # the same recipe and data as the stack's sample: the same answers
    version = _publish(stack, retrain)
    before = _ok(stack.cli("status", "--json"))["versions"]
    started = _ok(stack.cli("shadow", "start", "retail-propensity", version, "--percent", "50",
                            "--json"))  # fmt: skip
    assert started["state"] == "running"
    report = _traffic_until_compared(stack, 300, 71)
    assert report["verdict"] == "agree", report
    assert report["agreement"] >= 0.99
    assert report["exit"] == 0
    assert report["latency_ms"]["shadow"]["p50"] > 0
    # A share, not all: 20 rounds of 10 requests of 20 rows, half of them mirrored.
    assert report["requests"] < 0.8 * (report["rows"] / 20) / 0.5
    assert _ok(stack.cli("status", "--json"))["versions"] == before  # the alias never moved
    page = tmp_path / "shadow.html"
    assert stack.cli("shadow", "report", "--out", str(page)).returncode == 0
    assert "agree" in page.read_text(encoding="utf-8")

    promoted = stack.cli("shadow", "promote", "--canary", "10", "--json")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    status = _ok(stack.cli("status", "--json"))
    assert [v["weight"] for v in status["versions"]] == [0.9, 0.1]
    assert status["versions"][1]["model"]["version"] == version
    assert _ok(stack.cli("shadow", "status", "--json"))["state"] == "stopped"
    assert stack.cli("rollback", "--reason", "test done").returncode == 0


def test_a_shifted_shadow_is_reported_as_disagreeing(
    stack: Running, quiet_bundle_session: Path
) -> None:
    version = _publish(stack, quiet_bundle_session)
    _ok(stack.cli("shadow", "start", "retail-propensity", version, "--percent", "100", "--json"))
    report = _traffic_until_compared(stack, 300, 72)
    assert report["verdict"] == "disagree", report
    assert report["agreement"] < 0.99
    assert report["exit"] == 7
    mix = report["class_mix"]
    assert mix["1"]["shadow"] < mix["1"]["live"]  # it hides buyers
    assert _ok(stack.cli("shadow", "stop", "--json"))["state"] == "stopped"
    print(f"quiet model as a shadow: agreement {report['agreement']:.3f}, mix {mix}")
