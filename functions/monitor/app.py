"""The drift monitor: on its schedule (the last hour) or on demand (`lambdaserve monitor run`),
measure captured rows against each model version's baseline, write the reports, emit metrics."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdaserve.drift import Thresholds
from lambdaserve.monitor import (
    CaptureReader,
    Monitor,
    MonitorError,
    ReportStore,
    parse_window,
    registry_manifests,
    summary,
)
from lambdaserve.monitor_metrics import emit

logger = Logger()
_cache: dict[str, Any] = {}


def monitor() -> Monitor:
    """One per container, its clients made on first use (never at import)."""
    if "monitor" not in _cache:
        s3 = boto3.client("s3")
        bucket = os.environ["MONITORING_BUCKET"]
        _cache["monitor"] = Monitor(
            CaptureReader(s3, bucket),
            registry_manifests(s3, os.environ["REGISTRY_BUCKET"]),
            Thresholds.from_env(os.environ),
            ReportStore(s3, bucket),
        )
    found: Monitor = _cache["monitor"]
    return found


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """event: {} or an EventBridge schedule event (the last MONITOR_WINDOW), or
    {"model", "version", "window": "1h" | "since": ISO}. Answers {"results": [...]} or, for a
    request it cannot run, {"error": "..."}."""
    asked = event if isinstance(event, dict) and "detail-type" not in event else {}
    now = dt.datetime.now(dt.UTC)
    try:
        start, end = parse_window(
            asked.get("window") or os.environ.get("MONITOR_WINDOW", "1h"), asked.get("since"), now
        )
        results = monitor().run(start, end, asked.get("model"), asked.get("version"))
    except MonitorError as exc:
        logger.warning("monitor request refused", extra={"reason": str(exc)})
        return {"error": str(exc)}
    emit(results, os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "lambdaserve"))
    for result in results:
        logger.info("monitor verdict", extra=summary(result) | {"features": None})
    return {"results": [summary(r) for r in results]}
