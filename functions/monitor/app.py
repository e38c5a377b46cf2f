"""The drift monitor: on its schedule (the last hour) or on demand (`lambdaserve monitor run`),
measure captured rows against each model version's baseline, write the reports, emit metrics."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdaserve.monitor.metrics import emit
from lambdaserve.monitor.run import Monitor, ReportStore, registry_manifests, summary
from lambdaserve.monitor.settings import MonitorSettings
from lambdaserve.monitor.window import CaptureReader, MonitorError, parse_window

settings = MonitorSettings.from_env()
logger = Logger()


@functools.cache
def monitor() -> Monitor:
    """One per container, its clients made on first use (never at import)."""
    s3 = boto3.client("s3")
    return Monitor(
        CaptureReader(s3, settings.monitoring_bucket),
        registry_manifests(s3, settings.registry_bucket),
        settings.thresholds,
        ReportStore(s3, settings.monitoring_bucket),
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """event: {} or an EventBridge schedule event (the last MONITOR_WINDOW), or
    {"model", "version", "window": "1h" | "since": ISO}. Answers {"results": [...]} or, for a
    request it cannot run, {"error": "..."}."""
    asked = event if isinstance(event, dict) and "detail-type" not in event else {}
    now = dt.datetime.now(dt.UTC)
    try:
        start, end = parse_window(asked.get("window") or settings.window, asked.get("since"), now)
        results = monitor().run(start, end, asked.get("model"), asked.get("version"))
    except MonitorError as exc:
        logger.warning("monitor request refused", extra={"reason": str(exc)})
        return {"error": str(exc)}
    emit(results, settings.metrics_namespace)
    for result in results:
        logger.info("monitor verdict", extra=summary(result) | {"features": None})
    return {"results": [summary(r) for r in results]}
