"""POST /predict, POST /snowflake, GET /health, /model, /openapi.json: Powertools wiring over
lambdaserve.serving.api.
Invoked by the shadow subscription (a CloudWatch Logs event), it scores mirrored requests;
invoked by Redshift (a Lambda UDF's batch), it answers in Redshift's JSON."""

# ruff: noqa: E402 - the thread limits must be set before numpy and scikit-learn are imported
from __future__ import annotations

from typing import Any

from lambdaserve.shared.threads import limit_threads

limit_threads()  # before numpy and scikit-learn load: OpenMP and BLAS read it once


from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdaserve.serving import warehouse
from lambdaserve.serving.api import ModelSlot, Subsegments, create_app, create_scorer
from lambdaserve.serving.predictor import Predictor
from lambdaserve.serving.replay import score_mirrored
from lambdaserve.serving.settings import Settings
from lambdaserve.shared.collector import freeze_init
from lambdaserve.shared.snapstart import register_after_restore

settings = Settings.from_env()
register_after_restore()  # SnapStart: reseed what the snapshot would share
logger = Logger()
# X-Ray subsegments (load, validate, predict) need the X-Ray SDK, whose import costs a cold
# start about 0.36 s (bench/): on only with TRACE_SUBSEGMENTS=true. Lambda's own trace
# segments (Tracing: Active) cost nothing and are always there.
tracing = Subsegments.when(settings.trace_subsegments)
metrics = Metrics(namespace=settings.metrics_namespace)


def load_model() -> Predictor:
    """The model this function version pins, from its layer at MODEL_DIR."""
    return Predictor.load(
        settings.model_dir, expected=settings.expected, max_rows=settings.max_rows
    )


slot = ModelSlot(load_model, logger, metrics)
# In the init phase, not on the first request: a provisioned or SnapStart environment is
# then ready with its model, and the first caller does not pay for the load.
slot.preload()
score = create_scorer(metrics, tracing, settings)
app = create_app(slot, logger, metrics, tracing, settings, score)
freeze_init()  # init is done: what it made is kept out of the collector's full passes


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracing.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def api_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(function_version=context.function_version)
    return app.resolve(event, context)


@logger.inject_lambda_context
def shadow_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """This version as a shadow: no client waits, and no business metric counts it."""
    logger.append_keys(function_version=context.function_version)
    counts = score_mirrored(slot.get(), event, context.function_version)
    logger.info("shadow batch scored", extra=counts)
    return counts


@logger.inject_lambda_context
@metrics.log_metrics
def redshift_handler(event: dict[str, Any], context: LambdaContext) -> str:
    """A Redshift Lambda UDF's batch: its documented JSON answer (serving/warehouse.py)."""
    logger.append_keys(function_version=context.function_version)
    metrics.add_metric(name="WarehouseRequests", unit="Count", value=1)
    return warehouse.redshift_answer(event, slot.get, score)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if isinstance(event, dict) and "awslogs" in event:  # only CloudWatch Logs sends this
        return shadow_handler(event, context)
    if warehouse.is_redshift_call(event):
        return redshift_handler(event, context)
    answer: dict[str, Any] = api_handler(event, context)
    return answer
