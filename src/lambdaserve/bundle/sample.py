"""The sample model: will this retail customer buy in the next 7 days? Synthetic, seeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lambdaserve.bundle.make import make_bundle
from lambdaserve.manifest import Manifest

NAME = "retail-propensity"
DEVICES = ["desktop", "mobile", "tablet"]
CHANNELS = ["direct", "email", "search", "social", "ads"]
SPEC: dict[str, Any] = {
    "task": "classification",
    "classes": [0, 1],
    "features": [
        {
            "name": "recency_days",
            "type": "integer",
            "minimum": 0,
            "maximum": 3650,
            "description": "days since the last purchase",
        },
        {
            "name": "frequency_90d",
            "type": "integer",
            "minimum": 0,
            "maximum": 1000,
            "description": "orders in the last 90 days",
        },
        {
            "name": "monetary_90d",
            "type": "number",
            "minimum": 0,
            "maximum": 1_000_000,
            "description": "spend in the last 90 days",
        },
        {
            "name": "sessions_7d",
            "type": "integer",
            "minimum": 0,
            "maximum": 10_000,
            "description": "site sessions in the last 7 days",
        },
        {
            "name": "cart_adds_7d",
            "type": "integer",
            "minimum": 0,
            "maximum": 10_000,
            "description": "items added to the cart in the last 7 days",
        },
        {
            "name": "discount_pct",
            "type": "number",
            "minimum": 0,
            "maximum": 100,
            "required": False,
            "description": "discount currently offered, if any",
        },
        {"name": "device", "type": "category", "categories": DEVICES},
        {
            "name": "channel",
            "type": "category",
            "categories": CHANNELS,
            "description": "acquisition channel of the current session",
        },
    ],
}
FEATURE_NAMES = [f["name"] for f in SPEC["features"]]
_CATEGORICAL = [FEATURE_NAMES.index("device"), FEATURE_NAMES.index("channel")]


MIXES = ("training", "black-friday")


def generate(
    rows: int, seed: int = 7, mix: str = "training"
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Customers as request records, and whether each bought within 7 days (0/1).

    `black-friday` is the peak's traffic: nearly everyone offered a deeper discount (20-50%
    instead of 5-30% for 60%), and three sessions in four on mobile. Nothing else moves."""
    if mix not in MIXES:
        raise ValueError(f"mix {mix!r} is not one of {MIXES}")
    peak = mix == "black-friday"
    rng = np.random.default_rng(seed)
    recency = rng.gamma(1.5, 25, rows).clip(0, 3650).round().astype(int)
    frequency = rng.poisson(2 + 6 * np.exp(-recency / 40)).astype(int)
    monetary = np.round(frequency * rng.lognormal(3.5, 0.6, rows), 2)
    sessions = rng.poisson(1 + 3 * np.exp(-recency / 20) + frequency / 3).astype(int)
    cart_adds = rng.binomial(sessions * 2, 0.25)
    has_discount = rng.random(rows) < (0.95 if peak else 0.6)
    offers = [20, 30, 40, 50] if peak else [5, 10, 15, 20, 30]
    discount = np.where(has_discount, rng.choice(offers, rows), np.nan)
    device = rng.choice(DEVICES, rows, p=[0.2, 0.75, 0.05] if peak else [0.45, 0.45, 0.10])
    channel = rng.choice(CHANNELS, rows, p=[0.3, 0.2, 0.25, 0.15, 0.1])
    logit = (
        -2.2
        - 0.02 * recency
        + 0.12 * np.minimum(frequency, 15)
        + 0.35 * np.log1p(cart_adds)
        + 0.15 * np.log1p(sessions)
        + 0.03 * np.nan_to_num(discount)
        + np.where(device == "mobile", -0.25, 0.0)
        + np.select([channel == "email", channel == "ads"], [0.5, -0.3], 0.0)
    )
    bought = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    records = [
        {
            "recency_days": int(recency[i]),
            "frequency_90d": int(frequency[i]),
            "monetary_90d": float(monetary[i]),
            "sessions_7d": int(sessions[i]),
            "cart_adds_7d": int(cart_adds[i]),
            "discount_pct": None if np.isnan(discount[i]) else float(discount[i]),
            "device": str(device[i]),
            "channel": str(channel[i]),
        }
        for i in range(rows)
    ]
    return records, bought


def pipeline(seed: int = 7) -> Any:
    """Ordinal-encode the two categories by column index (no pandas), then boost trees."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(categories=[DEVICES, CHANNELS], dtype=np.float64),
                _CATEGORICAL,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        categorical_features=[0, 1], max_iter=150, learning_rate=0.08, random_state=seed
    )
    return Pipeline([("encode", encode), ("model", model)])


def onnx_pipeline(seed: int = 7) -> Any:
    """The ONNX engine's recipe: the same trees on category codes (engines.category_codes),
    split as numbers. skl2onnx does not convert native categorical splits (the default
    pipeline's), so the parity proof refuses that one; this one converts exactly."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.08, random_state=seed)


def train(out_dir: Path, rows: int = 20_000, seed: int = 7, engine: str = "sklearn") -> Manifest:
    """Train on a seeded data set, measure a 20% holdout, write the bundle. `engine` onnx:
    the recipe that converts (onnx_pipeline), bundled for the ONNX engine."""
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score

    from lambdaserve.manifest import parse_features
    from lambdaserve.serving.engines import category_codes
    from lambdaserve.serving.schema import RequestParser

    records, labels = generate(rows, seed)
    features = parse_features(SPEC["features"])
    matrix = RequestParser(features, max_rows=rows).parse({"instances": records})
    if engine == "onnx":
        matrix = category_codes(matrix, features)
    cut = int(rows * 0.8)
    model = (onnx_pipeline if engine == "onnx" else pipeline)(seed).fit(matrix[:cut], labels[:cut])
    proba = model.predict_proba(matrix[cut:])[:, 1]
    holdout = labels[cut:]
    metrics = {
        "holdout_rows": float(len(holdout)),
        "roc_auc": float(roc_auc_score(holdout, proba)),
        "log_loss": float(log_loss(holdout, proba)),
        "brier": float(brier_score_loss(holdout, proba)),
        "accuracy": float(accuracy_score(holdout, (proba >= 0.5).astype(int))),
        "positive_rate": float(holdout.mean()),
    }
    return make_bundle(
        model,
        name=NAME,
        spec=SPEC,
        sample_rows=records[cut:],
        out_dir=out_dir,
        metrics=metrics,
        engine=engine,
        category_input="codes" if engine == "onnx" else "raw",
    )


LABEL = "bought_7d"  # bought within 7 days: the truth, known a week later


def write_csv(out: Path, rows: int, seed: int, with_label: bool = False) -> None:
    """Synthetic customers as CSV, with their label `bought_7d` when asked: the model's features
    alone are what /predict and batch accept; the label is for training and ground truth."""
    import csv

    records, labels = generate(rows, seed)
    columns = [*FEATURE_NAMES, LABEL] if with_label else list(FEATURE_NAMES)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for record, label in zip(records, labels, strict=True):
            writer.writerow({**record, LABEL: int(label)} if with_label else record)
