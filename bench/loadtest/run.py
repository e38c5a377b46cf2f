"""`make loadtest`: the Black-Friday profile (locustfile.py) against the local stack, once per
cold-start strategy (none, provisioned, snapstart), each on a stack of its own started here
with the same reserved concurrency. Loopback only, bounded in time (the profile's phases) and
so in requests.

Per strategy and phase: requests, p50/p95/p99 latency of the answered (2xx) requests, requests
per second, cold starts (init or restore), throttles (the template's mapped 503) and any other
5xx. Writes loadtest_results.json, .md and .png
outside the tree (bench/outputs.py) (latency and in-flight
requests over time). A benchmark: it asserts nothing, and reports what it saw.

    python bench/loadtest/run.py [--strategies none,provisioned,snapstart] [--url URL ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess  # nosec B404 - our own CLI and locust, fixed argv
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from outputs import results_dir, write  # type: ignore[import-not-found]  # noqa: E402
from report import markdown, plot, total_seconds  # type: ignore[import-not-found]  # noqa: E402

ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
STRATEGIES = ("none", "provisioned", "snapstart")
PHASES = ("warmup", "steady", "ramp", "spike")


def start_stack(strategy: str, args: argparse.Namespace, state: Path) -> tuple[Any, str]:
    """`lambdaserve local up` with the strategy; returns the process and the API URL."""
    from lambdaserve.local.http import free_port

    argv = [
        str(BIN / "lambdaserve"), "local", "up", "--build-dir", str(args.build_dir),
        "--state-dir", str(state), "--port", str(free_port()), "--aws-port", str(free_port()),
        "--max-environments", str(args.max_environments),
        "--parameter", f"ColdStartStrategy={strategy}",
        "--parameter", f"ReservedConcurrency={args.reserved}",
        "--parameter", f"ProvisionedConcurrency={args.provisioned}",
        "--parameter", "AuthMode=NONE",
        "--parameter", "CaptureSampleRate=0",
    ]  # fmt: skip
    process = subprocess.Popen(  # nosec B603
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    )
    output = process.stdout
    assert output is not None
    deadline = time.monotonic() + 300
    for line in output:
        if found := re.match(r"API: (\S+)", line):
            threading.Thread(target=output.read, daemon=True).start()  # drained, never full
            return process, found[1]
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError(f"the {strategy} stack did not come up")


def run_locust(url: str, args: argparse.Namespace, rows: Path) -> None:
    env = {
        **os.environ,
        "LOADTEST_ROWS_FILE": str(rows),
        "LOADTEST_STEADY_USERS": str(args.users),
        "LOADTEST_RAMP_X": str(args.ramp_x),
        "LOADTEST_SPIKE_X": str(args.spike_x),
        "LOADTEST_WARMUP_S": str(args.warmup),
        "LOADTEST_STEADY_S": str(args.steady),
        "LOADTEST_RAMP_S": str(args.ramp),
        "LOADTEST_SPIKE_S": str(args.spike),
        "LOADTEST_USER_RPS": str(args.user_rps),
    }
    argv = [str(BIN / "locust"), "-f", str(HERE / "locustfile.py"), "--headless", "--host", url,
            "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]  # fmt: skip
    budget = total_seconds(args) + 120
    subprocess.run(argv, env=env, cwd=ROOT, timeout=budget, check=True)  # nosec B603


def read_rows(path: Path) -> tuple[float, list[dict[str, Any]]]:
    start, rows = 0.0, []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "test_start" in row:
            start = row["test_start"]
        else:
            rows.append(row)
    return start or min(r["start"] for r in rows), rows


def _lengths(args: argparse.Namespace) -> dict[str, float]:
    return {"warmup": args.warmup, "steady": args.steady, "ramp": args.ramp, "spike": args.spike}


def phase_of(offset: float, args: argparse.Namespace) -> str:
    """The phase a request started in (the spike's last requests end after it: still its)."""
    end = 0.0
    for name, seconds in _lengths(args).items():
        end += seconds
        if offset < end:
            return name
    return PHASES[-1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summarise(rows: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """One phase's figures (latency of answered requests only: a throttle is fast)."""
    ok = [r["ms"] for r in rows if 200 <= r["status"] < 300]
    throttled = [r for r in rows if r["status"] in (429, 503) and r["retry_after"]]
    return {
        "requests": len(rows),
        "p50_ms": percentile(ok, 0.5),
        "p95_ms": percentile(ok, 0.95),
        "p99_ms": percentile(ok, 0.99),
        "max_ms": round(max(ok), 1) if ok else None,
        "rps": round(len(rows) / seconds, 1),
        "cold_starts": sum(bool(r["cold"]) for r in rows),
        "throttles": len(throttled),
        "throttles_without_retry_after": sum(
            r["status"] in (429, 503) and not r["retry_after"] for r in rows
        ),
        "errors_5xx": sum(r["status"] >= 500 for r in rows) - len(throttled),
        "connection_errors": sum(r["status"] == 0 for r in rows),
    }


def analyse(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    start, rows = read_rows(path)
    for row in rows:
        row["offset"] = row["start"] - start
        row["phase"] = phase_of(row["offset"], args)
    lengths = _lengths(args)
    phases = {p: summarise([r for r in rows if r["phase"] == p], lengths[p]) for p in PHASES}
    colds = {kind: [float(r["cold"].split()[1]) for r in rows if r["cold"].startswith(kind)]
             for kind in ("init", "restore")}  # fmt: skip
    return {
        "phases": phases,
        "environments_seen": len({r["environment"] for r in rows if r["environment"]}),
        "init_ms_median": round(statistics.median(colds["init"]), 1) if colds["init"] else None,
        "restore_ms_median": (
            round(statistics.median(colds["restore"]), 1) if colds["restore"] else None
        ),
        "series": [
            [round(r["offset"], 3), round(r["ms"], 1), r["status"], r["cold"]] for r in rows
        ],
    }


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """The closing note's ratios, each from this run."""
    out: dict[str, Any] = {}
    for strategy, found in results.items():
        steady, ramp = found["phases"]["steady"], found["phases"]["ramp"]
        ratio = (ramp["p99_ms"] / steady["p99_ms"]) if ramp["p99_ms"] and steady["p99_ms"] else None
        out[strategy] = {
            "p99_ramp_over_steady": round(ratio, 2) if ratio else None,
            "max_ramp_over_steady": (
                round(ramp["max_ms"] / steady["max_ms"], 2)
                if ramp["max_ms"] and steady["max_ms"]
                else None
            ),
            "cold_starts_in_ramp": ramp["cold_starts"],
            "throttles": sum(p["throttles"] for p in found["phases"].values()),
            "unmapped_5xx": sum(p["errors_5xx"] for p in found["phases"].values()),
        }
    init = results.get("none", {}).get("init_ms_median")
    restore = results.get("snapstart", {}).get("restore_ms_median")
    if init and restore:
        out["snapstart_restore_over_init"] = round(restore / init, 3)
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--url", help="an already running stack (one strategy, named by --strategies)"
    )
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build")
    parser.add_argument(
        "--out", type=Path, default=results_dir(), help="where the results go (outside the tree)"
    )
    parser.add_argument("--users", type=int, default=2)
    parser.add_argument("--user-rps", type=float, default=4)
    parser.add_argument("--ramp-x", type=float, default=8)
    parser.add_argument("--spike-x", type=float, default=12)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--steady", type=float, default=20)
    parser.add_argument("--ramp", type=float, default=15)
    parser.add_argument("--spike", type=float, default=10)
    parser.add_argument("--reserved", type=int, default=6)
    parser.add_argument("--provisioned", type=int, default=4)
    parser.add_argument("--max-environments", type=int, default=8)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    sys.path.insert(0, str(ROOT / "src"))
    results: dict[str, Any] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for strategy in args.strategies.split(","):
        with tempfile.TemporaryDirectory(prefix=f"loadtest-{strategy}-") as tmp:
            process, url = (None, args.url) if args.url else start_stack(strategy, args, Path(tmp))
            try:
                print(f"{strategy}: {url}", flush=True)
                run_locust(url, args, Path(tmp) / "rows.jsonl")
                results[strategy] = analyse(Path(tmp) / "rows.jsonl", args)
            finally:
                if process is not None:
                    process.send_signal(signal.SIGINT)
                    try:
                        process.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        print(f"{strategy}: the stack did not stop in 60 s, killed", flush=True)
                        process.kill()
    summary = figures(results)
    public = {s: {k: v for k, v in r.items() if k != "series"} for s, r in results.items()}
    profile = {k: v for k, v in vars(args).items() if k not in ("out", "build_dir", "url")}
    report = {"profile": profile, "strategies": public, "figures": summary}
    write("loadtest_results", report, markdown(public, summary, args), args.out)
    plot(results, args, args.out / "loadtest_results.png")
    print(markdown(public, summary, args))
    return report


if __name__ == "__main__":
    main()
