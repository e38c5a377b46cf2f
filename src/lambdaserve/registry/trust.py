"""What may go in front of traffic: a model version whose manifest the stack's own key signed,
whose layer this registry published for that model in this account and region, and whose layer
content is exactly the signed manifest, its signature and the model file it names.

The trust anchor is the stack, never the caller's shell: the predict function names its key
(`SIGNING_KEY_ARN`, set by template.yaml from `ModelSigningKey`), and a key the caller passes
must be that one. No AWS client is built here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from lambdaserve.manifest import MANIFEST_FILE, MODEL_FILE
from lambdaserve.shared.signing import SIGNATURE_FILE, ManifestSigner, SignatureError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient

    from lambdaserve.registry.store import ModelVersion, Registry

KEY_ENV = "SIGNING_KEY_ARN"
# Frozen into a function version's description when it was published without verification:
# a rollback to it then needs the same explicit escape hatch.
UNVERIFIED_MARK = "[UNVERIFIED]"
HOW_TO_GIVE_A_KEY = (
    "redeploy the stack (sam deploy) so the function names its key, or pass --stack NAME "
    "or --signing-key ARN; --insecure-skip-verify for a throwaway dev registry"
)


class UntrustedModelError(Exception):
    """A model that may not go in front of traffic; the alias is as it was."""


class NoSigningKeyError(UntrustedModelError):
    """No key is known to verify with, so nothing is verified and nothing moves."""


class SigningKeyMismatchError(UntrustedModelError):
    """The caller's key is not the one the stack names (or the stack disagrees with itself)."""


class SignatureRejectedError(UntrustedModelError):
    """Unsigned, signed by another key, or changed after signing."""


class ForeignLayerError(UntrustedModelError):
    """The layer to attach is not one this registry published for this model here."""


class LayerContentError(UntrustedModelError):
    """The layer's bytes are not the signed manifest, its signature and the model it names."""


class UnverifiedVersionError(UntrustedModelError):
    """A function version that went live without verification, asked to serve again."""


def key_id(key: str) -> str:
    """The key id of a KMS key ARN (or the id itself), for comparing two spellings of a key."""
    return key.rsplit(":key/", 1)[-1] if ":key/" in key else key


def resolve_signing_key(
    function: str,
    *,
    function_key: str | None,
    stack_key: str | None = None,
    explicit: str | None = None,
) -> str:
    """The key a deploy must verify with: the one the stack names; a caller's must match it."""
    if function_key and stack_key and key_id(function_key) != key_id(stack_key):
        raise SigningKeyMismatchError(
            f"{function} names signing key {function_key} but the stack's output says "
            f"{stack_key}: redeploy the stack before deploying models"
        )
    anchor = function_key or stack_key
    if explicit and anchor and key_id(explicit) != key_id(anchor):
        raise SigningKeyMismatchError(
            f"--signing-key {explicit} is not the key this stack verifies with ({anchor}); "
            "drop the option, the stack says which key"
        )
    key = anchor or explicit
    if not key:
        raise NoSigningKeyError(f"no signing key known for {function}: {HOW_TO_GIVE_A_KEY}")
    return key


@dataclass(frozen=True)
class Verification:
    """How a model was let through, for the deployment history."""

    status: Literal["verified", "skipped", "stack-sample", "previously-verified", "adopted"]
    key: str | None = None

    def record(self) -> dict[str, Any]:
        return {"status": self.status, "key": self.key}


SKIPPED = Verification("skipped")
STACK_SAMPLE = Verification("stack-sample")
PREVIOUSLY_VERIFIED = Verification("previously-verified")
# A version put live outside lambdaserve and taken on as it is (`deploy --adopt`): it went
# through none of our checks.
ADOPTED = Verification("adopted")


@dataclass(frozen=True)
class ModelVerifier:
    """Checks a registry version before a deploy or promote lets it serve."""

    kms: KMSClient
    lambda_client: LambdaClient
    registry: Registry
    key: str

    def verify(self, model: ModelVersion, function_arn: str) -> Verification:
        """Raise an UntrustedModelError unless `model` may serve on `function_arn`."""
        label = f"{model.name} v{model.version}"
        try:
            ManifestSigner(self.kms, self.key).verify(model.raw_manifest, model.signature)
        except SignatureError as exc:
            raise SignatureRejectedError(f"refusing {label}: {exc}") from None
        self._check_layer_arn(model, function_arn)
        self._check_layer_content(model)
        return Verification("verified", self.key)

    def _check_layer_arn(self, model: ModelVersion, function_arn: str) -> None:
        function = function_arn.split(":")
        layer = model.layer_arn.split(":")
        expected_name = f"{self.registry.layer_prefix}-{model.name}"
        if (
            len(layer) != 8
            or len(function) < 7
            or layer[:5] != function[:5]  # arn, partition, service, region, account
            or layer[5] != "layer"
            or layer[6] != expected_name
            or not layer[7].isdigit()
        ):
            region, account = (function[3], function[4]) if len(function) > 4 else ("?", "?")
            raise ForeignLayerError(
                f"refusing {model.name} v{model.version}: its layer {model.layer_arn or '(none)'} "
                f"is not a {expected_name} layer of account {account} in {region}"
            )

    def _check_layer_content(self, model: ModelVersion) -> None:
        label = f"{model.name} v{model.version}"
        # The ARN was checked to be this account's and region's: name and number suffice.
        _, _, _, _, _, _, layer_name, number = model.layer_arn.split(":")
        published = self.lambda_client.get_layer_version(
            LayerName=layer_name, VersionNumber=int(number)
        )
        content = self.registry.layer_zip_bytes(model.name, model.version)
        digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
        if published["Content"].get("CodeSha256") != digest:
            raise LayerContentError(
                f"refusing {label}: layer {model.layer_arn} does not hold the registry's layer.zip"
            )
        expected = {
            f"model/{MANIFEST_FILE}": model.raw_manifest,
            f"model/{SIGNATURE_FILE}": model.signature,
        }
        # Each model file the layer holds, with the hash the signed manifest gives it.
        hashed = {f"model/{MODEL_FILE}": model.manifest.sha256}
        if model.manifest.engine == "onnx" and model.manifest.onnx:
            hashed[f"model/{model.manifest.onnx['file']}"] = str(model.manifest.onnx["sha256"])
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = archive.namelist()
                if sorted(names) != sorted({*expected, *hashed}):
                    raise LayerContentError(
                        f"refusing {label}: its layer holds {sorted(names)}, "
                        "not exactly the model, its manifest and the signature"
                    )
                for name, want in expected.items():
                    if archive.read(name) != want:
                        raise LayerContentError(
                            f"refusing {label}: the layer's {name} is not the signed one"
                        )
                found = {name: hashlib.sha256(archive.read(name)).hexdigest() for name in hashed}
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise LayerContentError(f"refusing {label}: unreadable layer ({exc})") from None
        for name, signed in hashed.items():
            if found[name] != signed:
                raise LayerContentError(
                    f"refusing {label}: the layer's {name} hashes to {found[name][:12]}, "
                    f"the signed manifest says {signed[:12]}"
                )
