"""The capture path and the monitor against moto: the predict handler's capture lines go into
CloudWatch Logs as Lambda would put them, the log group's subscription takes them through
Firehose to S3, and the monitor handler reads them, judges, reports and emits metrics."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from support import ROOT, Account, FakeLambdaContext, import_fresh, load_event

from lambdaserve.bundle import sample
from lambdaserve.cli.context import Services
from lambdaserve.cli.main import main
from lambdaserve.monitor import metrics as monitor_metrics
from lambdaserve.serving.predictor import sha256_of

MONITORING = "monitoring-test"
GROUP = "/aws/lambda/predict"


@pytest.fixture
def capture_path(account: Account) -> Account:
    """The template's capture resources, made in moto."""
    boto3.client("s3").create_bucket(Bucket=MONITORING)
    stream = boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName="capture",
        ExtendedS3DestinationConfiguration={
            "BucketARN": f"arn:aws:s3:::{MONITORING}",
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "Prefix": "capture/",
        },
    )["DeliveryStreamARN"]
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="2026/11/27/[1]abc")
    logs.put_subscription_filter(
        logGroupName=GROUP,
        filterName="capture",
        filterPattern="{ $.lambdaserve_capture = 1 }",
        destinationArn=stream,
        roleArn="arn:aws:iam::123456789012:role/logs",
    )
    return account


@pytest.fixture
def serving(
    capture_path: Account, sample_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    """The predict handler serving the published sample (v1), capturing every request."""
    published = capture_path.registry.publish(sample_bundle, "ci")
    (sample_bundle / "manifest.json").write_bytes(published.raw_manifest)
    for key, value in {
        "POWERTOOLS_SERVICE_NAME": "lambdaserve",
        "POWERTOOLS_METRICS_NAMESPACE": "lambdaserve-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "MODEL_DIR": str(sample_bundle),
        "MODEL_NAME": published.name,
        "MODEL_VERSION": published.version,
        "MODEL_SHA256": sha256_of(sample_bundle / "model.joblib"),
        "CAPTURE_SAMPLE_RATE": "1",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "MONITORING_BUCKET": MONITORING,
        "REGISTRY_BUCKET": capture_path.bucket,
        "DRIFT_MIN_ROWS": "500",
    }.items():
        monkeypatch.setenv(key, value)
    return import_fresh(ROOT / "functions/predict/app.py", "predict_app")


def traffic(predict: ModuleType, capsys: pytest.CaptureFixture[str], rows: int, mix: str) -> None:
    """Requests of 100 customers; what the function printed goes to its log group."""
    records, _ = sample.generate(rows, 7 + rows, mix)
    event = load_event("predict.json")
    for start in range(0, rows, 100):
        body = json.dumps({"instances": records[start : start + 100]})
        assert (
            predict.lambda_handler({**event, "body": body}, FakeLambdaContext())["statusCode"]
            == 200
        )
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    boto3.client("logs").put_log_events(
        logGroupName=GROUP,
        logStreamName="2026/11/27/[1]abc",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": line} for line in lines],
    )


@pytest.fixture
def monitor_handler(serving: ModuleType) -> Callable[[dict[str, Any]], Any]:
    module = import_fresh(ROOT / "functions/monitor/app.py", "monitor_app")
    return lambda event: module.lambda_handler(event, FakeLambdaContext())


def _emf_names(out: str) -> set[str]:
    names = set()
    for line in out.splitlines():
        if line.startswith('{"_aws"'):
            names |= {
                m["Name"]
                for d in json.loads(line)["_aws"]["CloudWatchMetrics"]
                for m in d["Metrics"]
            }
    return names


def test_captured_requests_reach_s3_and_the_monitor_judges_them(
    serving: ModuleType,
    monitor_handler: Callable[[dict[str, Any]], Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A start within the second the first object is written: S3 keeps LastModified to the
    # second, and that object must still be read.
    since = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    traffic(serving, capsys, 1200, "black-friday")
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=MONITORING, Prefix="capture/")["Contents"]]
    assert keys, "the subscription delivered nothing"
    answer = monitor_handler({"since": since})
    (result,) = answer["results"]
    assert (result["model"], result["version"], result["rows"]) == ("retail-propensity", "1", 1200)
    assert result["status"] == "drift"
    assert {f["name"] for f in result["features"] if f["status"] == "drift"} == {
        "discount_pct",
        "device",
    }
    report = json.loads(
        s3.get_object(Bucket=MONITORING, Key="monitoring/retail-propensity/1/latest.json")[
            "Body"
        ].read()
    )
    assert report["rows"] == 1200
    assert len(report["features"][0]["baseline"]) == len(report["features"][0]["labels"])
    html = s3.get_object(Bucket=MONITORING, Key="monitoring/retail-propensity/1/latest.html")
    assert html["ContentType"].startswith("text/html")
    emitted = _emf_names(capsys.readouterr().out)
    assert {monitor_metrics.DRIFTED_FEATURES, monitor_metrics.PREDICTION_DRIFT,
            monitor_metrics.FEATURE_DRIFT, monitor_metrics.MONITORED_ROWS} <= emitted  # fmt: skip


def test_a_window_with_too_few_rows_emits_no_drift_figure(
    serving: ModuleType,
    monitor_handler: Callable[[dict[str, Any]], Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    traffic(serving, capsys, 200, "black-friday")
    (result,) = monitor_handler({})["results"]  # the schedule's event: its window
    assert (result["status"], result["rows"]) == ("insufficient_data", 200)
    assert _emf_names(capsys.readouterr().out) == {monitor_metrics.MONITORED_ROWS}


@pytest.mark.parametrize(
    "event",
    [{"window": "soon"}, {"since": "yesterday"}, {"model": "retail-propensity", "version": "9"}],
)
def test_requests_the_monitor_cannot_run_answer_an_error(
    monitor_handler: Callable[[dict[str, Any]], Any], event: dict[str, Any]
) -> None:
    assert set(monitor_handler(event)) == {"error"}


def test_monitor_run_and_report_through_the_cli(
    serving: ModuleType,
    monitor_handler: Callable[[dict[str, Any]], Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    traffic(serving, capsys, 600, "training")

    class Invoker:
        def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> Any:
            assert (function, qualifier) == ("monitor-fn", "$LATEST")
            with contextlib.redirect_stdout(io.StringIO()):  # its logs go to CloudWatch
                return monitor_handler(event)

    monkeypatch.setenv("LAMBDASERVE_MONITOR_FUNCTION", "monitor-fn")
    monkeypatch.setenv("LAMBDASERVE_MONITORING_BUCKET", MONITORING)
    runner = CliRunner(mix_stderr=False)
    args = ["monitor", "run", "retail-propensity", "1", "--json"]
    done = runner.invoke(main, [*args, "--window", "2h"], obj=Services(invoker=Invoker()))
    assert done.exit_code == 0, done.stderr
    (result,) = json.loads(done.stdout)  # always an array: one result per model version
    assert set(result) == {"model", "version", "window", "rows", "status", "features",
                           "prediction", "report_uri"}  # fmt: skip
    assert (result["status"], result["rows"]) == ("ok", 600)
    assert {"name", "measure", "value", "status"} <= set(result["features"][0])
    out = tmp_path / "report.html"
    done = runner.invoke(main, ["monitor", "report", "--out", str(out)], obj=Services())
    assert done.exit_code == 0, done.stderr
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    refused = runner.invoke(
        main, ["monitor", "run", "--window", "0h"], obj=Services(invoker=Invoker())
    )
    assert refused.exit_code == 1  # the table's failure: a run the monitor cannot make
    assert refused.stderr.strip().splitlines() == ["Error: window '0h' is not like 30m, 1h or 7d"]
