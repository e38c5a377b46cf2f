"""Shared fixtures: the sample bundle (trained once per session), events, paths."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdaserve import sample


@pytest.fixture(scope="session", autouse=True)
def _offline_aws() -> Iterator[None]:
    """A region and fake credentials, so no test can ever reach a real AWS account."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def sample_bundle_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample-bundle")
    sample.train(out)
    return out


@pytest.fixture
def sample_bundle(sample_bundle_session: Path, tmp_path: Path) -> Path:
    """A private copy of the sample bundle, free to tamper with."""
    return Path(shutil.copytree(sample_bundle_session, tmp_path / "bundle"))


@pytest.fixture(scope="session")
def second_bundle_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another model of the same name (another seed): a new version to deploy."""
    out = tmp_path_factory.mktemp("second-bundle")
    sample.train(out, rows=8000, seed=8)
    return out


@pytest.fixture
def second_bundle(second_bundle_session: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(second_bundle_session, tmp_path / "second"))
