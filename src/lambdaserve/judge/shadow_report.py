"""`lambdaserve shadow report`: how a shadow version's answers compare with live's on the same
requests, from the shadow records beside capture in the monitoring bucket.

Figures: label agreement (classifiers: the same class; regressors: within `tolerance` of the
live answer's scale, the spread between its 1st and 99th percentiles), the absolute
difference of the probabilities (or the predictions), the shadow's refusals of rows live
answered, and each version's predict latency. Verdict: `agree` when agreement is at least
`min_agreement` and the shadow refused nothing, `disagree` otherwise, `insufficient_data` under
`min_rows` compared rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from lambdaserve.monitor.report import STYLE, badge
from lambdaserve.monitor.window import CaptureReader
from lambdaserve.serving.mirror import SHADOW

DEFAULTS = {"min_agreement": 0.99, "min_rows": 200, "tolerance": 0.01}


@dataclass
class Comparison:
    """Paired answers of the two versions, gathered record by record."""

    live: list[Any]
    shadow: list[Any]
    live_p: list[list[float]]
    shadow_p: list[list[float]]
    live_ms: list[float]
    shadow_ms: list[float]
    refused_rows: int = 0
    requests: int = 0

    @classmethod
    def of(cls, records: list[dict[str, Any]]) -> Comparison:
        c = cls([], [], [], [], [], [])
        c.requests = len({r.get("request") for r in records})
        for r in records:
            live, shadow = r["live"], r["shadow"]
            if "refused" in shadow:
                c.refused_rows += int(r["rows"])
                continue
            c.live += live["predictions"]
            c.shadow += shadow["predictions"]
            if live.get("probabilities") and shadow.get("probabilities"):
                c.live_p += live["probabilities"]
                c.shadow_p += shadow["probabilities"]
            if r.get("parts", 1) == 1 and live.get("latency_ms") is not None:
                c.live_ms.append(float(live["latency_ms"]))  # a request's own timing
                c.shadow_ms.append(float(shadow["latency_ms"]))
        return c


def _quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None}
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}


def compare(records: list[dict[str, Any]], **thresholds: float) -> dict[str, Any]:
    """The figures and the verdict of a set of shadow records."""
    t = {**DEFAULTS, **thresholds}
    c = Comparison.of(records)
    rows = len(c.live)
    out: dict[str, Any] = {
        "requests": c.requests,
        "rows": rows,
        "refused_rows": c.refused_rows,
        "thresholds": t,
        "latency_ms": {"live": _quantiles(c.live_ms), "shadow": _quantiles(c.shadow_ms)},
    }
    live_p50, shadow_p50 = out["latency_ms"]["live"]["p50"], out["latency_ms"]["shadow"]["p50"]
    out["latency_ratio_p50"] = round(shadow_p50 / live_p50, 3) if live_p50 and shadow_p50 else None
    if rows:
        out.update(_agreement(c, t["tolerance"]))
    if rows < t["min_rows"]:
        out["verdict"] = "insufficient_data"
    elif out["agreement"] >= t["min_agreement"] and not c.refused_rows:
        out["verdict"] = "agree"
    else:
        out["verdict"] = "disagree"
    return out


def _agreement(c: Comparison, tolerance: float) -> dict[str, Any]:
    classifier = bool(c.live_p) or any(isinstance(v, str | bool) for v in c.live[:10])
    if classifier:
        same = np.array([a == b for a, b in zip(c.live, c.shadow, strict=True)])
        labels = sorted({str(v) for v in c.live} | {str(v) for v in c.shadow})
        mix = {
            label: {
                "live": round(sum(str(v) == label for v in c.live) / len(c.live), 4),
                "shadow": round(sum(str(v) == label for v in c.shadow) / len(c.shadow), 4),
            }
            for label in labels
        }
        out: dict[str, Any] = {"task": "classification", "agreement": float(same.mean())}
        out["class_mix"] = mix
        if c.live_p:
            diff = np.abs(np.array(c.live_p, float) - np.array(c.shadow_p, float)).max(axis=1)
            out["probability_diff"] = _spread(diff)
        return out
    live, shadow = np.array(c.live, float), np.array(c.shadow, float)
    diff = np.abs(live - shadow)
    scale = float(np.subtract(*np.percentile(live, [99, 1]))) or 1.0
    return {
        "task": "regression",
        "agreement": float((diff <= tolerance * scale).mean()),
        "scale": scale,
        "prediction_diff": _spread(diff),
    }


def _spread(diff: np.ndarray) -> dict[str, float]:
    return {
        "mean": round(float(diff.mean()), 6),
        "p99": round(float(np.percentile(diff, 99)), 6),
        "max": round(float(diff.max()), 6),
    }


def shadow_records(
    s3: Any, bucket: str, shadow: dict[str, Any], end: dt.datetime
) -> list[dict[str, Any]]:
    """The records of one shadow (its function version, from its start to `end`)."""
    start = dt.datetime.fromisoformat(str(shadow["started"]))
    if shadow.get("stopped"):
        end = min(end, dt.datetime.fromisoformat(str(shadow["stopped"])) + dt.timedelta(minutes=5))
    reader = CaptureReader(s3, bucket, marker=SHADOW)
    version = str(shadow["function_version"])
    records = reader.records(start, end, str(shadow["model"]), str(shadow["model_version"]))
    return [r for r in records if str(r.get("function_version")) == version]


def text(report: dict[str, Any]) -> str:
    s, r = report["shadow"], report
    lines = [
        f"shadow version {s['function_version']} ({s['model']} v{s['model_version']}, "
        f"{s['percent']:g}% mirrored, {s['state']}) against live: {r['verdict']}",
        f"  compared {r['rows']:,} rows of {r['requests']:,} requests; "
        f"shadow refused {r['refused_rows']:,} rows",
    ]
    if "agreement" in r:
        lines.append(
            f"  agreement {r['agreement']:.2%} (at least {r['thresholds']['min_agreement']:.0%})"
        )
    for key in ("probability_diff", "prediction_diff"):
        if key in r:
            d, what = r[key], key.replace("_", " ")
            lines.append(f"  {what}: mean {d['mean']:.4f} p99 {d['p99']:.4f} max {d['max']:.4f}")
    lat = r["latency_ms"]
    lines.append(
        f"  predict latency p50/p99 ms: live {lat['live']['p50']}/{lat['live']['p99']}, "
        f"shadow {lat['shadow']['p50']}/{lat['shadow']['p99']}"
    )
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    """One self-contained page, in the monitoring report's style."""
    s, verdict = report["shadow"], report["verdict"]
    colour = {"agree": "ok", "disagree": "drift"}.get(verdict, verdict)
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td>{report['class_mix'][label]['live']:.1%}</td>"
        f"<td>{report['class_mix'][label]['shadow']:.1%}</td></tr>"
        for label in report.get("class_mix", {})
    )
    mix = (
        "<h2>Class mix</h2><table><tr><th>class</th><th>live</th><th>shadow</th></tr>"
        f"{rows}</table>"
        if rows
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>lambdaserve shadow: {escape(s["model"])} v{escape(str(s["model_version"]))}</title>
<style>{STYLE}</style></head><body>
<h1>Shadow {escape(s["model"])} v{escape(str(s["model_version"]))} {badge(colour)}
<span class="muted">{escape(verdict)}</span></h1>
<div class="muted">Function version {escape(str(s["function_version"]))} shadowing live
(version {escape(str(s.get("live_version", "")))}) on {s["percent"]:g}% of requests, since
{escape(str(s["started"]))} ({escape(str(s["state"]))}).</div>
<pre>{escape(text(report))}</pre>{mix}</body></html>
"""
