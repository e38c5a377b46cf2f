"""CodeDeploy PreTraffic hook for PredictFunction: golden examples in, Succeeded/Failed out."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import boto3

from lambdaserve import manifest as manifest_io
from lambdaserve.invoker import LambdaInvoker
from lambdaserve.manifest import Manifest, ManifestError
from lambdaserve.pretraffic import run_hook
from lambdaserve.signing import SIGNATURE_FILE, ManifestSigner, SignatureError

logger = logging.getLogger("lambdaserve.pretraffic")  # JSON lines: LoggingConfig in the template
logger.setLevel(logging.INFO)


@functools.cache
def clients() -> tuple[Any, Any, Any]:
    """Lambda, CodeDeploy and KMS clients, built once per container."""
    return boto3.client("lambda"), boto3.client("codedeploy"), boto3.client("kms")


def read_manifest() -> Manifest | Exception:
    """The model layer's manifest, verified against its KMS signature when a key is set.

    A published model (one with a registry version) must be signed. The template's own
    sample ModelLayer has no version and no signature: it is built and deployed with the
    stack itself, so whoever could change it could change the stack."""
    folder = Path(os.environ.get("MODEL_DIR", "/opt/model"))
    try:
        manifest = manifest_io.read(folder)
        key = os.environ.get("SIGNING_KEY_ARN")
        if key and manifest.version is not None:
            signature = folder / SIGNATURE_FILE
            ManifestSigner(clients()[2], key).verify(
                (folder / "manifest.json").read_bytes(),
                signature.read_bytes() if signature.exists() else None,
            )
        elif key:
            logger.info("the stack's own sample model: no registry version, no signature")
        return manifest
    except (ManifestError, SignatureError, OSError) as exc:
        return exc


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
