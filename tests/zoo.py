"""A zoo of user models lambdaserve never trained itself: the kinds people bring, fitted the ways
people fit them (arrays, DataFrames by column name, string and -1/1 labels, missing values).

Each entry fits its model on seeded data and knows how the model answers on its own terms (a
DataFrame for DataFrame-fitted ones), so a test can compare what the served bundle says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC

ROWS = 400
PLANS = ["free", "plus", "pro"]


@dataclass
class ZooModel:
    """A fitted user model, its feature spec, sample rows, and its own answers on rows."""

    name: str
    estimator: Any
    spec: dict[str, Any]
    rows: list[dict[str, Any]]
    own_input: Callable[[list[dict[str, Any]]], Any]  # rows -> what the model was fitted on
    predictor_task: str = ""

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The sample rows as a client sends them: the spec's features only."""
        names = [f["name"] for f in self.spec["features"]]
        return [{n: r.get(n) for n in names} for r in self.rows]

    def own_answers(self, rows: list[dict[str, Any]]) -> tuple[list[Any], list[list[float]] | None]:
        x = self.own_input(rows)
        labels = self.estimator.predict(x).tolist()
        if hasattr(self.estimator, "predict_proba"):
            return labels, self.estimator.predict_proba(x).tolist()
        return labels, None


def _customers(seed: int, missing: float = 0.0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(ROWS):
        row: dict[str, Any] = {
            "tenure": int(rng.integers(0, 72)),
            "spend": round(float(rng.gamma(2.0, 30.0)), 2),
            "plan": str(rng.choice(PLANS)),
            "has_app": bool(rng.random() < 0.4),
            "nps": round(float(rng.normal(30, 20)), 1),
        }
        if missing and rng.random() < missing:
            row["nps"] = None
        rows.append(row)
    return rows


def _score(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array(
        [
            0.03 * r["tenure"]
            + 0.01 * r["spend"]
            + (0.8 if r["plan"] == "pro" else 0.0)
            + (0.5 if r["has_app"] else 0.0)
            for r in rows
        ]
    )


def _array(names: list[str]) -> Callable[[list[dict[str, Any]]], np.ndarray]:
    def build(rows: list[dict[str, Any]]) -> np.ndarray:
        return np.array(
            [[np.nan if r.get(n) is None else r[n] for n in names] for r in rows], dtype=object
        )

    return build


def _numeric(names: list[str]) -> Callable[[list[dict[str, Any]]], np.ndarray]:
    def build(rows: list[dict[str, Any]]) -> np.ndarray:
        return np.array(
            [[np.nan if r.get(n) is None else float(r[n]) for n in names] for r in rows]
        )

    return build


def _frame(names: list[str]) -> Callable[[list[dict[str, Any]]], pd.DataFrame]:
    def build(rows: list[dict[str, Any]]) -> pd.DataFrame:
        frame = pd.DataFrame([{n: r.get(n) for n in names} for r in rows], columns=names)
        numeric = [n for n in names if n in ("tenure", "spend", "nps")]
        return frame.astype({n: float for n in numeric})

    return build


TENURE = {"name": "tenure", "type": "integer", "minimum": 0}
SPEND = {"name": "spend", "type": "number", "minimum": 0}
PLAN = {"name": "plan", "type": "category", "categories": PLANS}
HAS_APP = {"name": "has_app", "type": "boolean"}
NPS_OPTIONAL = {"name": "nps", "type": "number", "required": False}


def _rf_regressor() -> ZooModel:
    rows = _customers(1)
    x = _numeric(["tenure", "spend", "nps"])
    model = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0)
    model.fit(x(rows), _score(rows))
    spec = {"task": "regression", "features": [TENURE, SPEND, {"name": "nps", "type": "number"}]}
    return ZooModel("rf-regressor", model, spec, rows, x)


def _logreg_multiclass() -> ZooModel:
    rows = _customers(2)
    x = _array(["tenure", "spend", "plan"])
    score = _score(rows)
    labels = np.where(score > 2.2, "gold", np.where(score > 1.4, "silver", "bronze"))
    model = make_pipeline(
        ColumnTransformer([("plan", OneHotEncoder(), [2])], remainder="passthrough"),
        LogisticRegression(max_iter=2000),
    ).fit(x(rows), labels)
    spec = {"classes": sorted(set(labels.tolist())), "features": [TENURE, SPEND, PLAN]}
    return ZooModel("logreg-multiclass", model, spec, rows, x)


def _gbc_boolean() -> ZooModel:
    rows = _customers(3)
    x = _numeric(["spend", "has_app"])
    labels = np.where(_score(rows) > 1.6, 1, -1)
    model = GradientBoostingClassifier(n_estimators=30, random_state=0).fit(x(rows), labels)
    spec = {"classes": [-1, 1], "features": [SPEND, HAS_APP]}
    return ZooModel("gbc-boolean", model, spec, rows, x)


def _svc_without_probabilities() -> ZooModel:
    rows = _customers(4)
    x = _numeric(["tenure", "spend"])
    labels = (_score(rows) > 1.6).astype(int)
    model = make_pipeline(StandardScaler(), SVC()).fit(x(rows), labels)
    return ZooModel("svc-no-proba", model, {"features": [TENURE, SPEND]}, rows, x)


def _imputer_optional_feature() -> ZooModel:
    rows = _customers(5, missing=0.2)
    x = _numeric(["tenure", "nps"])
    model = make_pipeline(SimpleImputer(), LinearRegression()).fit(x(rows), _score(rows))
    return ZooModel("imputer-optional", model, {"features": [TENURE, NPS_OPTIONAL]}, rows, x)


def _hgb_missing_values() -> ZooModel:
    rows = _customers(6, missing=0.3)
    x = _numeric(["spend", "nps"])
    model = HistGradientBoostingRegressor(max_iter=40, random_state=0).fit(x(rows), _score(rows))
    return ZooModel("hgb-missing", model, {"features": [SPEND, NPS_OPTIONAL]}, rows, x)


def _frame_column_transformer() -> ZooModel:
    """Fitted on a DataFrame whose column order is not the spec's, selecting by name."""
    rows = _customers(7)
    frame = _frame(["plan", "spend", "tenure"])
    labels = np.where(_score(rows) > 1.6, "yes", "no")
    model = make_pipeline(
        ColumnTransformer(
            [
                ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                ("numbers", StandardScaler(), ["tenure", "spend"]),
            ]
        ),
        LogisticRegression(max_iter=2000),
    ).fit(frame(rows), labels)
    return ZooModel(
        "df-column-transformer", model, {"features": [TENURE, SPEND, PLAN]}, rows, frame
    )


def _frame_forest() -> ZooModel:
    """A forest fitted straight on a DataFrame, columns in another order than the spec's."""
    rows = _customers(8)
    frame = _frame(["spend", "tenure"])
    labels = (_score(rows) > 1.6).astype(int)
    model = RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0)
    model.fit(frame(rows), labels)
    return ZooModel("df-forest", model, {"features": [TENURE, SPEND]}, rows, frame)


def _frame_column_selector() -> ZooModel:
    """Columns chosen by dtype (make_column_selector), the other common DataFrame idiom."""
    rows = _customers(9)
    frame = _frame(["tenure", "plan", "spend"])
    model = make_pipeline(
        ColumnTransformer(
            [
                ("cats", OneHotEncoder(), make_column_selector(dtype_exclude="number")),
                ("nums", "passthrough", make_column_selector(dtype_include="number")),
            ]
        ),
        GradientBoostingRegressor(n_estimators=30, random_state=0),
    ).fit(frame(rows), _score(rows))
    return ZooModel("df-column-selector", model, {"features": [TENURE, SPEND, PLAN]}, rows, frame)


def _kmeans() -> ZooModel:
    rows = _customers(12)
    x = _numeric(["tenure", "spend"])
    model = make_pipeline(StandardScaler(), KMeans(n_clusters=4, n_init=3, random_state=0))
    model.fit(x(rows))
    return ZooModel("kmeans", model, {"features": [TENURE, SPEND]}, rows, x)


def _isolation_forest() -> ZooModel:
    rows = _customers(13)
    x = _numeric(["tenure", "spend"])
    model = IsolationForest(n_estimators=30, random_state=0).fit(x(rows))
    return ZooModel("isolation-forest", model, {"features": [TENURE, SPEND]}, rows, x)


def gaussian_mixture() -> ZooModel:
    """A density estimator: its predict() is neither a class, a value, a cluster nor an
    outlier flag that lambdaserve can describe, so it is refused."""
    rows = _customers(14)
    x = _numeric(["tenure", "spend"])
    model = GaussianMixture(n_components=2, random_state=0).fit(x(rows))
    return ZooModel("gaussian-mixture", model, {"features": [TENURE, SPEND]}, rows, x)


def _frame_categorical_dtype() -> ZooModel:
    """Native categorical splits learned from pandas' category dtype (HistGradientBoosting's
    own encoder then reads the category values from the array)."""
    rows = _customers(10)

    def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        built = _frame(["tenure", "plan"])(rows)
        return built.astype({"plan": pd.CategoricalDtype(PLANS)})

    labels = (_score(rows) > 1.6).astype(int)
    model = HistGradientBoostingClassifier(
        max_iter=30, categorical_features="from_dtype", random_state=0
    ).fit(frame(rows), labels)
    return ZooModel("df-categorical-dtype", model, {"features": [TENURE, PLAN]}, rows, frame)


def spend_per_tenure(frame: pd.DataFrame) -> pd.DataFrame:
    """Feature engineering written with pandas methods, pickled inside the model."""
    return frame.assign(ratio=frame["spend"] / (frame["tenure"] + 1))


def frame_code() -> ZooModel:
    """A model whose own code needs a DataFrame: it cannot be served without pandas, and
    must be refused at bundle time, not at the first request."""
    rows = _customers(11)
    frame = _frame(["tenure", "spend"])
    model = make_pipeline(FunctionTransformer(spend_per_tenure), LinearRegression())
    model.fit(frame(rows), _score(rows))
    return ZooModel("df-pandas-code", model, {"features": [TENURE, SPEND]}, rows, frame)


ZOO: dict[str, Callable[[], ZooModel]] = {
    "rf-regressor": _rf_regressor,
    "logreg-multiclass": _logreg_multiclass,
    "gbc-boolean": _gbc_boolean,
    "svc-no-proba": _svc_without_probabilities,
    "imputer-optional": _imputer_optional_feature,
    "hgb-missing": _hgb_missing_values,
    "df-column-transformer": _frame_column_transformer,
    "df-forest": _frame_forest,
    "df-column-selector": _frame_column_selector,
    "df-categorical-dtype": _frame_categorical_dtype,
    "kmeans": _kmeans,
    "isolation-forest": _isolation_forest,
}


def assert_same_answers(model: ZooModel, answer: dict[str, Any]) -> None:
    labels, probabilities = model.own_answers(model.requests)
    predictions = answer["predictions"]
    assert isinstance(predictions, list)
    if model.predictor_task == "regression":  # clusters and outlier flags are exact
        np.testing.assert_allclose(predictions, labels, rtol=0, atol=1e-9)
    else:
        assert predictions == labels
    if probabilities is None:
        assert "probabilities" not in answer
    else:
        np.testing.assert_allclose(answer["probabilities"], probabilities, rtol=0, atol=1e-12)
