"""`make bench-gc`: the cyclic garbage collector's pauses in a warm predict function, with what
init made frozen out of its way (`gc.freeze()`, collector.py) against the same process with it
thawed, interleaved.

The built handler runs in a fresh, isolated Python 3.12 process (bench/probe.py, mode "gc":
function and layer folders on its path, as in Lambda) on the built sample model; a round is
60 requests, frozen and thawed rounds alternate (6 each), and each request's time and the
collector's own time are measured.
For 1 row and for 1,000 rows (`instances` and `dataframe_split`).

Writes gc_results.json and .md
outside the tree (bench/outputs.py). A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / "src"), str(BENCH)]

from outputs import write  # type: ignore[import-not-found]  # noqa: E402
from run import (  # type: ignore[import-not-found]  # noqa: E402
    BUILD,
    MODEL_DIR,
    columnar,
    event,
    handler_env,
    instances,
    probe,
)

ROUNDS, REQUESTS = 12, 60


def main() -> None:
    from lambdaserve.bundle.sample import generate
    from lambdaserve.local.process import lambda_runtime_dir

    records, _ = generate(1000, seed=41)
    events = {
        "1 row": event(instances(records[:1])),
        "1,000 rows, instances": event(instances(records)),
        "1,000 rows, dataframe_split": event(columnar(records)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(BUILD / "PredictFunction")]
        paths += [str(BUILD / d / "python") for d in ("RuntimeLayer", "ServingLayer")]
        paths.append(str(lambda_runtime_dir(Path(tmp) / "var-runtime")))
        spec = {"mode": "gc", "paths": paths, "handler": "app.lambda_handler", "events": events,
                "rounds": ROUNDS, "requests": REQUESTS}  # fmt: skip
        figures = probe(spec, handler_env(MODEL_DIR))
    write("gc_results", figures, markdown(figures))
    print(markdown(figures))


def markdown(figures: dict[str, Any]) -> str:
    lines = [
        "# Collector pauses in a warm predict function: init frozen against thawed",
        "",
        f"{ROUNDS} interleaved rounds of {REQUESTS} requests, the built handler in one process.",
        "",
        f"Objects the collector tracks after init: {figures['objects_tracked_after_init']:,}.",
        "",
        "| request | | median ms | mean ms | p99 ms | max ms | collector ms per request |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, modes in figures.items():
        if not isinstance(modes, dict):
            continue
        for mode in ("thawed", "frozen"):
            f = modes[mode]
            lines.append(
                f"| {name} | {mode} | {f['median_ms']} | {f['mean_ms']} | {f['p99_ms']} | "
                f"{f['max_ms']} | {f['collector_ms_per_request']} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
