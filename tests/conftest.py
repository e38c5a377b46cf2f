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
