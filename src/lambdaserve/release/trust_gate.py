"""What deploy and promote check before the alias moves: the trust anchor the stack names,
then the verifier (trust.py), or the escape hatch, said out loud."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdaserve.registry.trust import (
    KEY_ENV,
    SKIPPED,
    STACK_SAMPLE,
    ForeignLayerError,
    ModelVerifier,
    NoSigningKeyError,
    Verification,
    resolve_signing_key,
)
from lambdaserve.release.errors import InvalidReleaseError
from lambdaserve.release.function_versions import function_env

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient

    from lambdaserve.registry.store import ModelVersion, Registry


@dataclass
class TrustGate:
    """One function's gate. `signing_key` (the caller's) and `stack_signing_key` (the stack's
    output) must agree with the key the function itself names (its SIGNING_KEY_ARN)."""

    lam: LambdaClient
    registry: Registry
    function: str
    kms: KMSClient | None = None
    signing_key: str | None = None
    stack_signing_key: str | None = None
    progress: Callable[[str], None] = lambda _: None

    def registry_model(
        self, name: str, version: str, insecure_skip_verify: bool
    ) -> tuple[ModelVersion, dict[str, Any], Verification]:
        """A registry model with its layer, verified, and the function's $LATEST configuration
        it was verified against (deploy and shadow start pin it there)."""
        model = self.registry.get(name, version)
        if not model.layer_arn:
            raise InvalidReleaseError(f"{name} v{version} has no layer in the registry")
        latest = dict(self.lam.get_function_configuration(FunctionName=self.function))
        return model, latest, self.model(model, latest, insecure_skip_verify)

    def model(
        self, model: ModelVersion, latest: dict[str, Any], insecure_skip_verify: bool
    ) -> Verification:
        """The stack's key signed this manifest; the layer is the registry's, byte for byte."""
        if insecure_skip_verify:
            return self.skipped()
        key = resolve_signing_key(
            self.function,
            function_key=function_env(latest).get(KEY_ENV),
            stack_key=self.stack_signing_key,
            explicit=self.signing_key,
        )
        if self.kms is None:
            raise NoSigningKeyError("no KMS client to verify the manifest signature with")
        self.progress(f"verifying {model.name} v{model.version} against key {key}")
        verifier = ModelVerifier(self.kms, self.lam, self.registry, key)
        return verifier.verify(model, latest["FunctionArn"])

    def version(
        self, version: str, config: dict[str, Any], insecure_skip_verify: bool
    ) -> Verification:
        """The model a published function version serves, verified as a deploy would."""
        if insecure_skip_verify:
            return self.skipped()
        env = function_env(config)
        if not env.get("MODEL_VERSION"):
            return STACK_SAMPLE  # the template's own ModelLayer, built with the stack
        model = self.registry.get(env.get("MODEL_NAME", ""), env["MODEL_VERSION"])
        attached = [layer["Arn"] for layer in config.get("Layers", [])]
        if not attached or attached[-1] != model.layer_arn:
            raise ForeignLayerError(
                f"version {version} does not serve the registry's layer of "
                f"{model.name} v{model.version}"
            )
        if env.get("MODEL_SHA256") != model.manifest.sha256:
            raise ForeignLayerError(
                f"version {version} pins sha256 {env.get('MODEL_SHA256', '')[:12]}, "
                f"not the signed manifest's {model.manifest.sha256[:12]}"
            )
        latest = self.lam.get_function_configuration(FunctionName=self.function)
        return self.model(model, dict(latest), insecure_skip_verify=False)

    def skipped(self) -> Verification:
        """The escape hatch: said out loud, and recorded by the caller."""
        self.progress(
            "WARNING: --insecure-skip-verify: the model's signature and layer are NOT "
            "verified; this is recorded in the deployment history"
        )
        return SKIPPED
