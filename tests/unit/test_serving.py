from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import joblib
import pytest

from lambdaserve import manifest
from lambdaserve.serving.predictor import (
    ExpectedModel,
    FrameworkMismatchError,
    ModelIntegrityError,
    ModelLoadError,
    Predictor,
    framework_mismatches,
    runtime_versions,
    sha256_of,
)


class _Tripwire:
    """A pickle that, if it is ever unpickled, leaves a file behind: proof of loading."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _plant_tripwire(bundle: Path, *, fix_hash: bool) -> Path:
    marker = bundle.parent / "UNPICKLED"
    (bundle / "model.joblib").write_bytes(pickle.dumps(_Tripwire(marker)))
    if fix_hash:
        _edit_manifest(bundle, sha256=sha256_of(bundle / "model.joblib"))
    return marker


def _edit_manifest(bundle: Path, **changes: Any) -> None:
    path = bundle / "manifest.json"
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            raw[key].update(value)
        else:
            raw[key] = value
    path.write_text(json.dumps(raw))


def test_sample_bundle_loads_and_reproduces_its_golden_examples(sample_bundle: Path) -> None:
    predictor = Predictor.load(sample_bundle)
    assert predictor.golden_mismatches() == []
    assert predictor.load_seconds > 0


def test_classifier_answers_predictions_probabilities_and_model(sample_bundle: Path) -> None:
    predictor = Predictor.load(sample_bundle)
    rows = [g.inputs for g in predictor.manifest.golden_examples]
    result = predictor.predict(predictor.parse({"instances": rows}))
    assert set(result) == {"predictions", "probabilities", "model"}
    assert len(result["predictions"]) == len(rows)
    assert all(p in (0, 1) for p in result["predictions"])
    assert all(abs(sum(p) - 1) < 1e-9 for p in result["probabilities"])
    assert result["model"] == {"name": "retail-propensity", "version": None}
    json.dumps(result, allow_nan=False)  # plain JSON types only


def test_a_tampered_model_file_is_refused_before_unpickling(sample_bundle: Path) -> None:
    marker = _plant_tripwire(sample_bundle, fix_hash=False)
    with pytest.raises(ModelIntegrityError, match="refusing to unpickle"):
        Predictor.load(sample_bundle)
    assert not marker.exists()


def test_a_framework_mismatch_is_refused_before_unpickling(sample_bundle: Path) -> None:
    marker = _plant_tripwire(sample_bundle, fix_hash=True)
    _edit_manifest(sample_bundle, frameworks={"scikit-learn": "1.3.2"})
    with pytest.raises(FrameworkMismatchError, match=r"scikit-learn 1\.3\.2 in the bundle"):
        Predictor.load(sample_bundle)
    assert not marker.exists()


def test_model_pins_of_the_function_version_are_enforced(sample_bundle: Path) -> None:
    marker = _plant_tripwire(sample_bundle, fix_hash=True)
    with pytest.raises(ModelIntegrityError, match="MODEL_SHA256"):
        Predictor.load(sample_bundle, expected=ExpectedModel(sha256="0" * 64))
    with pytest.raises(ModelIntegrityError, match="MODEL_NAME=churn"):
        Predictor.load(sample_bundle, expected=ExpectedModel(name="churn"))
    assert not marker.exists()


def test_expected_model_reads_the_function_environment() -> None:
    env = {"MODEL_NAME": "m", "MODEL_VERSION": "3", "MODEL_SHA256": "AB" * 32}
    assert ExpectedModel.from_env(env) == ExpectedModel("m", "3", "ab" * 32)
    assert ExpectedModel.from_env({}) == ExpectedModel()


def test_a_model_pickled_by_another_sklearn_is_refused(
    sample_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.linear_model import LogisticRegression

    original = BaseEstimator.__getstate__

    def stale_state(self: BaseEstimator) -> dict[str, Any]:
        return {**original(self), "_sklearn_version": "0.24.2"}

    monkeypatch.setattr(BaseEstimator, "__getstate__", stale_state)
    joblib.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), sample_bundle / "model.joblib")
    monkeypatch.undo()
    _edit_manifest(sample_bundle, sha256=sha256_of(sample_bundle / "model.joblib"))
    with pytest.raises(FrameworkMismatchError, match=r"0\.24\.2"):
        Predictor.load(sample_bundle)


def test_missing_model_file_or_manifest_is_a_load_error(
    sample_bundle: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelLoadError, match=r"no manifest\.json"):
        Predictor.load(tmp_path / "nowhere")
    (sample_bundle / "model.joblib").unlink()
    with pytest.raises(ModelLoadError, match="no model file"):
        Predictor.load(sample_bundle)


def test_framework_check_compares_python_by_minor_version_only() -> None:
    here = runtime_versions()
    same_minor = {**here, "python": here["python"].rsplit(".", 1)[0] + ".99"}
    assert framework_mismatches(same_minor, here) == []
    assert framework_mismatches({**here, "python": "3.11.9"}, here) == [
        f"python 3.11.9 in the bundle, {here['python']} here"
    ]


def test_runtime_versions_are_the_pinned_ones() -> None:
    pins = dict(
        line.split("==")
        for line in (Path(__file__).parents[2] / "layers/runtime/requirements.txt")
        .read_text()
        .splitlines()
        if "==" in line and not line.startswith("#")
    )
    here = runtime_versions()
    for package in ("scikit-learn", "numpy", "scipy", "joblib"):
        assert here[package] == pins[package], package


def test_bundle_manifest_records_the_runtime_versions(sample_bundle: Path) -> None:
    assert manifest.read(sample_bundle).frameworks == runtime_versions()


def test_predictions_equal_plain_sklearn_on_10000_rows(sample_bundle: Path) -> None:
    from lambdaserve.bundle import sample

    predictor = Predictor.load(sample_bundle)
    plain = joblib.load(sample_bundle / "model.joblib")
    records, _ = sample.generate(10_000, seed=123)
    matrix = predictor.parse({"instances": records})
    result = predictor.predict(matrix)
    assert result["predictions"] == plain.predict(matrix).tolist()
    assert result["probabilities"] == plain.predict_proba(matrix).tolist()


def test_parallel_models_are_made_single_threaded_with_identical_results(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    from lambdaserve.bundle.make import make_bundle

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=20, n_jobs=-1, random_state=0).fit(x, y)
    rows = [{"a": float(r[0]), "b": float(r[1])} for r in x]
    spec = {"features": [{"name": "a", "type": "number"}, {"name": "b", "type": "number"}]}
    make_bundle(forest, name="forest", spec=spec, sample_rows=rows, out_dir=tmp_path)
    predictor = Predictor.load(tmp_path)
    assert predictor.estimator.n_jobs == 1
    result = predictor.predict(predictor.parse({"instances": rows}))
    assert result["probabilities"] == forest.predict_proba(x).tolist()


@pytest.mark.parametrize("flat", [False, True])
def test_labels_from_probabilities_equal_predict_even_on_exact_ties(
    tmp_path: Path, flat: bool
) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from lambdaserve.bundle.make import make_bundle

    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 2))
    y = np.select([x[:, 0] > 0.5, x[:, 1] > 0], ["gold", "silver"], "bronze")
    model = LogisticRegression().fit(x, y)
    if flat:  # every class equally likely for every row: all ties, predict() decides
        model.coef_[:] = 0.0
        model.intercept_[:] = 0.0
    rows = [{"a": float(r[0]), "b": float(r[1])} for r in x]
    spec = {"features": [{"name": "a", "type": "number"}, {"name": "b", "type": "number"}]}
    make_bundle(model, name="tiers", spec=spec, sample_rows=rows, out_dir=tmp_path)
    predictor = Predictor.load(tmp_path)
    assert predictor._labels_from_proba
    result = predictor.predict(predictor.parse({"instances": rows}))
    assert result["predictions"] == model.predict(x).tolist()
    assert result["probabilities"] == model.predict_proba(x).tolist()
