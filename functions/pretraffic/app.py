"""CodeDeploy PreTraffic hook for PredictFunction: golden examples in, Succeeded/Failed out."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import boto3

from lambdaserve.invoker import LambdaInvoker
from lambdaserve.manifest import Manifest
from lambdaserve.pretraffic import read_verified_manifest, run_hook

logger = logging.getLogger("lambdaserve.pretraffic")  # JSON lines: LoggingConfig in the template
logger.setLevel(logging.INFO)


@functools.cache
def clients() -> tuple[Any, Any, Any]:
    """Lambda, CodeDeploy and KMS clients, built once per container."""
    return boto3.client("lambda"), boto3.client("codedeploy"), boto3.client("kms")


def read_manifest() -> Manifest | Exception:
    """The model layer's manifest, verified against its signature (pretraffic.py says when)."""
    return read_verified_manifest(
        Path(os.environ.get("MODEL_DIR", "/opt/model")),
        os.environ.get("SIGNING_KEY_ARN"),
        lambda: clients()[2],
        logger,
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    lambda_client, codedeploy, _ = clients()
    status, problems = run_hook(
        event,
        target_arn=os.environ["TARGET_VERSION_ARN"],
        manifest=read_manifest(),
        invoker=LambdaInvoker(lambda_client),
        codedeploy=codedeploy,
    )
    level = logging.INFO if status == "Succeeded" else logging.ERROR
    logger.log(level, "pre-traffic validation %s", status, extra={"problems": problems})
    return {"status": status, "problems": problems}
