"""The canary judge for CodeDeploy's canaries: every minute, judge the alias's canary (if any)
and emit CanaryJudgeFailed for the deployment's alarm (lambdaserve.judge.scheduled)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdaserve.judge.evidence import Evidence
from lambdaserve.judge.scheduled import METRIC, ScheduledJudgeSettings, judge_alias
from lambdaserve.monitor.run import registry_manifests
from lambdaserve.monitor.window import CaptureReader, parse_window

settings = ScheduledJudgeSettings.from_env()
logger = Logger()
metrics = Metrics()


@functools.cache
def lambda_client() -> Any:
    """One per container, made on first use (never at import)."""
    return boto3.client("lambda")


@functools.cache
def evidence() -> Evidence:
    """Where the judge reads each version's evidence, once per container."""
    lam, s3 = lambda_client(), boto3.client("s3")
    manifests = registry_manifests(s3, settings.registry_bucket)

    def profile_of(version: str) -> dict[str, Any] | None:
        config = lam.get_function_configuration(
            FunctionName=settings.target_function, Qualifier=version
        )
        env = config.get("Environment", {}).get("Variables", {})
        if not env.get("MODEL_VERSION"):
            return None  # the template's own sample: no registry manifest
        return manifests(env["MODEL_NAME"], env["MODEL_VERSION"]).baseline_profile

    reader = CaptureReader(s3, settings.monitoring_bucket)
    cloudwatch = boto3.client("cloudwatch")
    return Evidence(reader, cloudwatch, settings.target_function, settings.alias, profile_of)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A schedule event (or {}): {"canary": null} without one, else the verdict."""
    now = dt.datetime.now(dt.UTC)
    start, end = parse_window(settings.window, None, now)
    verdict = judge_alias(lambda_client(), evidence(), settings.judge, start, end)
    failed = verdict is not None and verdict["verdict"] == "fail"
    metrics.add_metric(name=METRIC, unit=MetricUnit.Count, value=1 if failed else 0)
    if verdict is None:
        return {"canary": None}
    log = logger.warning if failed else logger.info
    keys = ("verdict", "summary", "stable", "canary")
    log("canary judged", extra={key: verdict[key] for key in keys})
    return {"canary": verdict["canary"], "verdict": verdict}
