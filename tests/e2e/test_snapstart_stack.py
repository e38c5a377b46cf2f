"""SnapStart on the local stack (ColdStartStrategy=snapstart): each published version of the
predict function is initialised once, its snapshot taken before it serves, and every
environment is restored from it; a new version gets its own snapshot before its traffic."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e.running import Running, running_stack

from lambdaserve.bundle import sample

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def snap(sam_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from running_stack(
        sam_build, tmp_path_factory, "--parameter", "ColdStartStrategy=snapstart"
    )


def _snapshots(running: Running) -> list[str]:
    return [
        m[1]
        for line in running.logs
        if (m := re.search(r"PredictFunction:(\d+) snapshot\] taken after INIT", line))
    ]


def test_environments_are_restored_from_the_versions_snapshot(snap: Running) -> None:
    body = {"instances": sample.generate(3000, 901)[0]}
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: snap.call("/predict", body), range(6)))
    assert [status for status, _, _ in answers] == [200] * 6
    colds = [h.get("X-Lambdaserve-Cold-Start", "") for _, h, _ in answers]
    assert all(c.startswith("restore ") for c in colds if c), colds
    live = answers[0][1]["X-Lambdaserve-Function-Version"]
    assert _snapshots(snap).count(live) == 1, "one init per version, however many environments"
    inits = [line for line in snap.logs if f"PredictFunction:{live}] INIT_START" in line]
    assert inits == [], "no environment of a SnapStart version runs init itself"
    restores = [line for line in snap.logs if f"PredictFunction:{live}] RESTORE_START" in line]
    assert len(restores) >= 2


def test_a_new_version_is_snapshotted_before_it_serves(
    snap: Running, second_bundle_session: Path
) -> None:
    published = snap.cli("publish", str(second_bundle_session), "--json")
    assert published.returncode == 0, published.stderr
    done = snap.cli("deploy", "retail-propensity", json.loads(published.stdout)["version"])
    assert done.returncode == 0, done.stderr
    status, headers, body = snap.call("/predict", {"instances": sample.generate(2, 902)[0]})
    assert status == 200, body
    version = headers["X-Lambdaserve-Function-Version"]
    assert version in _snapshots(snap)
    assert not any(f"PredictFunction:{version}] INIT_START" in line for line in snap.logs)
