"""`make bench`: cold start, warm overhead, batch throughput and sizes of the built artifacts.

Every figure comes from fresh, isolated Python 3.12 processes (`-I -S`, only the build
output on sys.path, as Lambda lays out /var/task and /opt) and is the median of at least 5
runs, stated as a ratio against a floor or a baseline measured in the same run:
- cold init vs a process doing only `import joblib; joblib.load(model)` on the same layer;
- warm handler time vs the bare model on the same rows;
- everything vs bench/naive_handler.py, the tutorial-style handler (pandas, stdlib json, model
  downloaded from S3 at import).
Writes results.json and results.md
outside the tree (bench/outputs.py). A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from outputs import write  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
BUILD = ROOT / ".aws-sam" / "build"
MODEL_DIR = BUILD / "ModelLayer" / "model"
LAMBDA_LIMIT = 262_144_000
PAYLOAD_LIMIT = 6_000_000
RUNS = 5
TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
GOALS = {"cold_ratio": 1.15, "overhead_1_ms": 0.5, "ratio_1000": 1.2}


def event(body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    return {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": "bench",
            "stage": "v1",
            "resourcePath": "/predict",
            "httpMethod": "POST",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def instances(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A predict body of records, one object per row."""
    return {"instances": records}


def columnar(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The same rows as a dataframe_split body: the names once, then a list per row."""
    names = list(records[0])
    return {
        "dataframe_split": {"columns": names, "data": [[r.get(n) for n in names] for r in records]}
    }


def largest_batch(
    records: list[dict[str, Any]],
    layout: Callable[[list[dict[str, Any]]], dict[str, Any]] = instances,
) -> list[dict[str, Any]]:
    """The most rows whose API Gateway event still fits Lambda's 6 MB synchronous payload."""
    low, high = 1, len(records)
    while low < high:
        mid = (low + high + 1) // 2
        if len(json.dumps(event(layout(records[:mid])))) < PAYLOAD_LIMIT:
            low = mid
        else:
            high = mid - 1
    return records[:low]


def probe(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    from lambdaserve.local.process import base_python

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    proc = subprocess.run(
        [base_python(), "-I", "-S", str(BENCH / "probe.py"), fh.name],
        env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    os.unlink(fh.name)
    if proc.returncode != 0:
        raise SystemExit(
            f"probe {spec['mode']} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# What every handler in a probe gets (ours and the naive baseline).
BASE_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "POWERTOOLS_SERVICE_NAME": "lambdaserve",
    "POWERTOOLS_METRICS_NAMESPACE": "bench",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


def handler_env(model_dir: Path) -> dict[str, str]:
    """The predict handler's environment in a probe: the model at `model_dir`, Powertools quiet
    and untraced, limits wide enough for the largest request Lambda's payload allows."""
    return {
        **BASE_ENV,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "MODEL_DIR": str(model_dir),
        "MAX_BATCH_ROWS": "1000000",
        "MAX_BODY_BYTES": str(PAYLOAD_LIMIT),
    }


def runs(spec: dict[str, Any], env: dict[str, str], n: int = RUNS) -> list[dict[str, Any]]:
    return [probe(spec, env) for _ in range(n)]


def med(values: list[float]) -> float:
    return float(statistics.median(values))


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def package_sizes(site: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for entry in site.iterdir():
        name = entry.name.split("-")[0].removesuffix(".libs").removesuffix(".dist")
        size = folder_bytes(entry) if entry.is_dir() else entry.stat().st_size
        sizes[name] = sizes.get(name, 0) + size
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def main() -> None:
    from moto.server import ThreadedMotoServer

    from lambdaserve import manifest
    from lambdaserve.bundle import sample
    from lambdaserve.local.http import free_port
    from lambdaserve.local.process import lambda_runtime_dir

    if not (MODEL_DIR / "manifest.json").exists():
        raise SystemExit("no build: run `make build` first")
    bundle = manifest.read(MODEL_DIR)
    features = [f.to_dict() for f in bundle.features]
    records, _ = sample.generate(40_000, seed=2026)
    batch = largest_batch(records)
    events = {"1": event({"instances": records[:1]}), "1000": event({"instances": records[:1000]})}
    batch_events = {"batch": event({"instances": batch})}
    repeat = {"1": 300, "1000": 40, "batch": 3}

    runtime = str(lambda_runtime_dir(Path(tempfile.mkdtemp(prefix="bench-runtime-"))))
    ours_paths = [
        str(BUILD / "PredictFunction"),
        str(BUILD / "RuntimeLayer/python"),
        str(BUILD / "ServingLayer/python"),
        runtime,
    ]
    ours_env = handler_env(MODEL_DIR)
    traced_env = {
        **ours_env,
        "POWERTOOLS_TRACE_DISABLED": "false",
        "TRACE_SUBSEGMENTS": "true",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "_X_AMZN_TRACE_ID": TRACE_ID,
    }
    model_path = str(MODEL_DIR / "model.joblib")
    ours = {
        "paths": ours_paths,
        "handler": "app.lambda_handler",
        "model": model_path,
        "features": features,
    }

    print("cold init (5 rounds of fresh processes) ...", file=sys.stderr)
    # Interleaved rounds (floor, ours, traced), so a slow spell of a shared machine weighs
    # on every figure alike instead of on whichever ran during it.
    rounds: dict[str, list[float]] = {"floor": [], "cold": [], "traced": []}
    for _ in range(RUNS):
        rounds["floor"].append(probe({**ours, "mode": "floor"}, ours_env)["seconds"])
        rounds["cold"].append(
            probe({**ours, "mode": "cold", "events": events}, ours_env)["seconds"]
        )
        rounds["traced"].append(
            probe({**ours, "mode": "cold", "events": events}, traced_env)["seconds"]
        )
    floor, cold, cold_traced = (med(rounds[k]) for k in ("floor", "cold", "traced"))

    print("warm per-request (5 fresh processes) ...", file=sys.stderr)
    warm = runs({**ours, "mode": "warm", "events": events, "repeat": repeat}, ours_env)
    warm_batch = runs({**ours, "mode": "warm", "events": batch_events, "repeat": repeat}, ours_env)

    print("naive baseline (moto S3 on loopback) ...", file=sys.stderr)
    deps = BENCH / ".deps"
    moto_port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    server.start()
    try:
        import boto3

        endpoint = f"http://127.0.0.1:{moto_port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="bench-models")
        s3.upload_file(model_path, "bench-models", "model.joblib")
        naive_env = {
            **BASE_ENV,
            **creds,
            "AWS_ENDPOINT_URL": endpoint,
            "MODEL_BUCKET": "bench-models",
            "MODEL_KEY": "model.joblib",
            "MODEL_FEATURES": json.dumps([f["name"] for f in features]),
        }
        naive = {
            "paths": [str(BENCH), str(deps), str(BUILD / "RuntimeLayer/python"), runtime],
            "handler": "naive_handler.handler",
            "model": model_path,
        }
        naive_cold = med(
            [r["seconds"] for r in runs({**naive, "mode": "cold", "events": events}, naive_env)]
        )
        naive_warm = runs({**naive, "mode": "warm", "events": events, "repeat": repeat}, naive_env)
        naive_batch = runs(
            {**naive, "mode": "warm", "events": batch_events, "repeat": repeat}, naive_env
        )
    finally:
        server.stop()

    def pick(results: list[dict[str, Any]], size: str, key: str) -> float:
        return med([r[size][key] for r in results])

    figures: dict[str, Any] = {
        "runs": RUNS,
        "cold": {
            "ours_s": cold,
            "floor_s": floor,
            "ratio": cold / floor,
            "ours_traced_s": cold_traced,
            "tracer_share": (cold_traced - cold) / cold_traced,
            "naive_s": naive_cold,
            "naive_ratio": naive_cold / cold,
        },
    }
    for size in ("1", "1000"):
        handler, predict = pick(warm, size, "handler"), pick(warm, size, "predict")
        proba = pick(warm, size, "predict_proba")
        figures[f"warm_{size}"] = {
            "handler_ms": handler * 1e3,
            "predict_ms": predict * 1e3,
            "proba_ms": proba * 1e3,
            # The handler's model work is one predict_proba (labels are its argmax).
            "overhead_ms": (handler - proba) * 1e3,
            "ratio_vs_proba": handler / proba,
            "ratio_vs_predict": handler / predict,
            "ratio_vs_both": handler / (predict + proba),
            "naive_ms": pick(naive_warm, size, "handler") * 1e3,
            "naive_ratio": pick(naive_warm, size, "handler") / handler,
        }
    rows = len(batch)
    handler_b = pick(warm_batch, "batch", "handler")
    model_b = pick(warm_batch, "batch", "predict_proba")
    figures["batch"] = {
        "rows": rows,
        "body_bytes": len(batch_events["batch"]["body"]),
        "ours_rows_s": rows / handler_b,
        "model_rows_s": rows / model_b,
        "ratio": model_b / handler_b,
        "naive_rows_s": rows / pick(naive_batch, "batch", "handler"),
    }
    layers = {
        d: folder_bytes(BUILD / d)
        for d in ("PredictFunction", "RuntimeLayer", "ServingLayer", "ModelLayer")
    }
    figures["sizes"] = {
        "bytes": layers,
        "total": sum(layers.values()),
        "share_of_limit": sum(layers.values()) / LAMBDA_LIMIT,
        "runtime_packages": package_sizes(BUILD / "RuntimeLayer/python"),
    }
    report = markdown(figures)
    write("results", figures, report)
    print(report)


def markdown(f: dict[str, Any]) -> str:
    c, w1, w1k, b, s = f["cold"], f["warm_1"], f["warm_1000"], f["batch"], f["sizes"]

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        f"Medians of {f['runs']} fresh Python 3.12 processes each, against the `sam build` output.",
        "",
        "| figure | lambdaserve | floor / baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        f"| cold init: import + load + first /predict (s) | {c['ours_s']:.3f} | floor "
        f"`joblib.load` {c['floor_s']:.3f} | {c['ratio']:.2f}x | <= {GOALS['cold_ratio']}x | "
        f"{met(c['ratio'] <= GOALS['cold_ratio'])} |",
        f"| cold init with the X-Ray Tracer on (s) | {c['ours_traced_s']:.3f} | untraced "
        f"{c['ours_s']:.3f} | Tracer {c['tracer_share']:.1%} of init | < 3% to be on by "
        f"default | {'yes' if c['tracer_share'] < 0.03 else 'no: off by default'} |",
        f"| cold init vs the naive handler (s) | {c['ours_s']:.3f} | naive {c['naive_s']:.3f} | "
        f"naive {c['naive_ratio']:.2f}x slower | | |",
        f"| warm overhead, 1 row (ms) | {w1['overhead_ms']:.3f} | handler {w1['handler_ms']:.3f} "
        f"- predict_proba {w1['proba_ms']:.3f} | | <= {GOALS['overhead_1_ms']} ms | "
        f"{met(w1['overhead_ms'] <= GOALS['overhead_1_ms'])} |",
        f"| warm, 1,000 rows: handler / predict (ms) | {w1k['handler_ms']:.2f} | predict "
        f"{w1k['predict_ms']:.2f} | {w1k['ratio_vs_predict']:.2f}x | <= {GOALS['ratio_1000']}x | "
        f"{met(w1k['ratio_vs_predict'] <= GOALS['ratio_1000'])} |",
        f"| warm, 1,000 rows: handler / the model work of its answer (ms) | "
        f"{w1k['handler_ms']:.2f} | predict_proba {w1k['proba_ms']:.2f}; plain predict + "
        f"predict_proba {w1k['predict_ms'] + w1k['proba_ms']:.2f} | {w1k['ratio_vs_proba']:.2f}x; "
        f"{w1k['ratio_vs_both']:.2f}x | | |",
        f"| warm vs the naive handler, 1 row / 1,000 rows (ms) | {w1['handler_ms']:.2f} / "
        f"{w1k['handler_ms']:.2f} | naive {w1['naive_ms']:.2f} / {w1k['naive_ms']:.2f} | naive "
        f"{w1['naive_ratio']:.2f}x / {w1k['naive_ratio']:.2f}x slower | | |",
        f"| batch: {b['rows']:,} rows, {b['body_bytes']:,} B body (rows/s) | "
        f"{b['ours_rows_s']:,.0f} | predict_proba {b['model_rows_s']:,.0f}, naive "
        f"{b['naive_rows_s']:,.0f} | {b['ratio']:.2f} of the model's rate | | |",
        f"| size: function + layers, unzipped (bytes) | {s['total']:,} | Lambda limit "
        f"262,144,000 | {s['share_of_limit']:.1%} | <= 170,000,000 | "
        f"{met(s['total'] <= 170_000_000)} |",
        "",
        "| folder | bytes |",
        "|---|---|",
        *[f"| {name} | {size:,} |" for name, size in s["bytes"].items()],
        "",
        "| runtime layer package | bytes |",
        "|---|---|",
        *[f"| {name} | {size:,} |" for name, size in s["runtime_packages"].items()],
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
