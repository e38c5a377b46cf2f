"""Engines on the local stack: a bundle for ONNX Runtime deploys onto the same function, whose
new version has the ONNX runtime layer instead of scikit-learn's; the API answers the same
shapes; a rollback to the scikit-learn version is one alias switch; a canary across engines
serves both at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.running import Running, running_stack

from lambdaserve.bundle import sample

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def engines(sam_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from running_stack(sam_build, tmp_path_factory)


def _versions(running: Running) -> list[dict[str, Any]]:
    status = running.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    found: list[dict[str, Any]] = json.loads(status.stdout)["versions"]
    return found


def _runtime(layers: list[str]) -> str:
    (runtime,) = [arn for arn in layers if "RuntimeLayer" in arn]
    return "onnx" if "OnnxRuntimeLayer" in runtime else "sklearn"


BODY = {"instances": sample.generate(3, 1201)[0]}


def test_an_onnx_bundle_deploys_and_rolls_back_across_engines(
    engines: Running, onnx_bundle_session: Path
) -> None:
    status, _, before = engines.call("/predict", BODY)
    assert status == 200
    published = engines.cli("publish", str(onnx_bundle_session), "--json")
    assert published.returncode == 0, published.stderr
    version = json.loads(published.stdout)["version"]
    done = engines.cli("deploy", "retail-propensity", version)
    assert done.returncode == 0, done.stderr
    (live,) = _versions(engines)
    assert _runtime(live["layers"]) == "onnx"
    status, headers, after = engines.call("/predict", BODY)
    assert status == 200, after
    assert headers["X-Lambdaserve-Model-Version"] == version
    assert set(after) == set(before) == {"predictions", "probabilities", "model"}
    shown = engines.call("/model")[2]
    assert (shown["engine"], shown["category_input"]) == ("onnx", "codes")
    # Back to the scikit-learn version: one alias switch, its own runtime layer again.
    back = engines.cli("rollback")
    assert back.returncode == 0, back.stderr
    (live,) = _versions(engines)
    assert _runtime(live["layers"]) == "sklearn"
    assert engines.call("/model")[2]["engine"] == "sklearn"
    assert engines.call("/predict", BODY)[0] == 200


def test_a_canary_across_engines_serves_both(engines: Running) -> None:
    history = json.loads(engines.cli("history", "--json").stdout)
    onnx_model = history[-2]["model_version"]  # what the rollback left
    canary = engines.cli("deploy", "retail-propensity", onnx_model, "--canary", "50")
    assert canary.returncode == 0, canary.stderr
    versions = {v["version"]: _runtime(v["layers"]) for v in _versions(engines)}
    assert sorted(versions.values()) == ["onnx", "sklearn"], versions
    seen = {engines.call("/predict", BODY)[1]["X-Lambdaserve-Function-Version"] for _ in range(40)}
    assert seen == set(versions)
    promoted = engines.cli("promote")
    assert promoted.returncode == 0, promoted.stderr
    (live,) = _versions(engines)
    assert _runtime(live["layers"]) == "onnx"
