"""Make a bundle (model.joblib + manifest.json) from a fitted estimator and a feature spec."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import json
import math
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lambdaserve import manifest as manifest_io
from lambdaserve.bundle import positions
from lambdaserve.bundle import to_onnx as convert
from lambdaserve.manifest import MODEL_FILE, Feature, Manifest, ManifestError, parse_features
from lambdaserve.monitor import drift
from lambdaserve.problem import RequestError
from lambdaserve.serving.predictor import (
    FrameworkMismatchError,
    Predictor,
    load_pickled,
    runtime_versions,
    sha256_of,
)
from lambdaserve.serving.schema import RequestParser
from lambdaserve.shared import budget

GOLDEN_EXAMPLES = 5
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


class BundleError(ValueError):
    """The estimator, the feature spec and the sample rows do not agree."""


def load_estimator(path: Path) -> Any:
    """A user's joblib file, refused if it was pickled by another scikit-learn version: its
    predictions here could silently differ from the ones it was validated with."""
    try:
        return load_pickled(path)
    except FrameworkMismatchError as exc:
        raise BundleError(f"{path}: {exc}") from None


def load_feature_spec(path: Path) -> dict[str, Any]:
    """Read a feature spec (JSON or YAML): `features`, optionally `task` and `classes`."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        if Path(path).suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
    except Exception as exc:  # yaml and json raise unrelated types; both mean "unreadable"
        raise BundleError(f"{path}: cannot parse the feature spec: {exc}") from None
    if not isinstance(raw, dict) or "features" not in raw:
        raise BundleError(f"{path}: a feature spec is an object with a 'features' list")
    try:
        parse_features(raw["features"])
    except ManifestError as exc:
        raise BundleError(f"{path}: {exc}") from None
    return raw


def _cell(feature: Feature, text: str, where: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    if feature.type == "category":
        return text
    if feature.type == "boolean":
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise BundleError(f"{where}: {text!r} is not a boolean")
    try:
        number = float(text)
    except ValueError:
        raise BundleError(f"{where}: {text!r} is not a number") from None
    return int(number) if feature.type == "integer" and number.is_integer() else number


def read_sample_csv(path: Path, features: Sequence[Feature]) -> list[dict[str, Any]]:
    """Rows of a CSV with a header naming the features, typed by the spec."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [f.name for f in features if f.name not in header]
        if missing:
            raise BundleError(f"{path}: the header lacks the features {missing}")
        return [
            {
                f.name: _cell(f, row[f.name] or "", f"{path} line {i + 2}, {f.name}")
                for f in features
            }
            for i, row in enumerate(reader)
        ]


def profile(features: Sequence[Feature], matrix: np.ndarray) -> dict[str, Any]:
    """Baseline distribution of each feature over the sample, for drift checks later: the
    drift baseline (deciles or frequencies, missing rate, range) and descriptive figures.
    The model's outputs on the sample are added by `make_bundle` (`drift.output_baseline`)."""
    out: dict[str, Any] = {
        "version": drift.BASELINE_VERSION,
        "rows": int(matrix.shape[0]),
        "features": {},
    }
    for col, feature in enumerate(features):
        values = matrix[:, col]
        kind = "category" if feature.type == "category" else "number"
        entry = drift.feature_baseline(kind, values)
        entry["missing"] = round(entry["missing_rate"] * len(values))
        if kind == "number" and "min" in entry:
            numbers = np.asarray(values, dtype=float)
            finite = numbers[np.isfinite(numbers)]
            entry |= {
                "mean": float(finite.mean()),
                "std": float(finite.std()),
                "quantiles": {str(q): float(np.quantile(finite, q)) for q in QUANTILES},
            }
        out["features"][feature.name] = entry
    return out


def _outputs_profile(predictor: Predictor, matrix: np.ndarray) -> dict[str, Any]:
    """The model's own outputs on the whole sample, for prediction drift."""
    try:
        labels, probabilities = predictor.predict_arrays(matrix)
    except Exception as exc:  # the user's estimator may raise anything on our array
        raise BundleError(f"the model cannot predict the whole sample: {exc}") from None
    scores = (
        probabilities[:, 1] if probabilities is not None and probabilities.shape[1] == 2 else None
    )
    return drift.output_baseline(predictor.manifest.task, labels.tolist(), scores)


def _task_of(estimator: Any) -> str:
    """What the model's predictions mean; a kind lambdaserve cannot describe is refused."""
    from sklearn.base import is_classifier, is_clusterer, is_outlier_detector, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    if is_clusterer(estimator):
        return "clustering"
    if is_outlier_detector(estimator):
        return "outlier_detection"
    raise BundleError(
        f"{type(estimator).__name__} is not a classifier, regressor, clusterer or outlier "
        "detector: lambdaserve cannot say what its predictions mean"
    )


def _check_model(estimator: Any, features: Sequence[Feature], spec: dict[str, Any]) -> str:
    if not hasattr(estimator, "predict"):
        raise BundleError(f"{type(estimator).__name__} has no predict(): not a fitted estimator")
    n_in = getattr(estimator, "n_features_in_", None)
    if n_in is not None and n_in != len(features):
        raise BundleError(
            f"the model was fitted on {n_in} features, the spec lists {len(features)}"
        )
    task = _task_of(estimator)
    if spec.get("task") not in (None, task):
        raise BundleError(f"the spec says task {spec['task']!r}, the model is a {task} model")
    if task == "classification":
        model_classes = np.asarray(estimator.classes_).tolist()
        declared = spec.get("classes")
        if declared is not None and list(declared) != model_classes:
            raise BundleError(f"the spec says classes {declared}, the model has {model_classes}")
    return task


def _as_served(
    estimator: Any, spec: dict[str, Any], sample_rows: list[dict[str, Any]]
) -> tuple[Any, tuple[Feature, ...], str, np.ndarray]:
    """The estimator as it will serve (a DataFrame-fitted one rewritten to positions and
    proven equal), its features in the order it reads them, its task, and the sample as
    lambdaserve will feed it."""
    features = parse_features(spec["features"])
    if not sample_rows:
        raise BundleError("the sample has no rows: golden examples and the baseline need some")
    original = estimator
    try:
        # Fitted on a DataFrame: select by position instead, in the order the model reads.
        estimator, in_order = positions.rewrite(estimator, features)
        features = tuple(in_order)
    except positions.RewriteError as exc:
        raise BundleError(f"the model was fitted on a DataFrame and {exc}") from None
    task = _check_model(estimator, features, spec)
    try:
        matrix = RequestParser(features, max_rows=max(len(sample_rows), 1)).parse(
            {"instances": sample_rows}
        )
    except RequestError as exc:
        shown = "; ".join(f"row {e.row} {e.field}: {e.message}" for e in exc.errors[:5])
        raise BundleError(f"the sample breaks the feature spec: {exc.detail}: {shown}") from None
    if estimator is not original:
        try:
            positions.prove_equal(original, estimator, sample_rows, matrix, features)
        except positions.RewriteError as exc:
            raise BundleError(f"the model was fitted on a DataFrame and {exc}") from None
    return estimator, features, task, matrix


def _golden_examples(
    predictor: Predictor, matrix: np.ndarray, sample_rows: list[dict[str, Any]]
) -> list[manifest_io.GoldenExample]:
    """The first sample rows with the exact outputs the model gives them as served."""
    golden_rows = sample_rows[:GOLDEN_EXAMPLES]
    try:
        result = predictor.predict(matrix[: len(golden_rows)])
    except Exception as exc:  # the user's estimator may raise anything on our array
        raise BundleError(
            f"the model cannot predict the sample as lambdaserve will feed it: {exc}"
        ) from None
    probabilities = result.get("probabilities")
    return [
        manifest_io.GoldenExample(
            inputs={k: v for k, v in row.items() if v is not None},
            prediction=result["predictions"][i],
            probabilities=probabilities[i] if probabilities else None,
        )
        for i, row in enumerate(golden_rows)
    ]


def make_bundle(
    estimator: Any,
    *,
    name: str,
    spec: dict[str, Any],
    sample_rows: list[dict[str, Any]],
    out_dir: Path,
    metrics: dict[str, float] | None = None,
    engine: str = "sklearn",
    category_input: str = "raw",
) -> Manifest:
    """Write model.joblib (and, for the ONNX engine, model.onnx once it passed the parity
    proof: convert.py) and manifest.json into out_dir; return the manifest. `engine`: sklearn,
    onnx or auto; `category_input` "codes": the model was fitted on category codes."""
    import joblib

    estimator, features, task, matrix = _as_served(estimator, spec, sample_rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    joblib.dump(estimator, model_path)
    classes = np.asarray(estimator.classes_).tolist() if task == "classification" else None
    draft = Manifest(
        name=name,
        sha256=sha256_of(model_path),
        frameworks=runtime_versions(),
        estimator=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        task=task,  # type: ignore[arg-type]
        features=features,
        classes=classes,
        metrics={k: float(v) for k, v in (metrics or {}).items() if math.isfinite(v)},
        baseline_profile=profile(features, matrix),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        created_by=f"{getpass.getuser()}@{socket.gethostname()}",
        category_input=category_input,
    )
    try:  # golden examples and the output baseline come from the engine that will serve
        fields, predictor = convert.choose(
            engine,
            estimator,
            Predictor(draft, estimator, max(len(matrix), 1)),
            sample_rows,
            out_dir,
        )
    except convert.ConversionRefusedError as exc:
        raise BundleError(f"--engine onnx refused: {exc}") from None
    draft = Manifest(**{**draft.__dict__, **fields})
    predictor = Predictor(draft, predictor.estimator, max_rows=max(len(matrix), 1))
    golden = _golden_examples(predictor, matrix, sample_rows)
    draft.baseline_profile["outputs"] = _outputs_profile(predictor, matrix)
    final = Manifest(**{**draft.__dict__, "golden_examples": golden})
    manifest_io.write(final, out_dir)
    _check_budget(final, out_dir)
    # The same model file (and graph) takes the same memory: measured once per process.
    key = (final.sha256, final.engine, str((final.onnx or {}).get("sha256")))
    if key not in _MEASURED:
        _MEASURED[key] = measure_memory(out_dir)
    model_bytes = _MEASURED[key]
    final = Manifest(
        **{
            **final.__dict__,
            "memory": {
                "model_bytes": model_bytes,
                "memory_size_mb": budget.memory_size_mb(model_bytes, final.engine),
            },
        }
    )
    manifest_io.write(final, out_dir)
    return final


_MEASURED: dict[tuple[str, str, str], int] = {}

# Run in a fresh interpreter: the resident size it reaches loading the bundle and answering its
# golden examples, less what it held with the runtime's libraries imported, is the model's.
_MEMORY_PROBE = """
import json, resource, sys
import joblib, numpy, sklearn
from lambdaserve.serving.predictor import Predictor
try:
    import onnxruntime
except ImportError:
    pass

def status(field):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(field + ":")) * 1024

def maxrss():  # bytes on macOS, KiB on Linux
    found = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return found if sys.platform == "darwin" else found * 1024

try:  # Linux: reset the peak (the imports') to what is resident now
    before, peak = status("VmRSS"), "VmHWM"
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
except OSError:
    before, peak = maxrss(), None  # elsewhere: the peak over the imports' peak, a floor
predictor = Predictor.load(sys.argv[1])
rows = [g.inputs for g in predictor.manifest.golden_examples]
if rows:
    predictor.predict(predictor.parse({"instances": rows}))
after = status(peak) if peak else maxrss()
print(json.dumps({"model_bytes": max(0, after - before)}))
"""


def measure_memory(bundle_dir: Path) -> int:
    """What the bundle's model takes loaded and answering its golden examples, in bytes: the
    peak resident size of a fresh interpreter over what it held with the runtime imported."""
    import subprocess  # nosec B404 - this interpreter, a fixed script
    import sys

    done = subprocess.run(  # nosec B603
        [sys.executable, "-c", _MEMORY_PROBE, str(bundle_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise BundleError(f"measuring the loaded model failed: {done.stderr.strip()[-300:]}")
    measured: int = json.loads(done.stdout.strip().splitlines()[-1])["model_bytes"]
    return measured


def _check_budget(manifest: Manifest, out_dir: Path) -> None:
    """Refuse (and remove) a bundle whose model layer cannot fit beside its engine's
    deployment under Lambda's unzipped limit: found here, not at the first deploy."""
    files = [out_dir / MODEL_FILE, out_dir / manifest_io.MANIFEST_FILE]
    if manifest.engine == "onnx" and manifest.onnx:
        files.append(out_dir / str(manifest.onnx["file"]))
    model_bytes = sum(f.stat().st_size for f in files if f.exists())
    planned = budget.model_budget(model_bytes, manifest.engine)
    if not planned.fits:
        for made in files:
            made.unlink(missing_ok=True)
        raise BundleError(budget.refusal(planned, manifest.engine))
