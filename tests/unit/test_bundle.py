from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from lambdaserve.bundle.make import BundleError, load_feature_spec, make_bundle, read_sample_csv
from lambdaserve.manifest import parse_features
from lambdaserve.serving.predictor import Predictor

SPEC: dict[str, Any] = {
    "features": [
        {"name": "tenure", "type": "integer", "minimum": 0},
        {"name": "spend", "type": "number"},
        {"name": "member", "type": "boolean"},
    ]
}


def _rows(n: int = 40) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    return [
        {"tenure": int(t), "spend": float(s), "member": bool(m)}
        for t, s, m in zip(
            rng.integers(0, 60, n), rng.normal(50, 10, n), rng.random(n) < 0.5, strict=True
        )
    ]


def _xy(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[r["tenure"], r["spend"], float(r["member"])] for r in rows])
    return x, (x[:, 0] + x[:, 2] * 20 > 35).astype(int)


def test_bundle_of_a_user_classifier_records_golden_outputs_and_profile(tmp_path: Path) -> None:
    rows = _rows()
    model = LogisticRegression().fit(*_xy(rows))
    m = make_bundle(
        model,
        name="churn",
        spec=SPEC,
        sample_rows=rows,
        out_dir=tmp_path,
        metrics={"auc": 0.9, "bad": float("nan")},
    )
    assert (m.task, m.classes, m.estimator) == (
        "classification",
        [0, 1],
        "sklearn.linear_model._logistic.LogisticRegression",
    )
    assert m.metrics == {"auc": 0.9}
    expected = model.predict_proba(_xy(rows[:5])[0]).tolist()
    assert [g.probabilities for g in m.golden_examples] == expected
    assert m.baseline_profile["rows"] == 40
    assert m.baseline_profile["features"]["member"]["missing"] == 0
    assert Predictor.load(tmp_path).golden_mismatches() == []


def test_bundle_of_a_regressor_has_no_classes_or_probabilities(tmp_path: Path) -> None:
    rows = _rows()
    x, _ = _xy(rows)
    m = make_bundle(
        LinearRegression().fit(x, x[:, 1] * 2),
        name="spend",
        spec=SPEC,
        sample_rows=rows,
        out_dir=tmp_path,
    )
    assert (m.task, m.classes) == ("regression", None)
    assert all(g.probabilities is None for g in m.golden_examples)


@pytest.mark.parametrize(
    ("spec_change", "message"),
    [
        ({"features": SPEC["features"][:2]}, "fitted on 3 features, the spec lists 2"),
        ({"classes": ["no", "yes"]}, r"classes \['no', 'yes'\], the model has \[0, 1\]"),
        ({"task": "regression"}, "the model is a classification model"),
    ],
)
def test_spec_and_model_disagreeing_is_a_clear_error(
    tmp_path: Path, spec_change: dict[str, Any], message: str
) -> None:
    rows = _rows()
    model = LogisticRegression().fit(*_xy(rows))
    with pytest.raises(BundleError, match=message):
        make_bundle(
            model, name="churn", spec={**SPEC, **spec_change}, sample_rows=rows, out_dir=tmp_path
        )


def test_sample_rows_that_break_the_spec_are_refused(tmp_path: Path) -> None:
    rows = _rows()
    model = LogisticRegression().fit(*_xy(rows))
    with pytest.raises(BundleError, match="row 1 tenure: must be at least 0"):
        make_bundle(
            model,
            name="churn",
            spec=SPEC,
            sample_rows=[rows[0], {**rows[1], "tenure": -3}],
            out_dir=tmp_path,
        )


def test_something_that_is_not_an_estimator_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no predict"):
        make_bundle({"weights": [1]}, name="x", spec=SPEC, sample_rows=_rows(), out_dir=tmp_path)


def test_feature_spec_reads_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("features:\n  - {name: a, type: number}\n")
    (tmp_path / "spec.json").write_text('{"features": [{"name": "a", "type": "number"}]}')
    assert load_feature_spec(tmp_path / "spec.yaml") == load_feature_spec(tmp_path / "spec.json")
    (tmp_path / "bad.yaml").write_text("features:\n  - {name: a, type: decimal}\n")
    with pytest.raises(BundleError, match="'type' must be one of"):
        load_feature_spec(tmp_path / "bad.yaml")


def test_sample_csv_is_typed_by_the_spec(tmp_path: Path) -> None:
    features = parse_features(SPEC["features"])
    (tmp_path / "s.csv").write_text("spend,tenure,member,label\n12.5,3,true,1\n,4,0,0\n")
    assert read_sample_csv(tmp_path / "s.csv", features) == [
        {"tenure": 3, "spend": 12.5, "member": True},
        {"tenure": 4, "spend": None, "member": False},
    ]
    (tmp_path / "bad.csv").write_text("spend,tenure,member\nlots,3,true\n")
    with pytest.raises(BundleError, match="line 2, spend: 'lots' is not a number"):
        read_sample_csv(tmp_path / "bad.csv", features)
    (tmp_path / "short.csv").write_text("spend,tenure\n1,2\n")
    with pytest.raises(BundleError, match=r"lacks the features \['member'\]"):
        read_sample_csv(tmp_path / "short.csv", features)
