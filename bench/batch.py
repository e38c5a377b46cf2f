"""`make bench-batch`: batch scoring's figures, each against a baseline measured in the same run.

1. Throughput of one child on a ~50 MB part (the library's `score_part`, S3 on loopback)
   against raw `predict_proba` on the same rows, already in a matrix, in the same process,
   in chunks of the same size: the cost of streaming, parsing, validating and writing. The two
   alternate for 3 rounds and each figure is the median, so a slow spell weighs on both.
2. Peak memory (max RSS) of a child process scoring a ~50 MB and a ~500 MB part: bounded by
   the chunk size, not the part size.
3. A 1,000,000-row CSV scored end to end on the local stack (`lambdaserve local up`, then
   `lambdaserve batch score --wait`): wall time, rows/s, parts, the batch worker's peak RSS.

Writes batch_results.json and .md
outside the tree (bench/outputs.py). A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from outputs import previous, write  # type: ignore[import-not-found]  # noqa: E402

BIN = Path(sys.executable).parent
CHUNK_ROWS = 5_000
ROUNDS = 3
CHILD = r"""
import json, re, sys, time, boto3
from lambdaserve.batch.job import Job, plan
from lambdaserve.batch.part import score_part
from lambdaserve.serving.predictor import Predictor
url, bundle, key, part_mb = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
predictor = Predictor.load(bundle)
job = Job.from_dict({"input": f"s3://bench/{key}", "output": "s3://bench/out/" + key,
                     "part_mb": float(part_mb)})
names = [f.name for f in predictor.manifest.features]
(part,) = plan(s3, job, names, [])
def hwm():  # VmHWM starts afresh at exec (ru_maxrss would carry the parent's peak over)
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1])
before = hwm()
t = time.perf_counter()
result = score_part(s3, predictor, job, part)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": result.rows_scored,
                  "rss_before_mb": before / 1024,
                  "peak_rss_mb": hwm() / 1024}))
"""


def customers(rows: int, seed: int = 5) -> bytes:
    """Sample customers as CSV with an id column."""
    from lambdaserve.bundle.sample import FEATURE_NAMES, generate

    records, _ = generate(rows, seed=seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", *FEATURE_NAMES])
    for i, r in enumerate(records):
        writer.writerow([f"c{i}", *("" if r[n] is None else r[n] for n in FEATURE_NAMES)])
    return out.getvalue().encode()


def moto_server() -> tuple[subprocess.Popen[bytes], str]:
    from lambdaserve.local.http import free_port

    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            import urllib.request

            urllib.request.urlopen(url + "/moto-api/", timeout=1)  # nosec B310
            break
        except OSError:
            time.sleep(0.1)
    return process, url


def s3_client(url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def throughput(bundle: Path, data: bytes, url: str) -> dict[str, Any]:
    """One child's rows/s against raw predict_proba on the same rows, same process."""
    import numpy as np

    from lambdaserve.batch.job import Job, plan
    from lambdaserve.batch.part import score_part
    from lambdaserve.serving.predictor import Predictor
    from lambdaserve.serving.schema import from_text

    s3 = s3_client(url)
    s3.put_object(Bucket="bench", Key="in/part.csv", Body=data)
    predictor = Predictor.load(bundle)
    names = [f.name for f in predictor.manifest.features]
    job = Job.from_dict(
        {"input": "s3://bench/in/part.csv", "output": "s3://bench/out/p/", "part_mb": 1024}
    )
    (part,) = plan(s3, job, names, [])
    features = {f.name: f for f in predictor.manifest.features}
    lines = list(csv.reader(io.StringIO(data.decode())))
    header = lines[0]
    records = [
        {n: from_text(features[n], v) for n, v in zip(header, row, strict=True) if n in features}
        for row in lines[1:]
    ]
    del lines
    predictor.parser.parse({"instances": records[:1]})  # warm-up
    chunks = [
        predictor.parser.parse({"instances": records[i : i + CHUNK_ROWS]})
        for i in range(0, len(records), CHUNK_ROWS)
    ]
    del records
    # Interleaved rounds, medians: a slow spell of the machine (or of the S3 server beside
    # it) weighs on both figures alike.
    child_s, raw_s = [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = score_part(s3, predictor, job, part)
        child_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for matrix in chunks:
            predictor.estimator.predict_proba(matrix)
        raw_s.append(time.perf_counter() - started)
    del chunks
    child, raw = statistics.median(child_s), statistics.median(raw_s)
    rows = result.rows_scored
    return {
        "part_mb": round(len(data) / 2**20, 1),
        "rows": rows,
        "child_rows_per_s": round(rows / child),
        "raw_predict_proba_rows_per_s": round(rows / raw),
        "ratio": round(raw / child, 3),
        "goal_ratio": 0.7,
        "rounds": ROUNDS,
        "note": "raw: predict_proba alone on matrices built beforehand, chunks of the same size; "
        "medians of interleaved rounds",
        "numpy": np.__version__,
    }


def peak_memory(bundle: Path, data: bytes, url: str) -> list[dict[str, Any]]:
    """A child process's peak RSS on a part of ~50 MB and one of ~500 MB (the same rows x10)."""
    s3 = s3_client(url)
    body = data.split(b"\n", 1)[1]
    big = data + body * 9
    out = []
    for key, content in (("mem/50.csv", data), ("mem/500.csv", big)):
        with tempfile.NamedTemporaryFile() as tmp:
            tmp.write(content)
            tmp.flush()
            s3.upload_file(tmp.name, "bench", key)
        answer = subprocess.run(
            [sys.executable, "-c", CHILD, url, str(bundle), key, "100000"],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(answer.stdout.strip().splitlines()[-1])
        out.append(
            {
                "part_mb": round(len(content) / 2**20),
                "rows": figures["rows"],
                "seconds": round(figures["seconds"], 1),
                "rss_after_model_load_mb": round(figures["rss_before_mb"]),
                "peak_rss_mb": round(figures["peak_rss_mb"]),
            }
        )
        del content
    return out


def end_to_end(rows: int) -> dict[str, Any]:
    """1,000,000 rows through `lambdaserve local up` and `lambdaserve batch score --wait`."""
    from lambdaserve.local.http import free_port
    from lambdaserve.local.process import up_command

    data = customers(rows, seed=9)
    with tempfile.TemporaryDirectory() as state:
        port, aws_port = free_port(), free_port()
        up = subprocess.Popen(
            up_command(port, aws_port, state),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        env = dict(os.environ)
        assert up.stdout is not None
        for line in up.stdout:
            if m := re.match(r"\s+export (\w+)=(\S+)", line):
                env[m[1]] = m[2]
            if "Ctrl-C" in line:
                break
        try:
            s3 = s3_client(env["AWS_ENDPOINT_URL"])
            bucket = env["LAMBDASERVE_BATCH_BUCKET"]
            s3.put_object(Bucket=bucket, Key="batch/input/bench/customers.csv", Body=data)
            started = time.perf_counter()
            answer = subprocess.run(
                [
                    str(BIN / "lambdaserve"),
                    "batch",
                    "score",
                    f"s3://{bucket}/batch/input/bench/",
                    f"s3://{bucket}/batch/output/bench/",
                    "--part-mb",
                    "8",
                    "--wait",
                    "--json",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            wall = time.perf_counter() - started
            report = json.loads(answer.stdout)
            peak = _worker_peak_rss(up.pid)
        finally:
            up.terminate()
            up.wait(timeout=60)
    return {
        "rows": report["rows_in"],
        "csv_mb": round(len(data) / 2**20, 1),
        "parts": report["parts"],
        "status": report["status"],
        "wall_seconds": round(wall, 1),
        "rows_per_s": round(report["rows_scored"] / wall),
        "batch_worker_peak_rss_mb": peak,
    }


def _worker_peak_rss(parent: int) -> int | None:
    """VmHWM of the local stack's batch worker (the process whose argv names BatchFunction)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if "BatchFunction" in cmdline and f"PPid:\t{parent}" in status:
            found = re.search(r"VmHWM:\s+(\d+) kB", status)
            return int(found[1]) // 1024 if found else None
    return None


def markdown(f: dict[str, Any]) -> str:
    t, e = f["throughput"], f["end_to_end"]
    lines = [
        "# Batch scoring benchmark",
        "",
        f"One child on a {t['part_mb']} MB part ({t['rows']:,} rows): "
        f"{t['child_rows_per_s']:,} rows/s against raw `predict_proba` at "
        f"{t['raw_predict_proba_rows_per_s']:,} rows/s: **{t['ratio']}x** "
        f"(goal >= {t['goal_ratio']}x).",
        "",
        "| part | rows | seconds | RSS after model load | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for m in f["memory"]:
        lines.append(
            f"| {m['part_mb']} MB | {m['rows']:,} | {m['seconds']} | "
            f"{m['rss_after_model_load_mb']} MB | {m['peak_rss_mb']} MB |"
        )
    lines += [
        "",
        f"End to end on the local stack: {e['rows']:,} rows ({e['csv_mb']} MB CSV) in "
        f"{e['wall_seconds']} s = {e['rows_per_s']:,} rows/s, {e['parts']} parts, "
        f"batch worker peak RSS {e['batch_worker_peak_rss_mb']} MB ({e['status']}).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    """All three, or those named: `bench/batch.py memory end_to_end`."""
    wanted = set(sys.argv[1:]) or {"throughput", "memory", "end_to_end"}
    figures: dict[str, Any] = previous("batch_results")
    sys.path.insert(0, str(ROOT / "src"))
    from lambdaserve.bundle import sample

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        sample.train(bundle)
        data = customers(1_150_000)  # ~50 MB
        process, url = moto_server()
        try:
            s3_client(url).create_bucket(Bucket="bench")
            if "throughput" in wanted:
                figures["throughput"] = throughput(bundle, data, url)
                print(json.dumps(figures["throughput"]), flush=True)
            if "memory" in wanted:
                figures["memory"] = peak_memory(bundle, data, url)
                print(json.dumps(figures["memory"]), flush=True)
        finally:
            process.terminate()
        del data
    if "end_to_end" in wanted:
        figures["end_to_end"] = end_to_end(1_000_000)
        print(json.dumps(figures["end_to_end"]), flush=True)
    write("batch_results", figures, markdown(figures))
    print(markdown(figures))


if __name__ == "__main__":
    main()
