"""The CodeDeploy PreTraffic hook: before `sam deploy` shifts traffic to a new version, invoke
that version with the golden examples and report Succeeded or Failed. Imports no numpy: the
hook runs with the serving and model layers only."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lambdaserve import manifest as manifest_io
from lambdaserve.manifest import ManifestError
from lambdaserve.serving.golden import golden_event, golden_mismatches
from lambdaserve.shared.signing import SIGNATURE_FILE, ManifestSigner, SignatureError

if TYPE_CHECKING:
    from mypy_boto3_codedeploy import CodeDeployClient
    from mypy_boto3_kms import KMSClient

    from lambdaserve.manifest import Manifest
    from lambdaserve.shared.invoker import Invoker

DEFAULT_MODEL_DIR = "/opt/model"


@dataclass(frozen=True)
class PreTrafficSettings:
    """What template.yaml gives PreTrafficHookFunction."""

    target_version_arn: str
    model_dir: str = DEFAULT_MODEL_DIR
    signing_key_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> PreTrafficSettings:
        """TARGET_VERSION_ARN (required), MODEL_DIR and SIGNING_KEY_ARN."""
        return cls(
            target_version_arn=env["TARGET_VERSION_ARN"],
            model_dir=env.get("MODEL_DIR") or DEFAULT_MODEL_DIR,
            signing_key_arn=env.get("SIGNING_KEY_ARN") or None,
        )


def read_verified_manifest(
    folder: Path,
    signing_key: str | None,
    kms: Callable[[], KMSClient],
    logger: logging.Logger,
) -> Manifest | Exception:
    """The model layer's manifest, verified against its KMS signature when a key is set; the
    exception instead if it is unreadable or refused.

    A published model (one with a registry version) must be signed. The template's own
    sample ModelLayer has no version and no signature: it is built and deployed with the
    stack itself, so whoever could change it could change the stack."""
    try:
        manifest = manifest_io.read(folder)
        if signing_key and manifest.version is not None:
            signature = folder / SIGNATURE_FILE
            ManifestSigner(kms(), signing_key).verify(
                (folder / "manifest.json").read_bytes(),
                signature.read_bytes() if signature.exists() else None,
            )
        elif signing_key:
            logger.info("the stack's own sample model: no registry version, no signature")
        return manifest
    except (ManifestError, SignatureError, OSError) as exc:
        return exc


def split_version_arn(arn: str) -> tuple[str, str]:
    """`arn:aws:lambda:region:account:function:name:version` -> (function ARN, version)."""
    parts = arn.split(":")
    if len(parts) != 8 or parts[5] != "function":
        raise ValueError(f"not a qualified function ARN: {arn}")
    return ":".join(parts[:7]), parts[7]


def run_hook(
    event: dict[str, Any],
    *,
    target_arn: str,
    manifest: Manifest | Exception,
    invoker: Invoker,
    codedeploy: CodeDeployClient,
) -> tuple[Literal["Succeeded", "Failed"], list[str]]:
    """Validate the target version and always report a status, so CodeDeploy never waits
    out its hour-long timeout. `manifest` is the exception if the model layer was unreadable."""
    problems: list[str]
    if isinstance(manifest, Exception):
        problems = [f"cannot read the model layer's manifest: {manifest}"]
    else:
        try:
            function, version = split_version_arn(target_arn)
            problems = golden_mismatches(
                manifest, invoker.invoke(function, version, golden_event(manifest))
            )
        except Exception as exc:  # any failure to validate is a failed deployment
            problems = [f"{type(exc).__name__}: {exc}"]
    status: Literal["Succeeded", "Failed"] = "Failed" if problems else "Succeeded"
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return status, problems
