"""`make bench-monitoring`: the drift monitor's figures, each measured in this run.

1. False-alarm rate: 20 windows of 2,000 rows drawn from the training distribution (other
   seeds than the bundle's sample): how many end `drift`, and how many features `warn`.
2. The smallest shift detected: a numeric feature moved by k standard deviations, and a share
   of one category moved to another, in growing steps, on windows of 2,000 rows: the first
   step that warns and the first that drifts (median over 5 seeds).
3. Capture's added latency at 1 row and at 1,000 rows: the predict handler in-process, capture
   off against capture on (rate 1), interleaved (3,000 and 300 invocations each): median and
   p99 per invocation.
4. The monitor's cost per 100,000 captured rows: Monitor.run over S3 objects on moto (what
   the function does), its duration and peak memory, priced at MonitorFunction's 1,024 MB.

Writes monitoring_results.json
outside the tree (bench/outputs.py). A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "bench")]

from outputs import previous, write  # type: ignore[import-not-found]  # noqa: E402

from lambdaserve.bundle import sample  # noqa: E402
from lambdaserve.monitor import drift  # noqa: E402
from lambdaserve.monitor.window import add_record  # noqa: E402
from lambdaserve.serving.capture import DataCapture  # noqa: E402
from lambdaserve.serving.predictor import Predictor, sha256_of  # noqa: E402

GB_SECOND = 0.0000166667  # Lambda x86 price per GB-second (us-east-1)
MONITOR_MB = 1024


def window(predictor: Predictor, records: list[dict[str, Any]]) -> drift.Window:
    matrix = predictor.parse({"instances": records})
    out = drift.Window([f.name for f in predictor.manifest.features])
    for record in DataCapture(predictor.manifest, 1.0).records(matrix, predictor.predict(matrix)):
        add_record(out, record)
    return out


def false_alarms(predictor: Predictor) -> dict[str, Any]:
    profile = predictor.manifest.baseline_profile
    drifted = warned = 0
    worst: dict[str, float] = {}
    for seed in range(1000, 1020):
        records, _ = sample.generate(2000, seed)
        result = drift.compare(profile, window(predictor, records))
        drifted += result["status"] == "drift"
        for f in [*result["features"], result["prediction"]]:
            warned += f["status"] == "warn"
            worst[f["name"]] = max(worst.get(f["name"], 0.0), f["value"])
    return {"windows": 20, "rows": 2000, "drift": drifted, "feature_warnings": warned,
            "largest_value_per_feature": {k: round(v, 4) for k, v in worst.items()}}  # fmt: skip


def smallest_shift(predictor: Predictor) -> dict[str, Any]:
    profile = predictor.manifest.baseline_profile
    names = [f.name for f in predictor.manifest.features]

    def first(step_records: Any, name: str, steps: np.ndarray) -> dict[str, float | None]:
        found: dict[str, list[float]] = {"warn": [], "drift": []}
        for seed in range(2000, 2005):
            hit: dict[str, float | None] = {"warn": None, "drift": None}
            for step in steps:
                result = drift.compare(profile, window(predictor, step_records(seed, step)))
                status = next(f["status"] for f in result["features"] if f["name"] == name)
                for level in ("warn", "drift"):
                    if hit[level] is None and status in (
                        ("warn", "drift") if level == "warn" else ("drift",)
                    ):
                        hit[level] = float(step)
                if hit["drift"] is not None:
                    break
            for level in found:
                if hit[level] is not None:
                    found[level].append(hit[level])  # type: ignore[arg-type]
        return {k: (statistics.median(v) if v else None) for k, v in found.items()}

    base = profile["features"]["monetary_90d"]
    sd = base["std"]

    def numeric(seed: int, k: float) -> list[dict[str, Any]]:
        records, _ = sample.generate(2000, seed)
        return [{**r, "monetary_90d": r["monetary_90d"] + k * sd} for r in records]

    def category(seed: int, points: float) -> list[dict[str, Any]]:
        records, _ = sample.generate(2000, seed)
        rng = np.random.default_rng(seed)
        move = rng.random(len(records)) < points / 100 / 0.3  # of "direct" (30%) to "ads"
        return [{**r, "channel": "ads"} if r["channel"] == "direct" and m else r
                for r, m in zip(records, move, strict=True)]  # fmt: skip

    assert "monetary_90d" in names
    return {
        "numeric_feature": "monetary_90d",
        "numeric_sd": round(sd, 2),
        "numeric_shift_in_sd": first(numeric, "monetary_90d", np.arange(0.05, 1.55, 0.05).round(2)),
        "category_feature": "channel (direct -> ads)",
        "category_shift_in_share_points": first(category, "channel", np.arange(1, 31, 1.0)),
    }


def capture_latency(bundle: Path, rows: int, invocations: int) -> dict[str, Any]:
    from support import FakeLambdaContext, import_fresh, load_event

    event = load_event("predict.json")
    records, _ = sample.generate(rows, seed=77)
    request = {**event, "body": json.dumps({"instances": records})}
    handlers = {}
    for rate in ("0", "1"):
        os.environ.update({
            "POWERTOOLS_SERVICE_NAME": "lambdaserve", "POWERTOOLS_METRICS_NAMESPACE": "bench",
            "POWERTOOLS_TRACE_DISABLED": "true", "MODEL_DIR": str(bundle),
            "MODEL_NAME": "retail-propensity", "MODEL_SHA256": sha256_of(bundle / "model.joblib"),
            "CAPTURE_SAMPLE_RATE": rate,
        })  # fmt: skip
        with redirect_stdout(io.StringIO()):
            handlers[rate] = import_fresh(ROOT / "functions/predict/app.py", f"predict_{rate}")
    times: dict[str, list[float]] = {"0": [], "1": []}
    sink = io.StringIO()
    for i in range(2 * invocations):
        rate = "01"[i % 2]
        with redirect_stdout(sink):
            started = time.perf_counter()
            handlers[rate].lambda_handler(request, FakeLambdaContext())
            times[rate].append(time.perf_counter() - started)
        if i % 200 == 0:
            sink.seek(0)
            sink.truncate()
    out: dict[str, Any] = {}
    for rate, label in (("0", "off"), ("1", "on")):
        t = sorted(times[rate][len(times[rate]) // 12 :])  # past the warm-up
        out[label] = {"median_ms": round(statistics.median(t) * 1000, 3),
                      "p99_ms": round(t[int(len(t) * 0.99)] * 1000, 3)}  # fmt: skip
    out["added_median_ms"] = round(out["on"]["median_ms"] - out["off"]["median_ms"], 3)
    out["ratio_median"] = round(out["on"]["median_ms"] / out["off"]["median_ms"], 3)
    return out


def monitor_cost(predictor: Predictor) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from lambdaserve.monitor.run import Monitor
    from lambdaserve.monitor.window import CaptureReader

    records, _ = sample.generate(100_000, 3000)
    matrix = predictor.parse({"instances": records})
    capture = DataCapture(predictor.manifest, 1.0)
    lines = [
        json.dumps(r, separators=(",", ":"))
        for r in capture.records(matrix, predictor.predict(matrix))
    ]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="monitoring-bench")
        for i in range(0, len(lines), 50):  # objects of 10,000 rows, as Firehose buffers
            s3.put_object(
                Bucket="monitoring-bench",
                Key=f"capture/{i:06d}",
                Body="\n".join(lines[i : i + 50]).encode(),
            )
        monitor = Monitor(
            CaptureReader(s3, "monitoring-bench"), lambda name, version: predictor.manifest
        )
        now = dt.datetime.now(dt.UTC)
        tracemalloc.start()
        started = time.perf_counter()
        (result,) = monitor.run(now - dt.timedelta(hours=1), now)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    gb_s = seconds * MONITOR_MB / 1024
    return {"rows": result["rows"], "seconds": round(seconds, 2),
            "python_peak_mb": round(peak / 2**20, 1), "memory_mb": MONITOR_MB,
            "gb_seconds": round(gb_s, 2), "usd": round(gb_s * GB_SECOND, 6),
            "capture_bytes_per_row": round(sum(map(len, lines)) / 100_000, 1)}  # fmt: skip


def main() -> None:
    """All of them, or those named: `bench/monitoring.py capture_latency_1000_rows`."""
    figures: dict[str, Callable[[Path, Predictor], Any]] = {
        "false_alarms": lambda _, predictor: false_alarms(predictor),
        "smallest_shift": lambda _, predictor: smallest_shift(predictor),
        "capture_latency_1_row": lambda bundle, _: capture_latency(bundle, 1, 3000),
        "capture_latency_1000_rows": lambda bundle, _: capture_latency(bundle, 1000, 300),
        "monitor_cost_per_100k_rows": lambda _, predictor: monitor_cost(predictor),
    }
    wanted = sys.argv[1:] or list(figures)
    results: dict[str, Any] = previous("monitoring_results")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        sample.train(bundle)
        predictor = Predictor.load(bundle, max_rows=200_000)
        for name in wanted:
            results[name] = figures[name](bundle, predictor)
    write("monitoring_results", results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
