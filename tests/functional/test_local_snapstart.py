"""SnapStart on the local stack: a version is initialised once and its environments are
restored from that state (forks of it) with the runtime's after-restore hooks run, so what is
not safe to snapshot shows up here as on Lambda: random state made at init, not reseeded, is
the same in every restored environment."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT

from lambdaserve.local.pool import WorkerPool
from lambdaserve.local.snapshot import Snapshots
from lambdaserve.local.worker import VersionConfig

# A function drawing from Python's and numpy's generators at init and per request, and
# opening a file at init (a stand-in for a connection) that every restore then shares.
HANDLER = """
import os, random
import numpy as np
if os.environ.get("RESEED") == "1":
    from lambdaserve.shared.snapstart import register_after_restore
    register_after_restore()
AT_INIT = random.random()
np.random.seed()  # the global generator made at init (a model seeding it, say)
SHARED = open(os.environ["SHARED_FILE"], "a")

def handler(event, context):
    SHARED.write(f"{os.getpid()}\\n")
    SHARED.flush()
    return {"init": AT_INIT, "draw": random.random(), "numpy": float(np.random.random()),
            "pid": os.getpid(), "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE")}
"""


@pytest.fixture
def function(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    layer = tmp_path / "layer"
    layer.mkdir()
    (layer / "python").symlink_to(ROOT / "src")  # lambdaserve, as the serving layer holds it
    numpy = Path(str(__import__("numpy").__file__)).parent
    (tmp_path / "numpy-layer" / "python").mkdir(parents=True)
    (tmp_path / "numpy-layer" / "python" / "numpy").symlink_to(numpy)
    if (numpy.parent / "numpy.libs").exists():
        (tmp_path / "numpy-layer" / "python" / "numpy.libs").symlink_to(numpy.parent / "numpy.libs")
    return tmp_path


def _pool(function: Path, reseed: bool) -> tuple[WorkerPool, Snapshots]:
    snapshots = Snapshots(lambda name: name == "fn")

    def configure(name: str, version: str) -> VersionConfig:
        env = {"RESEED": "1" if reseed else "0", "SHARED_FILE": str(function / "shared.log")}
        layers = (function / "layer", function / "numpy-layer")
        return VersionConfig(name, version, "app.handler", function / "code", layers, env)

    pool = WorkerPool(configure, function / "state", log=lambda _: None, limit=lambda _: 4,
                      worker=snapshots.worker)  # fmt: skip
    return pool, snapshots


@pytest.fixture
def restored(function: Path) -> Iterator[list[dict[str, object]]]:
    """The first answers of three environments of one version, held open together."""
    yield from _three_environments(function, reseed=False)


def _three_environments(function: Path, reseed: bool) -> Iterator[list[dict[str, object]]]:
    pool, snapshots = _pool(function, reseed)
    try:
        with pool.lease("fn", "1") as a, pool.lease("fn", "1") as b, pool.lease("fn", "1") as c:
            replies = [w.invoke({}) for w in (a, b, c)]
        assert all(r.error is None and r.restored for r in replies), replies
        yield [r.response for r in replies]
    finally:
        pool.stop_all()
        snapshots.stop_all()


def test_environments_are_restored_from_one_init(
    function: Path, restored: list[dict[str, object]]
) -> None:
    assert len({r["pid"] for r in restored}) == 3
    assert len({r["init"] for r in restored}) == 1, "one init, shared by every restore"
    assert {r["init_type"] for r in restored} == {"snap-start"}
    # The file opened at init is one open file description in all three: their writes
    # interleave into it, as a connection opened at init would be shared after a restore.
    pids = (function / "shared.log").read_text().split()
    assert sorted(map(int, pids)) == sorted(int(str(r["pid"])) for r in restored)


def test_an_rng_not_reseeded_repeats_in_every_restored_environment(
    restored: list[dict[str, object]],
) -> None:
    assert len({r["draw"] for r in restored}) == 1
    assert len({r["numpy"] for r in restored}) == 1


def test_the_after_restore_hook_gives_each_environment_its_own_draws(function: Path) -> None:
    for replies in _three_environments(function, reseed=True):
        assert len({r["init"] for r in replies}) == 1
        assert len({r["draw"] for r in replies}) == 3
        assert len({r["numpy"] for r in replies}) == 3


def _wait_gone(pid: int) -> None:
    for _ in range(500):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} still runs")


def test_a_restored_environment_that_dies_is_restored_again(function: Path) -> None:
    pool, snapshots = _pool(function, reseed=True)
    try:
        with pool.lease("fn", "1") as worker:
            first = worker.invoke({})
            os.kill(int(first.response["pid"]), 9)
        _wait_gone(int(first.response["pid"]))
        with pool.lease("fn", "1") as worker:
            again = worker.invoke({})
        assert again.restored
        assert again.response["pid"] != first.response["pid"]
        assert again.response["init"] == first.response["init"]  # the same snapshot
    finally:
        pool.stop_all()
        snapshots.stop_all()
