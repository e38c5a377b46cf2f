"""Batch scoring's steps (plan, score a part, finish), called by the BatchScoring state machine."""

# ruff: noqa: E402 - the thread limits must be set before numpy and scikit-learn are imported
from __future__ import annotations

import functools
from typing import Any

from lambdaserve.shared.threads import limit_threads

limit_threads()  # before numpy and scikit-learn load: OpenMP and BLAS read it once


import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdaserve.batch.steps import BatchSteps
from lambdaserve.serving.predictor import Predictor
from lambdaserve.serving.settings import Settings
from lambdaserve.shared.snapstart import register_after_restore

settings = Settings.from_env()
register_after_restore()  # SnapStart: reseed what the snapshot would share
logger = Logger()
metrics = Metrics(namespace=settings.metrics_namespace)


@functools.cache
def s3() -> Any:
    """One client per container, made on first use (never at import)."""
    return boto3.client("s3")


@functools.cache
def predictor() -> Predictor:
    """The model this function version pins, loaded once per container."""
    return Predictor.load(settings.model_dir, expected=settings.expected)


steps = BatchSteps(s3, predictor)


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(function_version=context.function_version, action=event.get("action"))
    result = steps.handle(event, context.invoked_function_arn)
    if event.get("action") == "score":
        metrics.add_metric("BatchRowsScored", MetricUnit.Count, result["rows_scored"])
        metrics.add_metric("BatchRowsRejected", MetricUnit.Count, result["rows_rejected"])
        logger.info("part scored", extra={"part": result})
    elif event.get("action") == "finish":
        metrics.add_metric("BatchRuns", MetricUnit.Count, 1)
        logger.info("run finished", extra={"run": result})
    return result
