"""The monitoring part of template.yaml: capture path, monitor, alarms, dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from support import ROOT, packaged_template

from lambdaserve.local.template import sam_transform
from lambdaserve.monitor import metrics as monitor_metrics
from lambdaserve.serving import capture

# What AWS itself publishes, per namespace (CloudWatch metrics documentation of each service).
AWS_METRICS = {
    "AWS/Lambda": {
        "Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions",
        "ProvisionedConcurrencyUtilization", "ProvisionedConcurrencySpilloverInvocations",
        "ProvisionedConcurrentExecutions", "ProvisionedConcurrencyInvocations",
    },
    "AWS/ApiGateway": {"Count", "4XXError", "5XXError", "Latency", "IntegrationLatency"},
    "AWS/States": {
        "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsStarted", "ExecutionsTimedOut",
        "ExecutionsAborted", "ExecutionTime",
    },
}  # fmt: skip
OURS = "${MetricsNamespace}"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return sam_transform(packaged_template())


def emitted_by_code() -> set[str]:
    """Metric names the code emits: add_metric / single_metric literals, the monitor's names,
    and Powertools' ColdStart where a handler asks for it."""
    names: set[str] = set()
    sources = [*ROOT.glob("src/lambdaserve/**/*.py"), *ROOT.glob("functions/*/app.py")]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r'add_metric\(\s*"(\w+)"', text))
        names |= set(re.findall(r'single_metric\(\s*name="(\w+)"', text))
        if "capture_cold_start_metric=True" in text:
            names.add("ColdStart")
    names |= {v for k, v in vars(monitor_metrics).items() if k.isupper() and k != "SERVICE"}
    return names


def dashboard_metrics(body: str) -> list[tuple[str, str]]:
    """(namespace, metric name) of every metric and SEARCH a widget names."""
    found = []
    for widget in json.loads(body)["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                expression = row[0]["expression"]
                namespace = re.search(r"SEARCH\('\{(\$\{\w+\}|[^,}]+)", expression)
                metric = re.search(r'MetricName="(\w+)"', expression)
                assert namespace, expression
                assert metric, expression
                found.append((namespace.group(1), metric.group(1)))
            else:
                found.append((row[0], row[1]))
    return found


def _dashboard_body(cfn: dict[str, Any]) -> str:
    body: str = cfn["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # What CloudFormation substitutes: numbers where the JSON needs numbers.
    return body.replace("${DriftPsiThreshold}", "0.25").replace(
        "${PredictionDriftThreshold}", "0.1"
    )


def test_every_dashboard_metric_is_emitted_by_the_code_or_published_by_aws(
    cfn: dict[str, Any],
) -> None:
    named = dashboard_metrics(_dashboard_body(cfn))
    ours = emitted_by_code()
    assert len(named) >= 20
    for namespace, metric in named:
        if namespace == OURS:
            assert metric in ours, f"the dashboard shows {metric}, which no code emits"
        else:
            assert metric in AWS_METRICS[namespace], f"{namespace} publishes no {metric}"


def test_dashboard_covers_the_screen_the_issue_asks_for(cfn: dict[str, Any]) -> None:
    widgets = json.loads(_dashboard_body(cfn))["widgets"]
    titles = " | ".join(w["properties"]["title"] for w in widgets).lower()
    topics = ["version", "p99", "4xx", "5xx", "cold start", "throttles", "concurrency"]
    topics += ["drift per feature", "prediction drift", "batch runs", "init duration"]
    for topic in topics:
        assert topic in titles
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    referenced = {re.match(r"\$\{(\w+)\.Arn\}", a).group(1) for a in alarms["properties"]["alarms"]}  # type: ignore[union-attr]
    assert referenced <= set(cfn["Resources"])


def test_alarms_watch_emitted_metrics_and_notify_the_topic(cfn: dict[str, Any]) -> None:
    ours = emitted_by_code()
    alarms = {k: v for k, v in cfn["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    for name in ("PredictionDriftAlarm", "DriftedFeaturesAlarm", "ApiErrorRateAlarm",
                 "ApiLatencyAlarm", "ThrottlesAlarm"):  # fmt: skip
        props = alarms[name]["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        metrics = (
            [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
            if "Metrics" in props
            else [props]
        )
        for metric in metrics:
            namespace = metric["Namespace"]
            if namespace == {"Ref": "MetricsNamespace"}:
                assert metric["MetricName"] in ours
                assert metric["Dimensions"] == [{"Name": "service", "Value": "lambdaserve"}]
            else:
                assert metric["MetricName"] in AWS_METRICS[namespace]
    rate = alarms["ApiErrorRateAlarm"]["Properties"]
    assert (rate["EvaluationPeriods"], rate["DatapointsToAlarm"]) == (3, 2)
    assert "errors / requests" in rate["Metrics"][0]["Expression"]


def test_capture_reaches_s3_through_logs_and_firehose_without_s3_rights_for_predict(
    cfn: dict[str, Any],
) -> None:
    resources = cfn["Resources"]
    predict = resources["PredictFunction"]["Properties"]
    assert predict["LoggingConfig"]["LogGroup"] == {"Ref": "PredictLogGroup"}
    subscription = resources["CaptureSubscription"]["Properties"]
    assert subscription["LogGroupName"] == {"Ref": "PredictLogGroup"}
    assert capture.MARKER in subscription["FilterPattern"]
    assert subscription["DestinationArn"] == {"Fn::GetAtt": ["CaptureDeliveryStream", "Arn"]}
    s3 = resources["CaptureDeliveryStream"]["Properties"]["ExtendedS3DestinationConfiguration"]
    assert s3["Prefix"].startswith("capture/model=!{partitionKeyFromQuery:model}/version=")
    query = [
        p["ParameterValue"]
        for proc in s3["ProcessingConfiguration"]["Processors"]
        for p in proc["Parameters"]
        if p["ParameterName"] == "MetadataExtractionQuery"
    ]
    assert query == ["{model:.model,version:.model_version}"]  # the capture record's keys
    role = resources[predict["Role"]["Fn::GetAtt"][0]]["Properties"]
    actions = json.dumps(role.get("Policies", []))
    assert "s3:" not in actions, "predict only logs; it never writes S3"
    assert cfn["Parameters"]["CaptureSampleRate"]["Default"] == 0.1


def test_monitor_reads_capture_and_manifests_and_writes_only_reports(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    props = resources["MonitorFunction"]["Properties"]
    role = resources[props["Role"]["Fn::GetAtt"][0]]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    writes = [s for s in statements if "s3:PutObject" in json.dumps(s["Action"])]
    assert [w["Resource"] for w in writes] == [{"Fn::Sub": "${MonitoringBucket.Arn}/monitoring/*"}]
    schedule = [r for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert any(
        r["Properties"].get("ScheduleExpression") == {"Ref": "MonitorSchedule"} for r in schedule
    )
    assert props["Environment"]["Variables"]["DRIFT_MIN_ROWS"] == {"Ref": "DriftMinRows"}
