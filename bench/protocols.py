"""`make bench-protocols`: what each protocol's body costs the warm handler, on the built
artifacts, for both engines: /predict's JSON records against the Open Inference Protocol's
tensors as JSON and as binary (Triton's binary data extension, in and out), each against the
engine's own time on the same rows (its predict_proba, or the ONNX session), measured in the
same fresh isolated processes (bench/probe.py), interleaved, median of 5 processes.

The goal it reports against (issue 29): at 1,000 rows the handler within 1.2x of the engine's
own time, which no JSON body reaches on the ONNX engine (decoding the JSON alone costs about
half of the graph's time). The largest request that fits Lambda's 6 MB payload is measured in
rows/s against the engine's rate for /predict and for binary tensors.

Requests are encoded by tritonclient's own code (`generate_request_body`), as a Triton client
sends them. Writes protocols_results.json and .md outside the tree (bench/outputs.py). A
benchmark: it asserts nothing.
"""

from __future__ import annotations

import base64
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
    PAYLOAD_LIMIT,
    event,
    handler_env,
    instances,
    med,
    runs,
)

ENGINES = ("sklearn", "onnx")
GOAL_RATIO_1000 = 1.2
BINARY = "application/octet-stream"


def oip_event(name: str, records: list[dict[str, Any]], binary: bool) -> dict[str, Any]:
    """The proxy event of an OIP inference request for these rows, one tensor per feature,
    encoded by tritonclient (binary: raw tensors in, and outputs asked back in binary)."""
    import json

    import numpy as np
    from tritonclient.http import InferenceServerClient, InferInput

    inputs = []
    for feature in records[0]:
        values = [r.get(feature) for r in records]
        if any(isinstance(v, str) for v in values):
            array, datatype = np.array(values, dtype=object), "BYTES"
        else:  # NaN: a missing value
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            datatype = "FP64"
        tensor = InferInput(feature, [len(records)], datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    body, json_size = InferenceServerClient.generate_request_body(inputs)
    out = event({})
    path = f"/v2/models/{name}/infer"
    out["path"] = out["resource"] = out["requestContext"]["resourcePath"] = path
    headers = {"Accept": BINARY if binary else "application/json"}
    if json_size is not None:
        headers |= {"Content-Type": BINARY, "Inference-Header-Content-Length": str(json_size)}
        out["body"], out["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        out["body"] = body.decode()
        json.loads(out["body"])
    out["headers"], out["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
    return out


def matrix_event(name: str, records: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The proxy event of one binary [rows, features] FP64 tensor (an all-numeric model)."""
    import numpy as np
    from tritonclient.http import InferenceServerClient, InferInput

    matrix = np.array([[r[n] for n in names] for r in records], dtype=np.float64)
    tensor = InferInput("input", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix, binary_data=True)
    body, json_size = InferenceServerClient.generate_request_body([tensor])
    out = event({})
    path = f"/v2/models/{name}/infer"
    out["path"] = out["resource"] = out["requestContext"]["resourcePath"] = path
    headers = {
        "Accept": BINARY,
        "Content-Type": BINARY,
        "Inference-Header-Content-Length": str(json_size),
    }
    out["body"], out["isBase64Encoded"] = base64.b64encode(body).decode(), True
    out["headers"], out["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
    return out


def numeric_bundles(out: Path) -> tuple[dict[str, Path], list[dict[str, Any]], list[str]]:
    """The sample's six numeric features only (no categories), the ONNX recipe's trees, bundled
    for each engine: a model one [rows, features] tensor can feed."""
    from lambdaserve.bundle import sample
    from lambdaserve.bundle.make import make_bundle

    spec = {
        **sample.SPEC,
        "features": [f for f in sample.SPEC["features"] if f["type"] != "category"],
    }
    names = [f["name"] for f in spec["features"]]
    records, labels = sample.generate(20_000, 7)
    rows = [{n: (r.get(n) if r.get(n) is not None else 0) for n in names} for r in records]
    import numpy as np

    matrix = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    model = sample.onnx_pipeline(7).fit(matrix, labels)
    dirs = {}
    for engine in ENGINES:
        dirs[engine] = out / engine
        make_bundle(model, name="numeric", spec=spec, sample_rows=rows[:500],
                    out_dir=dirs[engine], engine=engine)  # fmt: skip
    return dirs, rows, names


def event_bytes(e: dict[str, Any]) -> int:
    import json

    return len(json.dumps(e))


def largest(records: list[dict[str, Any]], make: Any) -> list[dict[str, Any]]:
    """The most rows whose event still fits Lambda's 6 MB synchronous payload."""
    low, high = 1, len(records)
    while low < high:
        mid = (low + high + 1) // 2
        if event_bytes(make(records[:mid])) < PAYLOAD_LIMIT:
            low = mid
        else:
            high = mid - 1
    return records[:low]


def main() -> None:
    from lambdaserve import manifest
    from lambdaserve.bundle import sample
    from lambdaserve.local.process import lambda_runtime_dir

    if not (BUILD / "ModelLayer" / "model" / "manifest.json").exists():
        raise SystemExit("no build: run `make build` first")
    model_dirs = {"sklearn": BUILD / "ModelLayer" / "model"}
    onnx_dir = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    sample.train(onnx_dir, engine="onnx")
    model_dirs["onnx"] = onnx_dir
    runtime = str(lambda_runtime_dir(Path(tempfile.mkdtemp(prefix="bench-runtime-"))))
    layer = {"sklearn": "RuntimeLayer", "onnx": "OnnxRuntimeLayer"}
    features = [f.to_dict() for f in manifest.read(model_dirs["sklearn"]).features]
    records, _ = sample.generate(120_000, seed=2026)
    figures: dict[str, Any] = {"runs": 5, "goal_ratio_1000": GOAL_RATIO_1000}
    for engine in ENGINES:
        name = manifest.read(model_dirs[engine]).name
        biggest = {
            "predict": largest(records, lambda r: event(instances(r))),
            "oip binary": largest(records, lambda r, n=name: oip_event(n, r, True)),  # type: ignore[misc]
        }
        events = {
            "predict 1": event(instances(records[:1])),
            "oip binary 1": oip_event(name, records[:1], True),
            "predict 1000": event(instances(records[:1000])),
            "oip json 1000": oip_event(name, records[:1000], False),
            "oip binary 1000": oip_event(name, records[:1000], True),
        }
        batch_events = {
            "predict largest": event(instances(biggest["predict"])),
            "oip binary largest": oip_event(name, biggest["oip binary"], True),
        }
        bodies = {
            "oip binary 1": instances(records[:1]),
            "oip json 1000": instances(records[:1000]),
            "oip binary 1000": instances(records[:1000]),
            "oip binary largest": instances(biggest["oip binary"]),
        }
        repeat = (
            {k: 300 for k in events if k.endswith(" 1")}
            | {k: 40 for k in events if k.endswith("1000")}
            | dict.fromkeys(batch_events, 3)
        )
        paths = [str(BUILD / "PredictFunction"), str(BUILD / layer[engine] / "python"),
                 str(BUILD / "ServingLayer/python"), runtime]  # fmt: skip
        spec = {"paths": paths, "handler": "app.lambda_handler", "engine": engine,
                "model": str(model_dirs[engine] / "model.joblib"), "mode": "warm",
                "model_dir": str(model_dirs[engine]), "features": features,
                "model_bodies": bodies, "repeat": repeat}  # fmt: skip
        env = handler_env(model_dirs[engine])
        print(f"{engine}: warm, 1 and 1,000 rows ...", file=sys.stderr)
        warm = runs({**spec, "events": events}, env)
        print(f"{engine}: the largest requests ...", file=sys.stderr)
        big = runs({**spec, "events": batch_events}, env)
        entry: dict[str, Any] = {}
        for size, e in events.items():
            handler = med([r[size]["handler"] for r in warm])
            own = med([r[size]["predict_proba"] for r in warm])
            entry[size] = {"handler_ms": handler * 1e3, "engine_ms": own * 1e3,
                           "ratio": handler / own, "event_bytes": event_bytes(e)}  # fmt: skip
        for size, e in batch_events.items():
            handler = med([r[size]["handler"] for r in big])
            own = med([r[size]["predict_proba"] for r in big])
            rows = big[0][size]["rows"]
            entry[size] = {
                "rows": rows,
                "rows_s": rows / handler,
                "engine_rows_s": rows / own,
                "share_of_engine": own / handler,
                "event_bytes": event_bytes(e),
            }
        figures[engine] = entry
    print("an all-numeric model: one [rows, features] tensor ...", file=sys.stderr)
    dirs, rows, names = numeric_bundles(Path(tempfile.mkdtemp(prefix="bench-numeric-")))
    numeric_features = [f.to_dict() for f in manifest.read(dirs["sklearn"]).features]
    figures["numeric"] = {}
    for engine in ENGINES:
        events = {
            "predict 1000": event(instances(rows[:1000])),
            "oip matrix 1000": matrix_event("numeric", rows[:1000], names),
        }
        paths = [str(BUILD / "PredictFunction"), str(BUILD / layer[engine] / "python"),
                 str(BUILD / "ServingLayer/python"), runtime]  # fmt: skip
        spec = {"paths": paths, "handler": "app.lambda_handler", "engine": engine,
                "model": str(dirs[engine] / "model.joblib"), "mode": "warm",
                "model_dir": str(dirs[engine]), "features": numeric_features,
                "model_bodies": {"oip matrix 1000": instances(rows[:1000])},
                "repeat": dict.fromkeys(events, 40)}  # fmt: skip
        env = handler_env(dirs[engine])
        env["MODEL_NAME"] = "numeric"
        warm = runs({**spec, "events": events}, env)
        figures["numeric"][engine] = {
            size: {
                "handler_ms": med([r[size]["handler"] for r in warm]) * 1e3,
                "engine_ms": med([r[size]["predict_proba"] for r in warm]) * 1e3,
                "ratio": med([r[size]["handler"] for r in warm])
                / med([r[size]["predict_proba"] for r in warm]),
            }
            for size in events
        }
    report = markdown(figures)
    write("protocols_results", figures, report)
    print(report)


def markdown(f: dict[str, Any]) -> str:
    lines = [
        "# Protocols: /predict's JSON against OIP tensors (JSON and binary), built artifacts",
        "",
        f"Median of {f['runs']} fresh processes per figure, interleaved; each ratio is the "
        "handler's time over the engine's own on the same rows, in the same processes.",
        "",
        "| request | scikit-learn: handler / engine ms | ONNX Runtime: handler / engine ms | "
        "event bytes |",
        "|---|---|---|---|",
    ]
    for size in ("predict 1", "oip binary 1", "predict 1000", "oip json 1000", "oip binary 1000"):
        s, o = f["sklearn"][size], f["onnx"][size]
        lines.append(
            f"| {size} | {s['handler_ms']:.3f} / {s['engine_ms']:.3f} ({s['ratio']:.2f}x) | "
            f"{o['handler_ms']:.3f} / {o['engine_ms']:.3f} ({o['ratio']:.2f}x) | "
            f"{s['event_bytes']:,} |"
        )
    for size in ("predict largest", "oip binary largest"):
        s, o = f["sklearn"][size], f["onnx"][size]
        lines.append(
            f"| {size} ({s['rows']:,} rows), rows/s and share of the engine's rate | "
            f"{s['rows_s']:,.0f} ({s['share_of_engine']:.2f}) | "
            f"{o['rows_s']:,.0f} ({o['share_of_engine']:.2f}) | {s['event_bytes']:,} |"
        )
    lines += [
        "",
        "An all-numeric model (the sample's six numeric features, no categories):",
        "",
        "| request | scikit-learn: handler / engine ms | ONNX Runtime: handler / engine ms |",
        "|---|---|---|",
    ]
    for size in ("predict 1000", "oip matrix 1000"):
        s, o = f["numeric"]["sklearn"][size], f["numeric"]["onnx"][size]
        lines.append(
            f"| {size} | {s['handler_ms']:.3f} / {s['engine_ms']:.3f} ({s['ratio']:.2f}x) | "
            f"{o['handler_ms']:.3f} / {o['engine_ms']:.3f} ({o['ratio']:.2f}x) |"
        )
    goal = f["goal_ratio_1000"]
    verdict = {e: "met" if f[e]["oip binary 1000"]["ratio"] <= goal else "not met" for e in ENGINES}
    numeric = {
        e: "met" if f["numeric"][e]["oip matrix 1000"]["ratio"] <= goal else "not met"
        for e in ENGINES
    }
    lines += [
        "",
        f"Goal, 1,000 rows within {goal}x of the engine: binary tensors "
        f"{verdict['sklearn']} on scikit-learn, {verdict['onnx']} on ONNX Runtime; one binary "
        f"[rows, features] tensor of the all-numeric model {numeric['sklearn']} on "
        f"scikit-learn, {numeric['onnx']} on ONNX Runtime.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
