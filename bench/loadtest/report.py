"""The load test's report: the Markdown table and the PNG of latency and requests in flight
(bench/loadtest/run.py measures; this renders)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def total_seconds(args: argparse.Namespace) -> float:
    """How long the profile runs: warm-up, steady, ramp and spike."""
    return float(args.warmup + args.steady + args.ramp + args.spike)


def markdown(results: dict[str, Any], summary: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "# Load test: the Black-Friday profile on the local stack",
        "",
        f"Profile: {args.users} users steady for {args.steady:g} s (after a {args.warmup:g} s "
        f"warm-up at that level), a ramp to {args.ramp_x:g}x "
        f"over {args.ramp:g} s, a spike to {args.spike_x:g}x for {args.spike:g} s; each user "
        f"{args.user_rps:g} requests/s of 5 rows. ReservedConcurrency {args.reserved}, "
        f"ProvisionedConcurrency {args.provisioned} (provisioned only). Latency: answered "
        "requests only.",
        "",
        "| strategy | phase | requests | p50 ms | p95 ms | p99 ms | max ms | req/s | cold starts "
        "| throttles | other 5xx |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for strategy, found in results.items():
        for phase, p in found["phases"].items():
            lines.append(
                f"| {strategy} | {phase} | {p['requests']} | {p['p50_ms']} | {p['p95_ms']} | "
                f"{p['p99_ms']} | {p['max_ms']} | {p['rps']} | {p['cold_starts']} | "
                f"{p['throttles']} | {p['errors_5xx']} |"
            )
    lines += ["", "```json", json.dumps(summary, indent=2), "```", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], args: argparse.Namespace, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(11, 3.2 * len(results)), sharex=True,
                             squeeze=False)  # fmt: skip
    for ax, (strategy, found) in zip(axes[:, 0], results.items(), strict=True):
        series = found["series"]
        ok = [(t, ms) for t, ms, status, _ in series if 200 <= status < 300]
        cold = [(t, ms) for t, ms, status, c in series if c]
        throttled = [(t, ms) for t, ms, status, _ in series if status in (429, 503)]
        styles = [
            (ok, {"s": 4, "c": "#0969da", "label": "answered"}),
            (cold, {"s": 18, "c": "#cf222e", "marker": "x", "label": "cold start"}),
            (throttled, {"s": 10, "c": "#9a6700", "marker": "v", "label": "throttled"}),
        ]
        for points, style in styles:
            if points:
                ax.scatter(*zip(*points, strict=True), **style)
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"ColdStartStrategy={strategy}")
        inflight = ax.twinx()
        grid = [i / 4 for i in range(int(total_seconds(args) * 4))]
        counts = [sum(t <= g < t + ms / 1000 for t, ms, _, _ in series) for g in grid]
        inflight.plot(grid, counts, c="#1a7f37", lw=1, label="requests in flight")
        inflight.set_ylabel("in flight")
        edge = 0.0
        for length in (args.warmup, args.steady, args.ramp):
            edge += length
            ax.axvline(edge, c="#8c959f", ls="--", lw=0.8)
        ax.legend(loc="upper left", fontsize=7)
    axes[-1, 0].set_xlabel("seconds into the run (warm-up | steady | ramp | spike)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
