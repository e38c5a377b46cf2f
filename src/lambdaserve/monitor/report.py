"""The monitor's HTML report: one self-contained page (inline SVG, no script, nothing fetched),
a verdict on top, then one plot per feature of the baseline's shares against the window's."""

from __future__ import annotations

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


def plot(feature: dict[str, Any], width: int = 320, height: int = 150) -> str:
    """Grouped bars per bin (or category): baseline grey, window coloured by the verdict."""
    labels: list[str] = feature["labels"]
    base, current = feature["baseline"], feature["current"]
    top = max([*base, *current, 0.01])
    slot = width / max(len(labels), 1)
    bar = max(slot / 2 - 2, 1)
    colour = COLOURS.get(feature["status"], "#0969da")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" '
        f'role="img" aria-label="{escape(feature["name"])}: baseline and window">'
    ]
    for i, label in enumerate(labels):
        x = i * slot + 1
        for j, (share, fill) in enumerate(((base[i], "#8c959f"), (current[i], colour))):
            h = height * share / top
            parts.append(
                f'<rect x="{x + j * bar:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{fill}"><title>{escape(label)}: '
                f"{'baseline' if j == 0 else 'window'} {share:.1%}</title></rect>"
            )
        parts.append(
            f'<text x="{x + bar:.1f}" y="{height + 12}" font-size="8" text-anchor="middle">'
            f"{escape(label[:12])}</text>"
        )
    parts.append(f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#57606a"/>')
    parts.append("</svg>")
    return "".join(parts)


def _card(feature: dict[str, Any]) -> str:
    extra = (
        f"missing {feature['missing_rate']:.1%} (baseline {feature['baseline_missing_rate']:.1%})"
        f", out of range {feature['out_of_range_rate']:.1%}"
    )
    return (
        f'<div class="card"><b>{escape(feature["name"])}</b> {badge(feature["status"])}'
        f'<div class="muted">{escape(feature["measure"].upper())} {feature["value"]:.3f}; '
        f"{extra}</div>{plot(feature)}</div>"
    )


def render(result: dict[str, Any]) -> str:
    """The whole page for one model version's run."""
    status = result["status"]
    features = sorted(result.get("features", []), key=lambda f: -f["value"])
    prediction = result.get("prediction")
    rows = "".join(
        f"<tr><td>{escape(f['name'])}</td><td>{escape(f['measure'].upper())}</td>"
        f"<td>{f['value']:.3f}</td><td>{badge(f['status'])}</td></tr>"
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
<table><tr><th>what</th><th>measure</th><th>value</th><th>verdict</th></tr>{rows}</table>
<div class="legend muted">bars: share of rows per bin<span style="background:#8c959f"></span>
baseline (the bundle's sample)<span style="background:#1a7f37"></span>this window, coloured
by its verdict (<span style="background:#9a6700"></span>warn <span style="background:#cf222e">
</span>drift)</div>
<div class="grid">{cards}</div></body></html>
"""
