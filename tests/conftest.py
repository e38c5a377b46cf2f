"""Shared fixtures: the sample bundle (trained once per session), events, paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT, FakeLambdaContext

from lambdaserve.bundle import sample


@pytest.fixture(scope="session", autouse=True)
def _offline_aws() -> Iterator[None]:
    """A region and fake credentials, and no endpoint or stack from the shell, so no test can
    ever reach a real AWS account or a running local stack."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }.items():
            mp.setenv(key, value)
        # What the README tells users to export: a developer who did must not run the tests
        # against a live endpoint, a real stack or their own registry.
        for key in list(os.environ):
            if key == "AWS_PROFILE" or key.startswith(("AWS_ENDPOINT_URL", "LAMBDASERVE_")):
                mp.delenv(key, raising=False)
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


@pytest.fixture(scope="session")
def quiet_bundle_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quiet failure: the sample model trained on labels that hide most buyers. It answers
    as fast and as cleanly as the good one, and predicts "no purchase" for nearly everyone."""
    import numpy as np

    from lambdaserve.bundle.make import make_bundle
    from lambdaserve.manifest import parse_features
    from lambdaserve.serving.schema import RequestParser

    records, labels = sample.generate(20_000, 9)
    hidden = labels & (np.random.default_rng(1).random(len(labels)) < 0.15)
    parser = RequestParser(parse_features(sample.SPEC["features"]), max_rows=len(records))
    matrix = parser.parse({"instances": records})
    model = sample.pipeline(9).fit(matrix[:16_000], hidden[:16_000])
    out = tmp_path_factory.mktemp("quiet-bundle")
    make_bundle(
        model, name=sample.NAME, spec=sample.SPEC, sample_rows=records[16_000:], out_dir=out
    )
    return out


@pytest.fixture(scope="session")
def onnx_bundle_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's ONNX recipe (categories as codes), proven and bundled for ONNX Runtime."""
    out = tmp_path_factory.mktemp("onnx-bundle")
    sample.train(out, rows=8000, seed=12, engine="onnx")
    return out


@pytest.fixture
def onnx_bundle(onnx_bundle_session: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(onnx_bundle_session, tmp_path / "onnx"))


@pytest.fixture
def second_bundle(second_bundle_session: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(second_bundle_session, tmp_path / "second"))


@pytest.fixture(scope="session")
def sam_build() -> Path:
    """Run `sam build` for real (cached between runs) and return the build folder."""
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [f"{venv_bin}/sam", "build", "--cached"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return ROOT / ".aws-sam" / "build"


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """The one fake of Lambda's context object."""
    return FakeLambdaContext()
