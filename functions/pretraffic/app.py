"""CodeDeploy PreTraffic hook for PredictFunction: golden examples in, Succeeded/Failed out."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import boto3

from lambdaserve.judge.pretraffic import PreTrafficSettings, read_verified_manifest, run_hook
from lambdaserve.manifest import Manifest
from lambdaserve.shared.invoker import LambdaInvoker

settings = PreTrafficSettings.from_env()
# JSON lines: the template's LoggingConfig
logger = logging.getLogger("lambdaserve.judge.pretraffic")
logger.setLevel(logging.INFO)


@functools.cache
def clients() -> tuple[Any, Any, Any]:
    """Lambda, CodeDeploy and KMS clients, built once per container."""
    return boto3.client("lambda"), boto3.client("codedeploy"), boto3.client("kms")


def read_manifest() -> Manifest | Exception:
    """The model layer's manifest, verified against its signature (pretraffic.py says when)."""
    return read_verified_manifest(
        Path(settings.model_dir), settings.signing_key_arn, lambda: clients()[2], logger
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    lambda_client, codedeploy, _ = clients()
    status, problems = run_hook(
        event,
        target_arn=settings.target_version_arn,
        manifest=read_manifest(),
        invoker=LambdaInvoker(lambda_client),
        codedeploy=codedeploy,
    )
    level = logging.INFO if status == "Succeeded" else logging.ERROR
    logger.log(level, "pre-traffic validation %s", status, extra={"problems": problems})
    return {"status": status, "problems": problems}
