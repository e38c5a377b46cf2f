"""`make bench-gc`: the cyclic garbage collector's pauses in a warm predict function, with what
init made frozen out of its way (`gc.freeze()`, collector.py) against the same process with it
thawed, interleaved.

The built handler runs in a fresh, isolated Python 3.12 process (function and layer folders on
its path, as in Lambda) on the built sample model; a round is 60 requests, frozen and thawed
rounds alternate (6 each), and each request's time and the collector's own time are measured.
For 1 row and for 1,000 rows (`instances` and `dataframe_split`).

Writes bench/gc_results.json and .md. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
ROUNDS, REQUESTS = 12, 60

CHILD = r"""
import gc, io, json, os, statistics, sys, time
from contextlib import redirect_stdout
spec = json.load(open(sys.argv[1]))
sys.path[:0] = spec["paths"]
os.environ.update(spec["env"])

class Context:
    function_name = "bench"; function_version = "1"; memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench:1"
    aws_request_id = "bench"; log_group_name = "/aws/lambda/bench"; log_stream_name = "bench"
    def get_remaining_time_in_millis(self): return 29_000

sink = io.StringIO()
with redirect_stdout(sink):
    import app
tracked_after_init = len(gc.get_objects())
collected = [0.0]
def timer(phase, info, started=[0.0]):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        collected[0] += time.perf_counter() - started[0]
gc.callbacks.append(timer)
out = {}
for name, event in spec["events"].items():
    times = {"frozen": [], "thawed": []}
    pauses = {"frozen": [], "thawed": []}
    with redirect_stdout(sink):
        for _ in range(20):
            app.lambda_handler(event, Context())
        for r in range(spec["rounds"]):
            mode = ("thawed", "frozen")[r % 2]
            gc.freeze() if mode == "frozen" else gc.unfreeze()
            collected[0] = 0.0
            for _ in range(spec["requests"]):
                t = time.perf_counter()
                app.lambda_handler(event, Context())
                times[mode].append(time.perf_counter() - t)
            pauses[mode].append(collected[0])
            sink.seek(0); sink.truncate()
    out[name] = {}
    for mode in ("thawed", "frozen"):
        t = sorted(times[mode])
        out[name][mode] = {
            "median_ms": round(statistics.median(t) * 1000, 3),
            "mean_ms": round(statistics.mean(t) * 1000, 3),
            "p99_ms": round(t[int(len(t) * 0.99)] * 1000, 3),
            "max_ms": round(t[-1] * 1000, 3),
            "collector_ms_per_request": round(sum(pauses[mode]) / len(t) * 1000, 3),
        }
out["objects_tracked_after_init"] = tracked_after_init
print(json.dumps(out))
"""


def events() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "tests"))
    from support import load_event

    from lambdaserve.manifest import read
    from lambdaserve.sample import generate

    names = [f.name for f in read(BUILD / "ModelLayer" / "model").features]
    base = load_event("predict.json")
    records, _ = generate(1000, seed=41)
    split = {"columns": names, "data": [[r.get(n) for n in names] for r in records]}
    bodies = {
        "1 row": {"instances": records[:1]},
        "1,000 rows, instances": {"instances": records},
        "1,000 rows, dataframe_split": {"dataframe_split": split},
    }
    return {name: {**base, "body": json.dumps(body)} for name, body in bodies.items()}


def main() -> None:
    paths = [str(BUILD / d) for d in ("PredictFunction",)]
    paths += [str(BUILD / d / "python") for d in ("RuntimeLayer", "ServingLayer")]
    sys.path.insert(0, str(ROOT / "src"))
    from lambdaserve.local.process import base_python, lambda_runtime_dir

    with tempfile.TemporaryDirectory() as tmp:
        paths.append(str(lambda_runtime_dir(Path(tmp) / "var-runtime")))
        spec = {
            "paths": paths,
            "events": events(),
            "rounds": ROUNDS,
            "requests": REQUESTS,
            "env": {
                "AWS_REGION": "us-east-1",
                "AWS_LAMBDA_FUNCTION_NAME": "bench",
                "POWERTOOLS_SERVICE_NAME": "lambdaserve",
                "POWERTOOLS_METRICS_NAMESPACE": "bench",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "MODEL_DIR": str(BUILD / "ModelLayer" / "model"),
                "CAPTURE_SAMPLE_RATE": "0",
            },
        }
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        run = subprocess.run(  # nosec B603 - our interpreter, fixed argv, no shell
            [base_python(), "-I", "-S", "-c", CHILD, str(spec_file)],
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    (ROOT / "bench/gc_results.json").write_text(json.dumps(figures, indent=2) + "\n")
    (ROOT / "bench/gc_results.md").write_text(markdown(figures))
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
