"""POST /predict, GET /health, /model, /openapi.json: Powertools wiring over lambdaserve.api."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdaserve.api import ModelSlot, create_app
from lambdaserve.schema import DEFAULT_MAX_ROWS
from lambdaserve.serving import DEFAULT_MODEL_DIR, ExpectedModel, Predictor

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def load_model() -> Predictor:
    """The model this function version pins, from its layer at MODEL_DIR."""
    return Predictor.load(
        os.environ.get("MODEL_DIR", DEFAULT_MODEL_DIR),
        expected=ExpectedModel.from_env(),
        max_rows=int(os.environ.get("MAX_BATCH_ROWS", DEFAULT_MAX_ROWS)),
    )


slot = ModelSlot(load_model, logger, metrics)
app = create_app(slot, logger, metrics, tracer)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(function_version=context.function_version)
    return app.resolve(event, context)
