"""Every model of the zoo bundles, and the bundle answers exactly as the model itself does, in
both request shapes; a DataFrame model that cannot be served from arrays is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from zoo import ZOO, ZooModel, assert_same_answers, frame_code, gaussian_mixture

from lambdaserve.bundle.make import BundleError, make_bundle
from lambdaserve.serving.openapi import document
from lambdaserve.serving.predictor import Predictor


def _bundle(model: ZooModel, out: Path) -> Predictor:
    make_bundle(
        model.estimator, name=model.name, spec=model.spec, sample_rows=model.requests, out_dir=out
    )
    return Predictor.load(out)


@pytest.mark.parametrize("kind", sorted(ZOO))
def test_a_user_model_bundles_and_answers_as_itself_in_both_shapes(
    kind: str, tmp_path: Path
) -> None:
    model = ZOO[kind]()
    predictor = _bundle(model, tmp_path)
    assert predictor.golden_mismatches() == []
    records = predictor.predict(predictor.parse({"instances": model.requests}))
    model.predictor_task = predictor.manifest.task
    assert_same_answers(model, records)
    columns = [f.name for f in predictor.manifest.features]
    columnar = {
        "dataframe_split": {
            "columns": columns,
            "data": [[row.get(c) for c in columns] for row in model.requests],
        }
    }
    assert predictor.predict(predictor.parse(columnar)) == records


def test_a_dataframe_model_that_arrays_cannot_reproduce_is_refused(tmp_path: Path) -> None:
    model = frame_code()
    with pytest.raises(BundleError, match="fitted on a DataFrame and"):
        _bundle(model, tmp_path)
    assert not (tmp_path / "manifest.json").exists()


MEDALS = ["bronze", "gold", "silver"]


def test_a_kind_lambdaserve_cannot_describe_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a classifier, regressor, clusterer or outlier"):
        _bundle(gaussian_mixture(), tmp_path)


@pytest.mark.parametrize(
    ("kind", "task", "prediction", "probabilities"),
    [
        (
            "logreg-multiclass",
            "classification",
            {"type": "string", "enum": ["bronze", "gold", "silver"]},
            True,
        ),
        ("gbc-boolean", "classification", {"type": "integer", "enum": [-1, 1]}, True),
        ("svc-no-proba", "classification", {"type": "integer", "enum": [0, 1]}, False),
        ("rf-regressor", "regression", {"type": "number"}, False),
        ("kmeans", "clustering", {"type": "integer", "minimum": 0}, False),
        ("isolation-forest", "outlier_detection", {"type": "integer", "enum": [-1, 1]}, False),
    ],
)
def test_each_kind_has_its_own_task_and_response_schema(
    kind: str,
    task: str,
    prediction: dict[str, object],
    probabilities: bool,
    tmp_path: Path,
) -> None:
    found = _bundle(ZOO[kind](), tmp_path).manifest
    assert found.task == task
    response = document(found, max_rows=100)["components"]["schemas"]["PredictResponse"]
    items = {
        k: v
        for k, v in response["properties"]["predictions"]["items"].items()
        if k != "description"
    }
    assert items == prediction
    assert ("probabilities" in response["properties"]) is probabilities
