"""`make bench-engines`: the ONNX engine against the scikit-learn one, on the built artifacts,
each figure a median of 5 fresh isolated processes (bench/probe.py), ratios from one run.

1. Cold init (import the handler, load the model, answer one request) of each engine, against
   the scikit-learn floor (a process doing only `import joblib; joblib.load(model)`), rounds
   interleaved so a slow spell weighs on all alike. Goal: ONNX at most 0.2x the floor.
2. Warm: the handler's time against the engine's own (its predict_proba, or the ONNX session
   on the same input) at 1 and 1,000 rows, and rows/s of the largest request that fits
   Lambda's 6 MB payload against the engine's own rows/s.
3. Sizes: function + layers of each engine's deployment against Lambda's 262,144,000 bytes.
4. Parity: `bundle --engine auto` on every model of the test zoo: which serve with ONNX, with
   what differences, and why the others do not.

The models: the built ModelLayer's sample (scikit-learn) and `sample train --engine onnx`
(the same data, categories as codes), made here with the dev venv. Writes
engines_results.json and .md, outside the tree (bench/outputs.py). A benchmark: it asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests"), str(BENCH)]

from outputs import write  # type: ignore[import-not-found]  # noqa: E402
from run import (  # type: ignore[import-not-found]  # noqa: E402
    BUILD,
    LAMBDA_LIMIT,
    RUNS,
    columnar,
    event,
    folder_bytes,
    handler_env,
    instances,
    largest_batch,
    med,
    probe,
    runs,
)

ENGINES = ("sklearn", "onnx")


def zoo_parity() -> dict[str, Any]:
    from zoo import ZOO

    from lambdaserve.bundle.make import make_bundle

    found = {}
    for name, make in sorted(ZOO.items()):
        model = make()
        with tempfile.TemporaryDirectory() as out:
            bundled = make_bundle(
                model.estimator,
                name=name,
                spec=model.spec,
                sample_rows=model.requests,
                out_dir=Path(out),
                engine="auto",
            )
        found[name] = {"engine": bundled.engine, **(bundled.parity or {})}
    return found


def main() -> None:
    from lambdaserve import manifest
    from lambdaserve.bundle import sample
    from lambdaserve.local.process import lambda_runtime_dir

    model_dirs = {"sklearn": BUILD / "ModelLayer" / "model"}
    onnx_dir = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    sample.train(onnx_dir, engine="onnx")
    model_dirs["onnx"] = onnx_dir
    runtime = str(lambda_runtime_dir(Path(tempfile.mkdtemp(prefix="bench-runtime-"))))
    layer = {"sklearn": "RuntimeLayer", "onnx": "OnnxRuntimeLayer"}
    features = [f.to_dict() for f in manifest.read(model_dirs["sklearn"]).features]
    records, _ = sample.generate(250_000, seed=2026)  # more than the largest columnar request
    events = {
        "1": event(instances(records[:1])),
        "1000": event(instances(records[:1000])),
        "1000 columnar": event(columnar(records[:1000])),
    }
    largest = {"batch": largest_batch(records), "batch columnar": largest_batch(records, columnar)}
    batch_events = {
        "batch": event(instances(largest["batch"])),
        "batch columnar": event(columnar(largest["batch columnar"])),
    }
    repeat = {"1": 300, "1000": 40, "1000 columnar": 40, "batch": 3, "batch columnar": 3}
    specs, envs = {}, {}
    for engine in ENGINES:
        paths = [str(BUILD / "PredictFunction"), str(BUILD / layer[engine] / "python"),
                 str(BUILD / "ServingLayer/python"), runtime]  # fmt: skip
        specs[engine] = {"paths": paths, "handler": "app.lambda_handler", "engine": engine,
                         "model": str(model_dirs[engine] / "model.joblib"),
                         "model_dir": str(model_dirs[engine]), "features": features}  # fmt: skip
        envs[engine] = handler_env(model_dirs[engine])

    print("cold init (5 interleaved rounds) ...", file=sys.stderr)
    cold: dict[str, list[float]] = {"floor": [], "sklearn": [], "onnx": []}
    for _ in range(RUNS):
        cold["floor"].append(
            probe({**specs["sklearn"], "mode": "floor"}, envs["sklearn"])["seconds"]
        )
        for engine in ENGINES:
            spec = {**specs[engine], "mode": "cold", "events": events}
            cold[engine].append(probe(spec, envs[engine])["seconds"])
    floor = med(cold["floor"])
    figures: dict[str, Any] = {"runs": RUNS, "cold": {"floor_s": floor}}
    for engine in ENGINES:
        figures["cold"][engine] = {
            "s": med(cold[engine]),
            "ratio_to_floor": med(cold[engine]) / floor,
        }

    print("warm, per engine ...", file=sys.stderr)
    for engine in ENGINES:
        figures[engine] = warm_figures(specs[engine], envs[engine], events, batch_events, repeat)

    sizes = {}
    for engine in ENGINES:
        parts = {
            d: folder_bytes(BUILD / d) for d in ("PredictFunction", layer[engine], "ServingLayer")
        }
        parts["model"] = folder_bytes(model_dirs[engine])
        sizes[engine] = {"bytes": parts, "total": sum(parts.values()),
                         "share_of_limit": sum(parts.values()) / LAMBDA_LIMIT}  # fmt: skip
    figures["sizes"] = sizes
    print("parity on the test zoo ...", file=sys.stderr)
    figures["zoo"] = zoo_parity()
    report = markdown(figures)
    write("engines_results", figures, report)
    print(report)


def warm_figures(
    spec: dict[str, Any],
    env: dict[str, str],
    events: dict[str, Any],
    batch_events: dict[str, Any],
    repeat: dict[str, int],
) -> dict[str, Any]:
    """Handler against engine: ms per request up to 1,000 rows; rows/s of the largest."""
    spec = {**spec, "mode": "warm", "repeat": repeat, "stdlib_json": True}
    warm = runs({**spec, "events": events}, env)
    big = runs({**spec, "events": batch_events}, env)
    entry: dict[str, Any] = {}
    for size in events:
        handler = med([r[size]["handler"] for r in warm])
        stdlib = med([r[size]["handler_stdlib_json"] for r in warm])
        own = med([r[size]["predict_proba"] for r in warm])
        entry[size] = {"handler_ms": handler * 1e3, "engine_ms": own * 1e3,
                       "ratio": handler / own, "stdlib_json_ms": stdlib * 1e3,
                       "stdlib_json_ratio": stdlib / own}  # fmt: skip
    for name in batch_events:
        handler = med([r[name]["handler"] for r in big])
        stdlib = med([r[name]["handler_stdlib_json"] for r in big])
        own = med([r[name]["predict_proba"] for r in big])
        rows = big[0][name]["rows"]
        entry[name] = {"rows": rows, "rows_s": rows / handler, "engine_rows_s": rows / own,
                       "ratio": own / handler, "stdlib_json_rows_s": rows / stdlib,
                       "stdlib_json_ratio": own / stdlib}  # fmt: skip
    return entry


def markdown(f: dict[str, Any]) -> str:
    c = f["cold"]
    lines = [
        "# Engines: scikit-learn and ONNX Runtime, built artifacts",
        "",
        f"Median of {f['runs']} fresh processes per figure; ratios within one run.",
        "",
        "| | scikit-learn | ONNX Runtime |",
        "|---|---|---|",
        f"| cold init, s (floor {c['floor_s']:.3f}) | {c['sklearn']['s']:.3f} "
        f"({c['sklearn']['ratio_to_floor']:.2f}x) | {c['onnx']['s']:.3f} "
        f"({c['onnx']['ratio_to_floor']:.2f}x) |",
    ]
    for size in ("1", "1000", "1000 columnar"):
        s, o = f["sklearn"][size], f["onnx"][size]
        lines.append(
            f"| {size} row(s): handler / engine ms | {s['handler_ms']:.3f} / "
            f"{s['engine_ms']:.3f} ({s['ratio']:.2f}x) | {o['handler_ms']:.3f} / "
            f"{o['engine_ms']:.3f} ({o['ratio']:.2f}x) |"
        )
    for name in ("batch", "batch columnar"):
        s, o = f["sklearn"][name], f["onnx"][name]
        lines.append(
            f"| largest {name.replace('batch', 'request')} ({s['rows']:,} rows): rows/s, share "
            f"of the engine's | {s['rows_s']:,.0f} ({s['ratio']:.2f}) | {o['rows_s']:,.0f} "
            f"({o['ratio']:.2f}) |"
        )
    lines.append(
        "| the same with the standard library's JSON (interleaved in the same processes): "
        "1,000 rows, handler / engine; the largest request's share of the engine's rate | "
        + " | ".join(
            f"{f[e]['1000']['stdlib_json_ratio']:.2f}x; {f[e]['batch']['stdlib_json_ratio']:.2f}"
            for e in ENGINES
        )
        + " |"
    )
    z = f["sizes"]
    lines.append(
        f"| function + layers, MB (share of Lambda's limit) | "
        f"{z['sklearn']['total'] / 1e6:.1f} ({z['sklearn']['share_of_limit']:.0%}) | "
        f"{z['onnx']['total'] / 1e6:.1f} ({z['onnx']['share_of_limit']:.0%}) |"
    )
    lines += [
        "",
        "| zoo model | engine (auto) | rows proven | differing | largest difference | why not |",
        "|---|---|---|---|---|---|",
    ]
    for name, p in f["zoo"].items():
        worst = p.get("max_probability_difference", p.get("max_relative_difference"))
        lines.append(
            f"| {name} | {p['engine']} | {p.get('rows', '')} | {p.get('differing', '')} | "
            f"{'' if worst is None else f'{worst:.2g}'} | {(p.get('reason') or '')[:90]} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
