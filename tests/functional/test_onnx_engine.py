"""The ONNX engine: a bundle serves with ONNX Runtime only after the parity proof; a model the
converter gets wrong is refused with the counts (or, asked for `auto`, kept on scikit-learn
with the reason); the graph is verified before it loads; and the handler answers the same
shapes whichever engine serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from support import ROOT, FakeLambdaContext, import_fresh, load_event
from zoo import ZOO

from lambdaserve.bundle import sample
from lambdaserve.bundle.make import BundleError, make_bundle
from lambdaserve.cli.main import main
from lambdaserve.manifest import parse_features
from lambdaserve.serving.engines import OnnxModel, category_codes
from lambdaserve.serving.predictor import (
    FrameworkMismatchError,
    ModelIntegrityError,
    Predictor,
    load_pickled,
    sha256_of,
)
from lambdaserve.serving.schema import RequestParser

FEATURES = parse_features(sample.SPEC["features"])


def _served(rows: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    records, labels = sample.generate(rows, seed)
    matrix = RequestParser(FEATURES, max_rows=rows).parse({"instances": records})
    return records, matrix, labels


def test_the_onnx_recipe_is_proven_and_serves_with_onnx_runtime(onnx_bundle: Path) -> None:
    manifest = json.loads((onnx_bundle / "manifest.json").read_text())
    assert (manifest["engine"], manifest["category_input"]) == ("onnx", "codes")
    assert manifest["onnx"]["sha256"] == sha256_of(onnx_bundle / "model.onnx")
    assert set(manifest["onnx"]["frameworks"]) == {"skl2onnx", "onnx", "onnxruntime"}
    proof = manifest["parity"]
    assert proof["passed"]
    assert proof["differing"] == 0
    assert proof["generated_rows"] >= 4000
    assert proof["max_probability_difference"] <= proof["tolerance"]
    predictor = Predictor.load(onnx_bundle)
    assert isinstance(predictor.estimator, OnnxModel)
    assert predictor.golden_mismatches() == []
    # The same answers as the scikit-learn estimator in the bundle, on rows it never saw.
    _, matrix, _ = _served(3000, 31)
    labels, probabilities = predictor.predict_arrays(matrix)
    estimator = load_pickled(onnx_bundle / "model.joblib")
    codes = category_codes(matrix, predictor.manifest.features)
    assert np.array_equal(labels, estimator.predict(codes))
    assert np.abs(probabilities - estimator.predict_proba(codes)).max() < 1e-4


def _categorical_on_codes() -> tuple[Any, list[dict[str, Any]]]:
    """HistGradientBoosting with native categorical splits: skl2onnx converts it without a
    word and ignores the categorical splits."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    records, matrix, labels = _served(5000, 32)
    codes = category_codes(matrix, FEATURES)
    model = HistGradientBoostingClassifier(categorical_features=[6, 7], max_iter=60, random_state=3)
    model.fit(codes[:4000], labels[:4000])
    return model, records[4000:]


def test_a_model_the_converter_gets_wrong_is_refused_with_the_counts(tmp_path: Path) -> None:
    model, rows = _categorical_on_codes()
    with pytest.raises(BundleError) as refused:
        make_bundle(model, name="m", spec=sample.SPEC, sample_rows=rows, out_dir=tmp_path,
                    engine="onnx", category_input="codes")  # fmt: skip
    message = str(refused.value)
    assert "labels differ between scikit-learn and ONNX Runtime" in message
    assert "categorical splits are not converted" in message
    assert not (tmp_path / "model.onnx").exists()


def test_auto_falls_back_to_scikit_learn_and_says_why(tmp_path: Path) -> None:
    model, rows = _categorical_on_codes()
    manifest = make_bundle(model, name="m", spec=sample.SPEC, sample_rows=rows,
                           out_dir=tmp_path, engine="auto", category_input="codes")  # fmt: skip
    assert manifest.engine == "sklearn"
    assert manifest.parity is not None
    assert (manifest.parity["asked"], manifest.parity["passed"]) == ("auto", False)
    assert manifest.parity["differing"] > 0
    assert "categorical splits" in manifest.parity["reason"]
    assert not (tmp_path / "model.onnx").exists()
    assert Predictor.load(tmp_path).golden_mismatches() == []


def test_a_model_that_reads_category_strings_is_refused_with_the_recipe(
    sample_bundle_session: Path, tmp_path: Path
) -> None:
    rows = sample.generate(300, 33)[0]
    estimator = load_pickled(sample_bundle_session / "model.joblib")
    with pytest.raises(BundleError, match="--category-codes"):
        make_bundle(estimator, name="m", spec=sample.SPEC, sample_rows=rows, out_dir=tmp_path,
                    engine="onnx")  # fmt: skip


def test_the_graph_is_verified_before_it_loads(
    onnx_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = onnx_bundle / "model.onnx"
    original = graph.read_bytes()
    graph.write_bytes(original + b"\0")
    with pytest.raises(ModelIntegrityError, match=r"model\.onnx has sha256"):
        Predictor.load(onnx_bundle)
    graph.write_bytes(original)
    monkeypatch.setattr("lambdaserve.serving.predictor.onnxruntime_version", lambda: "0.0.1")
    with pytest.raises(FrameworkMismatchError, match="parity proof ran on onnxruntime"):
        Predictor.load(onnx_bundle)


def test_the_handler_answers_the_same_shapes_on_either_engine(
    onnx_bundle: Path, sample_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {}
    for engine, bundle in (("onnx", onnx_bundle), ("sklearn", sample_bundle)):
        monkeypatch.setenv("MODEL_DIR", str(bundle))
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        handler = import_fresh(ROOT / "functions/predict/app.py", f"predict_{engine}")
        good = handler.lambda_handler(load_event("predict.json"), FakeLambdaContext())
        bad = handler.lambda_handler(load_event("predict-invalid.json"), FakeLambdaContext())
        answers[engine] = (good, bad)
    for good, _ in answers.values():
        body = json.loads(good["body"])
        assert good["statusCode"] == 200
        assert set(body) == {"predictions", "probabilities", "model"}
        assert all(len(p) == 2 for p in body["probabilities"])
    assert json.loads(answers["onnx"][1]["body"]) == json.loads(answers["sklearn"][1]["body"])


def test_bundle_and_sample_train_take_the_engine(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(main, ["sample", "train", "--engine", "onnx", "--rows", "4000",
                                "--out", str(tmp_path / "b")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "engine onnx: parity proven on" in done.output


# The zoo's models that read category strings cannot be converted as they are (the ONNX
# engine reads numbers: --category-codes); every other one converts and passes the proof.
READS_STRINGS = {"logreg-multiclass", "df-column-transformer", "df-column-selector",
                 "df-categorical-dtype"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_serves_with_onnx_or_says_why_not(name: str, tmp_path: Path) -> None:
    model = ZOO[name]()
    bundled = make_bundle(model.estimator, name=name, spec=model.spec,
                          sample_rows=model.requests, out_dir=tmp_path, engine="auto")  # fmt: skip
    assert bundled.parity is not None
    if name in READS_STRINGS:
        assert bundled.engine == "sklearn"
        assert "reach this model as strings" in bundled.parity["reason"]
        return
    assert bundled.engine == "onnx", bundled.parity
    assert bundled.parity["passed"]
    assert bundled.parity["differing"] == 0
    predictor = Predictor.load(tmp_path)
    assert isinstance(predictor.estimator, OnnxModel)
    assert predictor.golden_mismatches() == []
    served = predictor.predict(predictor.parse({"instances": model.requests}))
    labels, probabilities = model.own_answers(model.requests)
    if bundled.task == "regression":
        np.testing.assert_allclose(served["predictions"], labels, rtol=1e-4)
    else:
        assert served["predictions"] == labels
    if probabilities is not None:
        np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-4)
    else:
        assert "probabilities" not in served
