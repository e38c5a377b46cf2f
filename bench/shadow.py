"""`make bench-shadow`: what a shadow costs live's callers. On one local stack, interleaved
rounds of the same sequential requests (20 rows each) with a shadow mirroring 100% of them and
with none; the figure is live's p50 (and p99) round trip with the shadow over without, the
ratio of the pooled medians and the median of the per-round ratios. The shadow's own scoring
runs on this same 2-core machine (on Lambda it runs in environments of its own), so a cost
seen here is an upper bound. Writes shadow_results.json and .md
outside the tree (bench/outputs.py); asserts nothing.

    python bench/shadow.py [--rounds 6] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess  # nosec B404 - our own CLI, fixed argv
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from outputs import write  # type: ignore[import-not-found]  # noqa: E402

BIN = Path(sys.executable).parent


def start_stack(build_dir: Path, state: Path) -> tuple[subprocess.Popen[str], str, dict[str, str]]:
    """`lambdaserve local up`; the process, the API URL and the CLI's environment."""
    from lambdaserve.local.http import free_port

    argv = [
        str(BIN / "lambdaserve"), "local", "up", "--build-dir", str(build_dir),
        "--state-dir", str(state), "--port", str(free_port()), "--aws-port", str(free_port()),
        "--parameter", "AuthMode=NONE", "--parameter", "CaptureSampleRate=0",
    ]  # fmt: skip
    process = subprocess.Popen(  # nosec B603
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    env: dict[str, str] = {}
    url, deadline = "", time.monotonic() + 300
    for line in process.stdout:  # the API's URL, then the exports, then how to stop it
        if found := re.match(r"\s+export (\w+)=(\S+)", line):
            env[found[1]] = found[2]
        if found := re.match(r"API: (\S+)", line):
            url = found[1]
        if url and "Ctrl-C" in line:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, url, env
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError("the local stack did not come up")


def cli(env: dict[str, str], *args: str) -> Any:
    import os

    done = subprocess.run(  # nosec B603
        [str(BIN / "lambdaserve"), *args, "--json"], env={**os.environ, **env},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 7):
        raise RuntimeError(f"lambdaserve {' '.join(args)}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def timed(url: str, bodies: list[bytes]) -> list[float]:
    """Round trips in ms, one request after the other, as a caller sees them."""
    out = []
    for body in bodies:
        request = urllib.request.Request(  # nosec B310 - loopback
            f"{url}/predict", body, {"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:  # nosec B310
            answer.read()
        out.append((time.perf_counter() - started) * 1000)
    return out


FIRST = """
import json, sys, time
from lambdaserve.bundle import sample
from lambdaserve.serving.predictor import Predictor
from lambdaserve.serving.mirror import ShadowSwitch
predictor = Predictor.load(sys.argv[1])
records, _ = sample.generate(20 * 10, 3)
switch = ShadowSwitch("/bench/shadow") if sys.argv[2] == "on" else None
times = []
for i in range(0, len(records), 20):
    started = time.perf_counter()
    if switch:
        switch.current()  # what a request does: the first wakes the reader thread
    predictor.predict(predictor.parse({"instances": records[i : i + 20]}))
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps({"total": sum(times), "max": max(times), "boto3": "boto3" in sys.modules}))
"""


def first_requests(bundle: Path, repeats: int = 5) -> dict[str, Any]:
    """A new environment's first 10 requests (20 rows) with the switch's reader and without,
    in fresh processes: what the reader's imports and first read cost a cold environment."""
    import os

    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for _ in range(repeats):
        for mode in ("off", "on"):
            done = subprocess.run(  # nosec B603
                [sys.executable, "-c", FIRST, str(bundle), mode], env=env, capture_output=True,
                text=True, timeout=300, check=True,
            )  # fmt: skip
            runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, Any] = {}
    for mode, rows in runs.items():
        out[mode] = {
            "first10_ms": round(statistics.median(r["total"] for r in rows), 1),
            "max_ms": round(statistics.median(r["max"] for r in rows), 1),
            "boto3_imported": any(r["boto3"] for r in rows),
        }
    out["first10_ratio"] = round(out["on"]["first10_ms"] / out["off"]["first10_ms"], 3)
    return out


def warm_mirror_cost(bundle: Path, repeats: int = 2000) -> dict[str, Any]:
    """What mirroring adds inside a warm live function, per request of 20 rows: the mirror
    record built and written (to a sink), against the request's own validate + predict. On
    Lambda this is the whole cost to the caller: the shadow runs elsewhere."""
    import math

    from lambdaserve.bundle import sample
    from lambdaserve.serving.mirror import Mirror, ShadowConfig, ShadowSwitch
    from lambdaserve.serving.predictor import Predictor

    predictor = Predictor.load(bundle)
    switch = ShadowSwitch("/bench/shadow", fetch=lambda _: None)
    switch.config, switch._due = ShadowConfig("2", 100.0), math.inf  # read: on, 100%
    mirror = Mirror(switch, write=lambda _: None)
    records, _ = sample.generate(20, 5)
    body = {"instances": records}
    text = json.dumps(body)  # what the client sent: mirrored as it came
    own, extra = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        matrix = predictor.parse(body)
        result = predictor.predict(matrix)
        middle = time.perf_counter()
        mirror(predictor.manifest, matrix, result, 1.0, text)
        own.append(middle - started)
        extra.append(time.perf_counter() - middle)
    own_ms, extra_ms = statistics.median(own) * 1000, statistics.median(extra) * 1000
    return {
        "request_ms": round(own_ms, 3),
        "mirror_ms": round(extra_ms, 3),
        "ratio": round((own_ms + extra_ms) / own_ms, 3),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from lambdaserve.bundle import sample

    work = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    process, url, env = start_stack(args.build_dir, work / "state")
    try:
        sample.train(work / "retrain")
        version = str(cli(env, "publish", str(work / "retrain"))["version"])
        records, _ = sample.generate(20 * args.requests, 11)
        bodies = [json.dumps({"instances": records[i : i + 20]}).encode()
                  for i in range(0, len(records), 20)]  # fmt: skip
        timed(url, bodies[:50])  # warm: the live environment and its model
        samples: dict[str, list[float]] = {"off": [], "on": []}
        ratios = []
        for r in range(args.rounds):
            medians = {}
            for phase in ("off", "on") if r % 2 == 0 else ("on", "off"):
                if phase == "on":
                    cli(env, "shadow", "start", "retail-propensity", version, "--percent", "100")
                time.sleep(3)  # the switch is read every 2 s on the local stack
                times = timed(url, bodies)
                if phase == "on":
                    cli(env, "shadow", "stop")
                samples[phase] += times
                medians[phase] = statistics.median(times)
            ratios.append(medians["on"] / medians["off"])
            print(f"round {r + 1}: off {medians['off']:.2f} ms, on {medians['on']:.2f} ms")
        time.sleep(3)
        report = cli(env, "shadow", "report", "--min-rows", "1")
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {
        **summarise(samples, ratios, report, args),
        "warm_in_handler": warm_mirror_cost(work / "retrain"),
        "new_environment": first_requests(work / "retrain"),
    }


def summarise(
    samples: dict[str, list[float]], ratios: list[float], report: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:  # fmt: skip
    def q(values: list[float], p: float) -> float:
        return float(statistics.quantiles(values, n=100)[int(p) - 1])

    off, on = samples["off"], samples["on"]
    return {
        "rounds": args.rounds,
        "requests_per_phase": args.requests,
        "rows_per_request": 20,
        "p50_ms": {"off": round(statistics.median(off), 3), "on": round(statistics.median(on), 3)},
        "p99_ms": {"off": round(q(off, 99), 3), "on": round(q(on, 99), 3)},
        "p50_ratio": round(statistics.median(on) / statistics.median(off), 3),
        "p99_ratio": round(q(on, 99) / q(off, 99), 3),
        "per_round_ratio_median": round(statistics.median(ratios), 3),
        "per_round_ratios": [round(r, 3) for r in ratios],
        "last_shadow": {k: report.get(k) for k in ("rows", "requests", "verdict", "agreement")},
    }


def markdown(result: dict[str, Any]) -> str:
    r, n, w = result, result["new_environment"], result["warm_in_handler"]
    return "\n".join([
        "# Shadow deploys: live's latency with a 100% shadow against none",
        "",
        f"{r['rounds']} interleaved rounds of {r['requests_per_phase']} sequential requests of "
        f"{r['rows_per_request']} rows, on the local stack (the shadow scores on this machine).",
        "",
        "| figure | no shadow | 100% shadow | ratio |",
        "|---|---|---|---|",
        f"| p50 round trip (ms) | {r['p50_ms']['off']} | {r['p50_ms']['on']} | "
        f"{r['p50_ratio']:.3f} (per-round median {r['per_round_ratio_median']:.3f}) |",
        f"| p99 round trip (ms) | {r['p99_ms']['off']} | {r['p99_ms']['on']} | "
        f"{r['p99_ratio']:.3f} |",
        "",
        f"Per-round p50 ratios: {', '.join(f'{x:.3f}' for x in r['per_round_ratios'])}. "
        f"The last round's shadow compared {r['last_shadow']['rows']} rows of "
        f"{r['last_shadow']['requests']} requests ({r['last_shadow']['verdict']}, agreement "
        f"{r['last_shadow']['agreement']}).",
        "",
        "Inside a warm live function, per request of 20 rows (median of 2,000): validate + "
        f"predict {w['request_ms']} ms, the mirror record built and written {w['mirror_ms']} "
        f"ms: {w['ratio']:.3f}x. On Lambda that is all a caller pays; the shadow runs in "
        "environments of its own.",
        "",
        "A new environment's first 10 requests (20 rows each, in-process, median of 5 fresh "
        "processes), with the switch's reader (its imports and first read) and without:",
        "",
        "| figure | no switch | switch | ratio |",
        "|---|---|---|---|",
        f"| first 10 requests, total (ms) | {n['off']['first10_ms']} | {n['on']['first10_ms']} | "
        f"{n['first10_ratio']:.3f} |",
        f"| slowest of them (ms) | {n['off']['max_ms']} | {n['on']['max_ms']} | |",
        "",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    args = parser.parse_args()
    result = measure(args)
    write("shadow_results", result, markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
