"""Drift measures, pure: the baseline a bundle records and the comparison of a window of captured
rows against it. Numbers: PSI over the baseline's decile bins; categories: Jensen-Shannon
distance; the model's outputs: PSI over the baseline's score (or prediction) deciles, or JS over
the class mix. Below a minimum sample the verdict is `insufficient_data`, never drift."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BASELINE_VERSION = 2  # profiles without it (older bundles) hold no drift baseline
DECILES = np.linspace(0.1, 0.9, 9)
SMOOTHING = 0.5  # added to every bin's count, so an empty bin is rare, not impossible
# A missing rate "moves" only when the move is also beyond sampling noise: this many standard
# errors of the baseline's rate at the window's size. At 440 rows a 40% missing rate wanders
# by 5 points one window in 30 by chance alone; at 5,000 rows the 5-point rule governs.
NOISE_Z = 3.0


@dataclass(frozen=True)
class Thresholds:
    """When a measure is a warning or drift. PSI 0.1 / 0.25 is the credit-risk rule of thumb;
    JS distance 0.1 / 0.2 flags about the same size of change on a category (a 10-15 share
    point move between two common categories reaches 0.1)."""

    psi_warn: float = 0.1
    psi_drift: float = 0.25
    js_warn: float = 0.1
    js_drift: float = 0.2
    # The output is one measure the business sees (not one of many features), so it alarms at
    # the rule's "investigate" level; warn at half of it.
    prediction_psi: float = 0.1
    prediction_js: float = 0.1
    missing_drift: float = 0.05  # absolute change in the missing rate
    out_of_range_drift: float = 0.05  # share of values outside the baseline's [min, max]
    min_rows: int = 500

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Thresholds:
        """DRIFT_PSI_WARN, DRIFT_PSI, DRIFT_JS_WARN, DRIFT_JS, DRIFT_PREDICTION_PSI,
        DRIFT_PREDICTION_JS, DRIFT_MISSING, DRIFT_OUT_OF_RANGE, DRIFT_MIN_ROWS; unset: defaults."""
        names = {
            "psi_warn": "DRIFT_PSI_WARN",
            "psi_drift": "DRIFT_PSI",
            "js_warn": "DRIFT_JS_WARN",
            "js_drift": "DRIFT_JS",
            "prediction_psi": "DRIFT_PREDICTION_PSI",
            "prediction_js": "DRIFT_PREDICTION_JS",
            "missing_drift": "DRIFT_MISSING",
            "out_of_range_drift": "DRIFT_OUT_OF_RANGE",
            "min_rows": "DRIFT_MIN_ROWS",
        }
        values: dict[str, Any] = {}
        for attr, var in names.items():
            if env.get(var, "") != "":
                values[attr] = int(env[var]) if attr == "min_rows" else float(env[var])
        return cls(**values)

    def status(self, measure: str, value: float, prediction: bool = False) -> str:
        if prediction:
            drift = self.prediction_psi if measure == "psi" else self.prediction_js
            warn = drift / 2
        elif measure == "psi":
            warn, drift = self.psi_warn, self.psi_drift
        else:
            warn, drift = self.js_warn, self.js_drift
        return "drift" if value >= drift else "warn" if value >= warn else "ok"


# -- the baseline ----------------------------------------------------------------------------
def numeric_bins(values: np.ndarray) -> dict[str, Any]:
    """Interior decile edges (ties merged) and the count of values in each bin: bin 0 is
    x <= edges[0], bin i is edges[i-1] < x <= edges[i], the last bin x > edges[-1]."""
    edges = np.array([])
    if len(values):
        edges = np.unique(np.quantile(values, DECILES, method="inverted_cdf"))
    return {"edges": edges.tolist(), "counts": bin_counts(edges, values).tolist()}


def bin_counts(edges: Sequence[float] | np.ndarray, values: np.ndarray) -> np.ndarray:
    index = np.searchsorted(np.asarray(edges, dtype=float), values, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def feature_baseline(kind: str, values: np.ndarray) -> dict[str, Any]:
    """One feature's baseline: its deciles (numbers) or frequencies (categories), its missing
    rate and, for numbers, the range seen."""
    if kind == "category":
        present = [v for v in values.tolist() if isinstance(v, str)]
        rows = len(values)
        return {
            "kind": "category",
            "frequencies": dict(sorted(Counter(present).items())),
            "missing_rate": (rows - len(present)) / rows if rows else 0.0,
        }
    numbers = np.asarray(values, dtype=float)
    finite = numbers[np.isfinite(numbers)]
    out: dict[str, Any] = {
        "kind": "number",
        "missing_rate": (len(numbers) - len(finite)) / len(numbers) if len(numbers) else 0.0,
        "deciles": numeric_bins(finite),
    }
    if len(finite):
        out |= {"min": float(finite.min()), "max": float(finite.max())}
    return out


def output_baseline(
    task: str, predictions: Sequence[Any], scores: np.ndarray | None
) -> dict[str, Any]:
    """The model's own outputs on the sample: positive-class score deciles (binary
    classifiers), the class mix (other classifiers and clusterers), prediction deciles
    (regression)."""
    if scores is not None:
        return {"measure": "psi", "of": "score", "deciles": numeric_bins(scores)}
    if task == "regression":
        values = np.asarray(predictions, dtype=float)
        return {"measure": "psi", "of": "prediction", "deciles": numeric_bins(values)}
    mix = Counter(str(p) for p in predictions)
    return {"measure": "js", "of": "class", "frequencies": dict(sorted(mix.items()))}


# -- the measures ----------------------------------------------------------------------------
def _shares(counts: np.ndarray) -> np.ndarray:
    smoothed = counts.astype(float) + SMOOTHING
    return smoothed / smoothed.sum()


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    p, q = _shares(expected), _shares(actual)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(expected: dict[str, int], actual: dict[str, int]) -> float:
    """Jensen-Shannon distance (base 2, so 0 to 1) of two category counts."""
    keys = sorted(set(expected) | set(actual))
    p = _shares(np.array([expected.get(k, 0) for k in keys]))
    q = _shares(np.array([actual.get(k, 0) for k in keys]))
    m = (p + q) / 2
    divergence = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    return float(math.sqrt(max(divergence, 0.0)))


@dataclass
class FeatureDrift:
    name: str
    measure: str
    value: float
    status: str
    missing_rate: float
    baseline_missing_rate: float
    out_of_range_rate: float
    baseline: list[float]  # shares per bin (or category), for the report's plot
    current: list[float]
    labels: list[str]
    # What decided the status, and its figure in words: the distribution's measure, or a
    # missing or out-of-range rate that moved while the measure stayed quiet.
    decided_by: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.decided_by:
            self.decided_by = self.measure
            self.reason = f"{self.measure.upper()} {self.value:.3f}"

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _numeric(name: str, base: dict[str, Any], column: np.ndarray, t: Thresholds) -> FeatureDrift:
    numbers = np.asarray(column, dtype=float)
    finite = numbers[np.isfinite(numbers)]
    edges = base["deciles"]["edges"]
    expected = np.asarray(base["deciles"]["counts"])
    actual = bin_counts(edges, finite)
    value = psi(expected, actual)
    low, high = base.get("min", -math.inf), base.get("max", math.inf)
    outside = float(np.mean((finite < low) | (finite > high))) if len(finite) else 0.0
    missing = 1 - len(finite) / len(numbers) if len(numbers) else 0.0
    labels = [f"≤ {edges[0]:.3g}"] if edges else ["all"]
    labels += [f"{a:.3g}-{b:.3g}" for a, b in itertools.pairwise(edges)]
    labels += [f"> {edges[-1]:.3g}"] if edges else []
    return _verdict(
        FeatureDrift(
            name,
            "psi",
            value,
            t.status("psi", value),
            missing,
            base["missing_rate"],
            outside,
            (expected / max(expected.sum(), 1)).tolist(),
            (actual / max(actual.sum(), 1)).tolist(),
            labels,
        ),
        t,
        len(numbers),
    )


def _category(name: str, base: dict[str, Any], column: np.ndarray, t: Thresholds) -> FeatureDrift:
    present = [v for v in column.tolist() if isinstance(v, str)]
    actual = dict(Counter(present))
    expected: dict[str, int] = base["frequencies"]
    value = js_distance(expected, actual)
    unseen = sum(n for k, n in actual.items() if k not in expected)
    labels = sorted(set(expected) | set(actual))
    total_e, total_a = max(sum(expected.values()), 1), max(len(present), 1)
    return _verdict(
        FeatureDrift(
            name,
            "js",
            value,
            t.status("js", value),
            1 - len(present) / len(column) if len(column) else 0.0,
            base["missing_rate"],
            unseen / total_a,
            [expected.get(k, 0) / total_e for k in labels],
            [actual.get(k, 0) / total_a for k in labels],
            labels,
        ),
        t,
        len(column),
    )


def missing_moved(baseline: float, current: float, rows: int, t: Thresholds) -> bool:
    """The missing rate moved by at least `missing_drift` and by more than sampling noise
    (NOISE_Z standard errors of the baseline's rate over `rows`) could explain."""
    noise = NOISE_Z * math.sqrt(baseline * (1 - baseline) / max(rows, 1))
    return abs(current - baseline) >= max(t.missing_drift, noise)


def _verdict(drift: FeatureDrift, t: Thresholds, rows: int) -> FeatureDrift:
    """A feature drifts on its measure, or when its missing or out-of-range rate moves; the
    verdict names what decided it (a report must not say "PSI 0.009: drift")."""
    if drift.status == "drift":
        return drift
    if missing_moved(drift.baseline_missing_rate, drift.missing_rate, rows, t):
        drift.status, drift.decided_by = "drift", "missing_rate"
        drift.reason = f"missing rate {drift.missing_rate:.1%} vs {drift.baseline_missing_rate:.1%}"
    elif drift.out_of_range_rate >= t.out_of_range_drift:
        drift.status, drift.decided_by = "drift", "out_of_range"
        drift.reason = (
            f"out of the baseline's range {drift.out_of_range_rate:.1%} "
            f"(at most {t.out_of_range_drift:.0%})"
        )
    return drift


@dataclass
class Window:
    """The captured rows of one model version, in feature order, with the model's outputs."""

    features: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # positive-class probability, binary

    def column(self, index: int) -> np.ndarray:
        out = np.empty(len(self.rows), dtype=object)
        out[:] = [None if row[index] is None else row[index] for row in self.rows]
        return out


def compare(
    profile: dict[str, Any], window: Window, thresholds: Thresholds | None = None
) -> dict[str, Any]:
    """The verdict for one window: status, per-feature measures and the prediction's."""
    t = thresholds or Thresholds()
    rows = len(window.rows)
    if profile.get("version") != BASELINE_VERSION:
        return {"status": "no_baseline", "rows": rows, "features": [], "prediction": None}
    if rows < t.min_rows:
        return {"status": "insufficient_data", "rows": rows, "features": [], "prediction": None}
    features = []
    for index, name in enumerate(window.features):
        base = profile["features"].get(name)
        if base is None:
            continue
        column = window.column(index)
        measure = _category if base["kind"] == "category" else _numeric
        features.append(measure(name, base, column, t))
    prediction = _prediction(profile["outputs"], window, t)
    drifted = [f for f in features if f.status == "drift"]
    status = "drift" if drifted or prediction.status == "drift" else "ok"
    return {
        "status": status,
        "rows": rows,
        "features": [f.as_dict() for f in features],
        "prediction": prediction.as_dict(),
        "drifted_features": len(drifted),
    }


def _prediction(outputs: dict[str, Any], window: Window, t: Thresholds) -> FeatureDrift:
    """Drift of the model's own outputs, with the prediction's threshold."""
    if outputs["measure"] == "js":
        column = np.empty(len(window.predictions), dtype=object)
        column[:] = [str(p) for p in window.predictions]
        base = {"frequencies": outputs["frequencies"], "missing_rate": 0.0}
        out = _category("prediction (class mix)", base, column, t)
    else:
        values = window.scores if outputs["of"] == "score" else window.predictions
        base = {"deciles": outputs["deciles"], "missing_rate": 0.0}
        name = f"prediction ({outputs['of']})"
        out = _numeric(name, base, np.asarray(values, dtype=float), t)
    out.status = t.status(out.measure, out.value, prediction=True)
    return out
