"""Execution environments per version, as Lambda scales them, on workers that start nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lambdaserve.local.pool import ThrottledError, WorkerPool
from lambdaserve.local.worker import VersionConfig


class FakeWorker:
    def __init__(self, config: VersionConfig, *_: Any) -> None:
        self.config, self.alive, self.environment, self.stopped = config, True, 1, False
        self._process = None

    @property
    def label(self) -> str:
        return f"{self.config.function}:{self.config.version}"

    def stop(self) -> None:
        self.stopped, self.alive = True, False


def pool(tmp_path: Path, limit: int = 10) -> Any:
    """A pool whose environments are FakeWorkers (typed Any: the tests read their marks)."""

    def configure(function: str, version: str) -> VersionConfig:
        return VersionConfig(function, version, "app.handler", tmp_path, (), {})

    return WorkerPool(configure, tmp_path, lambda _: None, None, lambda _: limit, FakeWorker)  # type: ignore[arg-type]


def test_concurrent_requests_get_environments_and_idle_ones_are_reused(tmp_path: Path) -> None:
    envs = pool(tmp_path)
    with envs.lease("f", "1") as first, envs.lease("f", "1") as second:
        assert first is not second
        assert (first.environment, second.environment) == (1, 2)
    with envs.lease("f", "1") as again:
        assert again in (first, second)
    assert envs.environments("f", "1") == 2


def test_beyond_the_limit_a_request_is_throttled_across_the_functions_versions(
    tmp_path: Path,
) -> None:
    envs = pool(tmp_path, limit=2)
    with envs.lease("f", "1"), envs.lease("f", "2"):
        with pytest.raises(ThrottledError), envs.lease("f", "1"):
            pass
        with envs.lease("g", "1"):  # another function has its own limit
            pass
    with envs.lease("f", "1"):  # one freed: served again
        pass


def test_a_retired_version_stops_idle_environments_now_and_busy_ones_after_their_request(
    tmp_path: Path,
) -> None:
    envs = pool(tmp_path)
    with envs.lease("f", "1") as idle:
        pass
    with envs.lease("f", "1") as busy:
        assert busy is idle  # reused
        with envs.lease("f", "1") as other:
            pass
        envs.retire("f", keep={"2"})
        assert other.stopped
        assert not busy.stopped  # its request is still running
    assert busy.stopped
    assert envs.environments("f", "1") == 0
