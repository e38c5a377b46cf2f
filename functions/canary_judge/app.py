"""The canary judge for CodeDeploy's canaries: every minute, judge the alias's canary (if any)
and emit CanaryJudgeFailed for the deployment's alarm (lambdaserve.canary_judge)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdaserve.canary_judge import METRIC, judge_alias, settings_from_env
from lambdaserve.evidence import Evidence
from lambdaserve.monitor import CaptureReader, parse_window, registry_manifests

logger = Logger()
metrics = Metrics()
_cache: dict[str, Any] = {}


def clients() -> tuple[Any, Evidence]:
    """Made on first use, once per container (never at import)."""
    if "evidence" not in _cache:
        lam, s3 = boto3.client("lambda"), boto3.client("s3")
        function = os.environ["TARGET_FUNCTION"]
        manifests = registry_manifests(s3, os.environ["REGISTRY_BUCKET"])

        def profile_of(version: str) -> dict[str, Any] | None:
            config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
            env = config.get("Environment", {}).get("Variables", {})
            if not env.get("MODEL_VERSION"):
                return None  # the template's own sample: no registry manifest
            return manifests(env["MODEL_NAME"], env["MODEL_VERSION"]).baseline_profile

        reader = CaptureReader(s3, os.environ["MONITORING_BUCKET"])
        cloudwatch = boto3.client("cloudwatch")
        _cache["lam"] = lam
        _cache["evidence"] = Evidence(reader, cloudwatch, function, "live", profile_of)
    return _cache["lam"], _cache["evidence"]


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A schedule event (or {}): {"canary": null} without one, else the verdict."""
    now = dt.datetime.now(dt.UTC)
    start, end = parse_window(os.environ.get("CANARY_JUDGE_WINDOW", "10m"), None, now)
    lam, evidence = clients()
    verdict = judge_alias(lam, evidence, settings_from_env(os.environ), start, end)
    failed = verdict is not None and verdict["verdict"] == "fail"
    metrics.add_metric(name=METRIC, unit=MetricUnit.Count, value=1 if failed else 0)
    if verdict is None:
        return {"canary": None}
    log = logger.warning if failed else logger.info
    keys = ("verdict", "summary", "stable", "canary")
    log("canary judged", extra={key: verdict[key] for key in keys})
    return {"canary": verdict["canary"], "verdict": verdict}
