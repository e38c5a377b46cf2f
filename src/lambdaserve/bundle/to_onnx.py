"""The ONNX engine at bundle time (dev only: skl2onnx is never in a layer): convert the
estimator, then prove the graph answers as the estimator does before a bundle may serve with
it. The converter can be silently wrong (HistGradientBoosting's categorical splits are not
converted; float32 thresholds flip the odd row), so nothing is trusted on faith.

The proof scores the sample rows and rows generated across the feature space (every category,
each number's range, quantiles and edges, missing values where allowed) through the request
path both engines serve: labels must be identical, probabilities (or values) within
`TOLERANCE`."""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lambdaserve.manifest import Feature
from lambdaserve.problem import RequestError
from lambdaserve.serving.engines import ONNX_FILE, ONNX_INPUT, OnnxModel
from lambdaserve.serving.predictor import Predictor, sha256_of
from lambdaserve.serving.schema import RequestParser

TOLERANCE = 1e-4  # float32 graph against float64 scikit-learn: probabilities, or relative values
GENERATED_ROWS = 4000
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


class ConversionRefusedError(ValueError):
    """The model cannot serve with ONNX Runtime; the message says why, with the counts, and
    `figures` holds the parity proof's, when it ran."""

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


def converter_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import skl2onnx

    return {
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def convert(estimator: Any, features: Sequence[Feature], category_input: str) -> bytes:
    """The estimator as an ONNX graph reading one float tensor (rows, features)."""
    if category_input == "raw" and any(f.type == "category" for f in features):
        named = [f.name for f in features if f.type == "category"]
        raise ConversionRefusedError(
            f"category features {named} reach this model as strings, and an ONNX tensor holds "
            "one type: fit the model on category codes "
            "(lambdaserve.serving.engines.category_codes) and bundle it with --category-codes "
            "(`lambdaserve sample train --engine onnx`)"
        )
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    # Probabilities as one tensor, not a list of dicts (the classifier may be a pipeline's step).
    final = getattr(estimator, "_final_estimator", estimator)
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else {}
    try:
        with warnings.catch_warnings():
            # skl2onnx writes booleans into int fields: protobuf 6 warns, protobuf 7 refuses
            # (pyproject pins it below 7 where conversion runs).
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)  # it reads deprecated attributes
            graph = convert_sklearn(
                estimator,
                initial_types=[(ONNX_INPUT, FloatTensorType([None, len(features)]))],
                options=options,
                target_opset=TARGET_OPSET,
            )
    except Exception as exc:  # skl2onnx raises many kinds for what it cannot convert
        reason = f"{type(exc).__name__}: {exc}"
        raise ConversionRefusedError(f"skl2onnx cannot convert it: {reason}") from None
    return bytes(graph.SerializeToString())


def proof_rows(
    features: Sequence[Feature], sample_rows: list[dict[str, Any]], seed: int = 0
) -> list[dict[str, Any]]:
    """Rows across the feature space as requests carry them: each sample-based row with one
    feature moved to each value of its grid, then rows drawn from every grid at once."""
    grids = {f.name: _grid(f, [row.get(f.name) for row in sample_rows]) for f in features}
    rng = random.Random(seed)  # nosec B311 - test data, not a secret
    rows: list[dict[str, Any]] = []
    for feature in features:
        for value in grids[feature.name]:
            base = dict(rng.choice(sample_rows))
            rows.append({**base, feature.name: value})
    while len(rows) < GENERATED_ROWS:
        rows.append({f.name: rng.choice(grids[f.name]) for f in features})
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def _grid(feature: Feature, seen: list[Any]) -> list[Any]:
    """The values the proof tries for one feature."""
    values: list[Any] = [None] if not feature.required else []
    if feature.type == "category":
        return values + list(feature.categories or ())
    if feature.type == "boolean":
        return [*values, True, False]
    numbers = np.asarray([v for v in seen if isinstance(v, int | float)], dtype=float)
    low = feature.minimum if feature.minimum is not None else float(numbers.min(initial=0.0))
    high = feature.maximum if feature.maximum is not None else float(numbers.max(initial=1.0))
    points = (
        [low, high, *np.quantile(numbers, np.linspace(0, 1, 21)).tolist()]
        if len(numbers)
        else [low, high]
    )
    points += np.linspace(low, high, 25).tolist()
    if feature.type == "integer":
        return values + sorted({round(p) for p in points if low <= round(p) <= high})
    return values + sorted({float(p) for p in points if low <= p <= high})


def prove(
    served: Any, converted: Any, matrix: np.ndarray, task: str, rows: dict[str, int]
) -> dict[str, Any]:
    """Both engines on the same served matrix: the figures, and whether it passes."""
    labels, probabilities = served.predict_arrays(matrix)
    onnx_labels, onnx_probabilities = converted.predict_arrays(matrix)
    if task == "regression":
        scale = np.maximum(np.abs(labels.astype(float)), 1.0)
        worst = float(np.max(np.abs(onnx_labels - labels.astype(float)) / scale, initial=0.0))
        differ = int(np.sum(np.abs(onnx_labels - labels.astype(float)) / scale > TOLERANCE))
        measure = "max_relative_difference"
    else:
        differ = int(np.sum(np.asarray(onnx_labels).astype(str) != np.asarray(labels).astype(str)))
        if probabilities is not None and onnx_probabilities is not None:
            worst = float(np.max(np.abs(onnx_probabilities - probabilities), initial=0.0))
        else:
            worst = 0.0
        measure = "max_probability_difference"
    return {
        "rows": len(matrix),
        **rows,
        "differing": differ,
        measure: worst,
        "tolerance": TOLERANCE,
        "passed": differ == 0 and worst <= TOLERANCE,
    }


def refusal(figures: dict[str, Any], estimator: Any) -> str:
    """Why the proof failed, with the counts, and the likely cause."""
    worst = figures.get("max_probability_difference", figures.get("max_relative_difference"))
    what = "labels" if "max_probability_difference" in figures else "values"
    text = (
        f"{figures['differing']:,}/{figures['rows']:,} {what} differ between scikit-learn and "
        f"ONNX Runtime (largest difference {worst:.3g}, tolerance {figures['tolerance']:g})"
    )
    final = getattr(estimator, "_final_estimator", estimator)
    categorical = getattr(final, "is_categorical_", None)
    if categorical is not None and np.any(categorical):
        return text + ": categorical splits are not converted by skl2onnx"
    if figures["differing"] and figures["differing"] <= max(1, figures["rows"] // 1000):
        return text + ": float32 thresholds flip rows that sit on a split"
    return text


def choose(
    asked: str, estimator: Any, served: Predictor, sample_rows: list[dict[str, Any]], out: Path
) -> tuple[dict[str, Any], Predictor]:
    """The engine a bundle serves with (`asked`: sklearn, onnx or auto), the manifest fields
    that record it, and the predictor that answers as it will serve. `onnx` refused:
    ConversionRefusedError; `auto` refused: scikit-learn, with the reason recorded."""
    if asked == "sklearn":
        return {"engine": "sklearn"}, served
    path = out / ONNX_FILE
    try:
        path.write_bytes(
            convert(estimator, served.manifest.features, served.manifest.category_input)
        )
        figures, converted = _proven(estimator, served, sample_rows, path)
    except ConversionRefusedError as exc:
        path.unlink(missing_ok=True)
        if asked == "onnx":
            raise
        refused = {"asked": asked, **exc.figures, "passed": False, "reason": str(exc)}
        return {"engine": "sklearn", "parity": refused}, served
    record = {
        "file": ONNX_FILE,
        "sha256": sha256_of(path),
        "frameworks": converter_versions(),
        "opset": TARGET_OPSET,
        "probabilities": hasattr(estimator, "predict_proba"),
    }
    return {"engine": "onnx", "onnx": record, "parity": {"asked": asked, **figures}}, converted


def _proven(
    estimator: Any, served: Predictor, sample_rows: list[dict[str, Any]], path: Path
) -> tuple[dict[str, Any], Predictor]:
    """The parity figures, and the ONNX predictor when they pass (ConversionRefusedError else)."""
    manifest = served.manifest
    generated = proof_rows(manifest.features, sample_rows)
    rows = sample_rows + generated
    try:
        matrix = RequestParser(manifest.features, max_rows=len(rows)).parse({"instances": rows})
    except RequestError as exc:
        raise ConversionRefusedError(f"the proof's rows break the feature spec: {exc}") from None
    counts = {"sample_rows": len(sample_rows), "generated_rows": len(generated)}
    probabilities = hasattr(estimator, "predict_proba")
    try:
        onnx = OnnxModel.load(path, manifest.task, manifest.classes, probabilities)
        converted = Predictor(manifest, onnx, max_rows=served.parser.max_rows)
        figures = prove(served, converted, matrix, manifest.task, counts)
    except Exception as exc:  # onnxruntime refuses graphs and inputs with many error types
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        raise ConversionRefusedError(
            f"ONNX Runtime cannot run the graph on the proof's rows: {reason}"
        ) from None
    if not figures["passed"]:
        raise ConversionRefusedError(refusal(figures, estimator), figures)
    return figures, converted
