"""The monitor's HTML report: one self-contained page (inline SVG, no script, nothing fetched),
a verdict on top, then one plot per feature of the baseline's shares against the window's."""

from __future__ import annotations

import math
from html import escape
from typing import Any

COLOURS = {"ok": "#1a7f37", "warn": "#9a6700", "drift": "#cf222e"}
VERDICT = {
    "ok": "No drift",
    "drift": "Drift",
    "insufficient_data": "Not enough captured rows to judge",
    "no_baseline": "This model version's bundle has no drift baseline",
}
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} .muted{color:#57606a}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}
table{border-collapse:collapse;margin:12px 0}
td,th{padding:4px 10px;border-bottom:1px solid #d0d7de;text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;width:330px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""


def badge(status: str) -> str:
    colour = COLOURS.get(status, "#57606a")
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


# Axis labels are written at 45 degrees: two neighbours stand apart by slot * sin(45) across
# their baselines, and must not come closer than a line of text. Where bins are too many for
# that, only every k-th label is written (every bar keeps its tooltip).
LABEL_FONT = 9
LABEL_CHARS = 12
LABEL_ROOM = int(LABEL_CHARS * LABEL_FONT * 0.6 * 0.71) + LABEL_FONT + 4  # below the axis
SIN_45 = 0.7071
LABEL_LEFT = int(LABEL_CHARS * LABEL_FONT * 0.6 * SIN_45)  # the first label leans left of its bar


def label_step(slot: float, font: float = LABEL_FONT) -> int:
    """Write every k-th label so that rotated neighbours stay a line of text apart."""
    return max(1, math.ceil((font + 1) / (slot * SIN_45)))


def plot(feature: dict[str, Any], width: int = 320, height: int = 150) -> str:
    """Grouped bars per bin (or category): baseline grey, window coloured by the verdict."""
    labels: list[str] = feature["labels"]
    base, current = feature["baseline"], feature["current"]
    top = max([*base, *current, 0.01])
    slot = (width - LABEL_LEFT) / max(len(labels), 1)
    bar = max(slot / 2 - 2, 1)
    step = label_step(slot)
    colour = COLOURS.get(feature["status"], "#0969da")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height + LABEL_ROOM}" role="img" '
        f'aria-label="{escape(feature["name"])}: baseline and window">'
    ]
    for i, label in enumerate(labels):
        x = LABEL_LEFT + i * slot + 1
        for j, (share, fill) in enumerate(((base[i], "#8c959f"), (current[i], colour))):
            h = height * share / top
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{fill}"><title>{escape(label)}: '
                f"{'baseline' if j == 0 else 'window'} {share:.1%}</title></rect>"
            )
        if i % step == 0:
            lx, ly = x + bar, height + LABEL_FONT + 2
            parts.append(
                f'<text x="{lx:.1f}" y="{ly}" font-size="{LABEL_FONT}" text-anchor="end" '
                f'transform="rotate(-45 {lx:.1f} {ly})">{escape(label[:LABEL_CHARS])}</text>'
            )
    parts.append(
        f'<line x1="{LABEL_LEFT}" y1="{height}" x2="{width}" y2="{height}" stroke="#57606a"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _card(feature: dict[str, Any]) -> str:
    extra = (
        f"{feature['measure'].upper()} {feature['value']:.3f}, missing "
        f"{feature['missing_rate']:.1%} (baseline {feature['baseline_missing_rate']:.1%}), out "
        f"of range {feature['out_of_range_rate']:.1%}"
    )
    return (
        f'<div class="card"><b>{escape(feature["name"])}</b> {badge(feature["status"])}'
        f"<div><b>{escape(_decided(feature))}</b></div>"
        f'<div class="muted">{escape(extra)}</div>{plot(feature)}</div>'
    )


def _decided(feature: dict[str, Any]) -> str:
    """The figure that decided the verdict (reports before it existed: the measure)."""
    return str(feature.get("reason") or f"{feature['measure'].upper()} {feature['value']:.3f}")


def render(result: dict[str, Any]) -> str:
    """The whole page for one model version's run."""
    status = result["status"]
    features = sorted(result.get("features", []), key=lambda f: -f["value"])
    prediction = result.get("prediction")
    rows = "".join(
        f"<tr><td>{escape(f['name'])}</td><td>{escape(_decided(f))}</td>"
        f"<td>{escape(f['measure'].upper())} {f['value']:.3f}</td>"
        f"<td>{badge(f['status'])}</td></tr>"
        for f in ([prediction] if prediction else []) + features
    )
    window = result["window"]
    t = result.get("thresholds", {})
    cards = "".join(_card(f) for f in ([prediction] if prediction else []) + features)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>lambdaserve drift: {escape(result["model"])} v{escape(str(result["version"]))}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(result["model"])} v{escape(str(result["version"]))} {badge(status)}</h1>
<div class="muted">{escape(VERDICT.get(status, status))}. {result["rows"]:,} captured rows from
{escape(window["start"])} to {escape(window["end"])}.
Thresholds: PSI {t.get("psi_warn", "")} warn / {t.get("psi_drift", "")} drift (numbers),
JS {t.get("js_warn", "")} / {t.get("js_drift", "")} (categories), prediction
{t.get("prediction_psi", "")} (PSI) or {t.get("prediction_js", "")} (JS); at least
{t.get("min_rows", "")} rows.</div>
<table><tr><th>what</th><th>decided by</th><th>distribution</th><th>verdict</th></tr>{rows}
</table>
<div class="legend muted">bars: share of rows per bin<span style="background:#8c959f"></span>
baseline (the bundle's sample)<span style="background:#1a7f37"></span>this window, coloured
by its verdict (<span style="background:#9a6700"></span>warn <span style="background:#cf222e">
</span>drift)</div>
<div class="grid">{cards}</div></body></html>
"""
