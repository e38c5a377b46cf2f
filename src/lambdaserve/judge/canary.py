"""The canary judge, pure: the canary version against the stable one over the same window and
the same traffic. It checks errors, p99 latency, the two versions' predictions on that traffic,
and the canary against its own bundle's baseline (its outputs and its inputs). The verdict is
`pass`, `fail` (naming the check and by how much) or `wait` (not enough evidence yet). It never
moves the alias: `rollout` does."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lambdaserve.monitor import drift


@dataclass(frozen=True)
class JudgeSettings:
    """Defaults and why:
    - min_requests 100, min_rows 300: below them an error rate or a score distribution is noise
      (PSI between two samples of 300 from one distribution is about 0.03 at 10 bins);
    - max_error_increase 0.01: one more failed request in a hundred than stable is a bug;
    - max_p99_ratio 1.5 plus p99_slack_ms 20: a slower model, not a noisy millisecond;
    - max_prediction_shift 0.1, max_class_mix_shift 0.1: on the sample model and 1,000 rows of
      the same traffic (the models of tests/unit/test_judge.py), a model retrained on other
      data moved the scores by 0.029 (Wasserstein-1) and the class mix by 0.056 (JS); one
      trained on labels that hide most buyers moved them by 0.175 and 0.137. PSI is not used
      here: two good models' scores differ in calibration enough to reach PSI 0.2;
    - max_baseline_shift 0.25 and max_drifted_features 0: the canary's outputs and inputs
      against its own bundle's sample, with the monitoring rule's significant level."""

    min_requests: int = 100
    min_rows: int = 300
    max_error_increase: float = 0.01
    max_p99_ratio: float = 1.5
    p99_slack_ms: float = 20.0
    max_prediction_shift: float = 0.1
    max_class_mix_shift: float = 0.1
    max_baseline_shift: float = 0.25
    max_drifted_features: int = 0


@dataclass
class VersionEvidence:
    """What one function version did in the window."""

    version: str
    invocations: float | None = None  # None: no metrics (not known, not zero)
    errors: float | None = None
    p99_ms: float | None = None
    window: drift.Window = field(default_factory=lambda: drift.Window([]))
    profile: dict[str, Any] | None = None  # its bundle's baseline


def _check(
    name: str, status: str, value: Any = None, threshold: Any = None, detail: str = ""
) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "value": value,
        "threshold": threshold,
        "detail": detail,
    }


def _errors(stable: VersionEvidence, canary: VersionEvidence, s: JudgeSettings) -> dict[str, Any]:
    if canary.invocations is None:
        return _check("errors", "skipped", detail="no Lambda metrics for the window")
    if canary.invocations < s.min_requests:
        detail = f"{canary.invocations:.0f} canary invocations of {s.min_requests} needed"
        return _check("errors", "wait", canary.invocations, s.min_requests, detail)
    canary_rate = (canary.errors or 0) / canary.invocations
    stable_rate = (stable.errors or 0) / stable.invocations if stable.invocations else 0.0
    increase = canary_rate - stable_rate
    return _check(
        "errors",
        "fail" if increase > s.max_error_increase else "pass",
        round(increase, 5),
        s.max_error_increase,
        f"error rate {canary_rate:.2%} (canary) against {stable_rate:.2%} (stable)",
    )


def _latency(stable: VersionEvidence, canary: VersionEvidence, s: JudgeSettings) -> dict[str, Any]:
    if canary.p99_ms is None or stable.p99_ms is None:
        return _check("latency_p99", "skipped", detail="no p99 duration for both versions")
    limit = stable.p99_ms * s.max_p99_ratio + s.p99_slack_ms
    return _check(
        "latency_p99",
        "fail" if canary.p99_ms > limit else "pass",
        round(canary.p99_ms, 2),
        round(limit, 2),
        f"p99 {canary.p99_ms:.1f} ms (canary) against {stable.p99_ms:.1f} ms (stable)",
    )


def _mix(window: drift.Window) -> dict[str, int]:
    return dict(Counter(str(p) for p in window.predictions))


def _numeric(values: list[Any]) -> np.ndarray | None:
    """Predictions as numbers if they are a regression's values (not a few class labels)."""
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    return out if len(np.unique(out)) > 20 else None


def _predictions(
    stable: VersionEvidence, canary: VersionEvidence, s: JudgeSettings
) -> list[dict[str, Any]]:
    """The two versions' outputs on the same traffic: the scores' Wasserstein-1 distance (the
    mean absolute move of a score, in probability; for a regression, in the stable's standard
    deviations) and the JS distance of the predicted class mix."""
    from scipy.stats import wasserstein_distance

    rows = min(len(stable.window.rows), len(canary.window.rows))
    if rows < s.min_rows:
        detail = (
            f"{len(canary.window.rows)} canary and {len(stable.window.rows)} stable "
            f"captured rows; {s.min_rows} of each needed"
        )
        return [_check("predictions", "wait", rows, s.min_rows, detail)]
    checks = []
    base, other = _numeric(stable.window.predictions), _numeric(canary.window.predictions)
    if stable.window.scores and canary.window.scores:
        shift = float(wasserstein_distance(stable.window.scores, canary.window.scores))
        what = "score"
    elif base is not None and other is not None:
        shift = float(wasserstein_distance(base, other)) / max(float(base.std()), 1e-12)
        what = "prediction (in stable's standard deviations)"
    else:
        shift, what = float("nan"), ""
    if what:
        checks.append(
            _check(
                "prediction_shift",
                "fail" if shift > s.max_prediction_shift else "pass",
                round(shift, 4),
                s.max_prediction_shift,
                f"Wasserstein-1 distance of the {what} against the stable's",
            )
        )
    if base is None:
        mix = drift.js_distance(_mix(stable.window), _mix(canary.window))
        checks.append(
            _check(
                "class_mix",
                "fail" if mix > s.max_class_mix_shift else "pass",
                round(mix, 4),
                s.max_class_mix_shift,
                "JS distance of the predicted classes against the stable's",
            )
        )
    return checks


def _own_baseline(canary: VersionEvidence, s: JudgeSettings) -> list[dict[str, Any]]:
    if canary.profile is None:
        return [_check("baseline", "skipped", detail="the canary's bundle has no drift baseline")]
    t = drift.Thresholds(
        min_rows=s.min_rows, prediction_psi=s.max_baseline_shift, prediction_js=s.max_baseline_shift
    )
    verdict = drift.compare(canary.profile, canary.window, t)
    if verdict["status"] == "no_baseline":
        return [_check("baseline", "skipped", detail="the canary's bundle has no drift baseline")]
    if verdict["status"] == "insufficient_data":
        return [_check("baseline", "wait", verdict["rows"], s.min_rows, "too few captured rows")]
    prediction = verdict["prediction"]
    drifted = [
        f"{f['name']} ({f['reason']})" for f in verdict["features"] if f["status"] == "drift"
    ]
    return [
        _check(
            "output_vs_baseline",
            "fail" if prediction["status"] == "drift" else "pass",
            prediction["value"],
            s.max_baseline_shift,
            f"{prediction['measure'].upper()} of the canary's outputs against its bundle's",
        ),
        _check(
            "input_drift",
            "fail" if len(drifted) > s.max_drifted_features else "pass",
            len(drifted),
            s.max_drifted_features,
            "drifted features: " + (", ".join(drifted) or "none"),
        ),
    ]


def judge(
    stable: VersionEvidence, canary: VersionEvidence, settings: JudgeSettings | None = None
) -> dict[str, Any]:
    """pass only when every check that has data passes and none waits; fail on any failure."""
    s = settings or JudgeSettings()
    checks = [
        _errors(stable, canary, s),
        _latency(stable, canary, s),
        *_predictions(stable, canary, s),
        *_own_baseline(canary, s),
    ]
    statuses = {c["status"] for c in checks}
    verdict = "fail" if "fail" in statuses else "wait" if "wait" in statuses else "pass"
    failed = [c for c in checks if c["status"] == "fail"]
    return {
        "verdict": verdict,
        "stable": stable.version,
        "canary": canary.version,
        "rows": {"stable": len(stable.window.rows), "canary": len(canary.window.rows)},
        "checks": checks,
        "summary": "; ".join(f"{c['name']} {c['value']} > {c['threshold']}" for c in failed)
        or verdict,
    }
