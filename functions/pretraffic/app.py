"""CodeDeploy PreTraffic hook for PredictFunction: golden examples in, Succeeded/Failed out."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import boto3

from lambdaserve import manifest as manifest_io
from lambdaserve.manifest import Manifest, ManifestError
from lambdaserve.pretraffic import run_hook
from lambdaserve.validation import LambdaInvoker

logger = logging.getLogger("lambdaserve.pretraffic")  # JSON lines: LoggingConfig in the template
logger.setLevel(logging.INFO)


@functools.cache
def clients() -> tuple[Any, Any]:
    """Lambda and CodeDeploy clients, built once per container."""
    return boto3.client("lambda"), boto3.client("codedeploy")


def read_manifest() -> Manifest | Exception:
    try:
        return manifest_io.read(Path(os.environ.get("MODEL_DIR", "/opt/model")))
    except (ManifestError, OSError) as exc:
        return exc


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    lambda_client, codedeploy = clients()
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
