"""The S3 model registry: immutable numbered versions, each one a Lambda layer.

Layout, per model name:
    models/<name>/<version>/.reserved      the version number, claimed with If-None-Match: *
    models/<name>/<version>/model.joblib
    models/<name>/<version>/layer.zip      the bundle under model/, so it lands at /opt/model
    models/<name>/<version>/layer.json     the Lambda layer version published from layer.zip
    models/<name>/<version>/manifest.sig   the KMS signature of manifest.json (with a signer)
    models/<name>/<version>/manifest.json  written last: the commit point of the version
A version without manifest.json does not exist (a publisher died half way); its number stays
claimed, so no one ever reuses it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdaserve.manifest import MANIFEST_FILE, MODEL_FILE, REGISTRY_PREFIX, Manifest
from lambdaserve.manifest import to_bytes as manifest_bytes_of
from lambdaserve.serving.predictor import ModelLoadError, Predictor
from lambdaserve.shared import budget
from lambdaserve.shared.signing import SIGNATURE_FILE

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

    from lambdaserve.shared.signing import ManifestSigner

PREFIX = REGISTRY_PREFIX
LAYER_PREFIX = "lambdaserve-model"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Fixed zip timestamps: the same bundle always gives the same layer.zip bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
_MAX_CLAIM_ATTEMPTS = 100


class RegistryError(Exception):
    """A registry operation that cannot be done; the message says why."""


class VersionExistsError(RegistryError):
    """A published version is immutable: nothing is written over it."""


class VersionNotFoundError(RegistryError):
    """No such model name or version in the registry."""


@dataclass(frozen=True)
class ModelVersion:
    """One published version: its manifest and the layer made from it."""

    manifest: Manifest
    layer_arn: str
    published_at: str
    published_by: str
    raw_manifest: bytes = field(default=b"", repr=False, compare=False)
    signature: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version or ""

    def summary(self) -> dict[str, Any]:
        """The documented `--json` shape of one version."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.manifest.sha256,
            "created_at": self.manifest.created_at,
            "published_at": self.published_at,
            "published_by": self.published_by,
            "metrics": self.manifest.metrics,
            "layer_arn": self.layer_arn,
        }


def layer_zip(bundle_dir: Path, manifest: Manifest, signature: bytes | None = None) -> bytes:
    """The layer content: model file, (versioned) manifest and its signature under model/,
    and the ONNX graph of a bundle that serves with it, reproducibly."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [
            (MODEL_FILE, (Path(bundle_dir) / manifest.model_file).read_bytes()),
            (MANIFEST_FILE, manifest_bytes_of(manifest)),
        ]
        if signature is not None:
            entries.append((SIGNATURE_FILE, signature))
        if manifest.engine == "onnx" and manifest.onnx:  # the graph the parity proof passed
            graph = str(manifest.onnx["file"])
            entries.append((graph, (Path(bundle_dir) / graph).read_bytes()))
        for name, data in entries:
            info = zipfile.ZipInfo(f"model/{name}", date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


class Registry:
    """Publish and read model versions in one bucket."""

    def __init__(
        self,
        bucket: str,
        s3: S3Client,
        lambda_client: LambdaClient | None = None,
        layer_prefix: str = LAYER_PREFIX,
        signer: ManifestSigner | None = None,
    ) -> None:
        self.bucket = bucket
        self.s3 = s3
        self.lambda_client = lambda_client
        self.layer_prefix = layer_prefix
        self.signer = signer

    def _key(self, name: str, version: str, file: str) -> str:
        return f"{PREFIX}/{name}/{version}/{file}"

    def _put_new(self, key: str, body: bytes, content_type: str) -> None:
        """Write an object that must not exist yet (S3 conditional write)."""
        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, IfNoneMatch="*"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise VersionExistsError(f"s3://{self.bucket}/{key} exists already") from None
            raise

    def _claimed(self, name: str) -> list[int]:
        numbers = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=f"{PREFIX}/{name}/", Delimiter="/"
        ):
            for common in page.get("CommonPrefixes", []):
                last = common.get("Prefix", "").rstrip("/").rsplit("/", 1)[-1]
                if last.isdigit():
                    numbers.append(int(last))
        return sorted(numbers)

    def _claim(self, name: str, version: int | None) -> str:
        """Claim a version number atomically: the next free one, or exactly `version`."""
        if version is not None:
            self._put_new(self._key(name, str(version), ".reserved"), b"", "text/plain")
            return str(version)
        candidate = (self._claimed(name) or [0])[-1] + 1
        for _ in range(_MAX_CLAIM_ATTEMPTS):
            try:
                self._put_new(self._key(name, str(candidate), ".reserved"), b"", "text/plain")
            except VersionExistsError:
                candidate += 1  # another publisher won this number; try the next
                continue
            return str(candidate)
        raise RegistryError(f"could not claim a version of {name} in {_MAX_CLAIM_ATTEMPTS} tries")

    def publish(
        self, bundle_dir: Path, published_by: str, version: int | None = None
    ) -> ModelVersion:
        """Verify a bundle, claim its version, upload it, publish its layer, then commit."""
        if self.lambda_client is None:
            raise RegistryError("publishing needs a Lambda client")
        try:
            predictor = Predictor.load(bundle_dir)
        except ModelLoadError as exc:
            raise RegistryError(f"refusing to publish {bundle_dir}: {exc}") from None
        broken = predictor.golden_mismatches()
        if broken:
            raise RegistryError(
                "the bundle does not reproduce its golden examples: " + "; ".join(broken)
            )
        bundled = predictor.manifest
        if not NAME_PATTERN.match(bundled.name):
            raise RegistryError(
                f"model name {bundled.name!r} must be lowercase letters, digits, '-' or '_'"
            )
        # Lambda's unzipped limit, checked before a number is claimed or a byte uploaded.
        planned = budget.model_budget(
            budget.unzipped_bytes(layer_zip(Path(bundle_dir), bundled)), bundled.engine
        )
        if not planned.fits:
            raise RegistryError(
                f"refusing to publish {bundle_dir}: " + budget.refusal(planned, bundled.engine)
            )
        number = self._claim(bundled.name, version)
        versioned = dataclasses.replace(bundled, version=number)
        name = versioned.name
        signature = self.signer.sign(manifest_bytes_of(versioned)) if self.signer else None
        self._put_new(
            self._key(name, number, MODEL_FILE),
            (Path(bundle_dir) / bundled.model_file).read_bytes(),
            "application/octet-stream",
        )
        layer_key = self._key(name, number, "layer.zip")
        content = layer_zip(Path(bundle_dir), versioned, signature)
        self._put_new(layer_key, content, "application/zip")
        layer = self.lambda_client.publish_layer_version(
            LayerName=f"{self.layer_prefix}-{name}",
            Description=f"{name} v{number} sha256:{versioned.sha256[:16]}",
            Content={"S3Bucket": self.bucket, "S3Key": layer_key},
            CompatibleRuntimes=["python3.12"],
            CompatibleArchitectures=["x86_64", "arm64"],
        )
        published = ModelVersion(
            manifest=versioned,
            layer_arn=layer["LayerVersionArn"],
            published_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            published_by=published_by,
        )
        record = {
            k: v
            for k, v in published.summary().items()
            if k in ("layer_arn", "published_at", "published_by")
        }
        record["unzipped_bytes"] = budget.unzipped_bytes(content)  # what deploy checks
        self._put_new(
            self._key(name, number, "layer.json"), json.dumps(record).encode(), "application/json"
        )
        if signature is not None:
            self._put_new(self._key(name, number, SIGNATURE_FILE), signature, "application/json")
        manifest_bytes = manifest_bytes_of(versioned)
        self._put_new(self._key(name, number, MANIFEST_FILE), manifest_bytes, "application/json")
        return dataclasses.replace(published, raw_manifest=manifest_bytes, signature=signature)

    def _get_bytes(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def get(self, name: str, version: str) -> ModelVersion:
        """One committed version, with its manifest's exact bytes and signature."""
        raw = self._get_bytes(self._key(name, version, MANIFEST_FILE))
        if raw is None:
            raise VersionNotFoundError(
                f"no version {version} of model {name!r} in s3://{self.bucket}"
            )
        layer = json.loads(self._get_bytes(self._key(name, version, "layer.json")) or b"{}")
        return ModelVersion(
            manifest=Manifest.from_dict(json.loads(raw)),
            layer_arn=layer.get("layer_arn", ""),
            published_at=layer.get("published_at", ""),
            published_by=layer.get("published_by", ""),
            raw_manifest=raw,
            signature=self._get_bytes(self._key(name, version, SIGNATURE_FILE)),
        )

    def versions(self, name: str) -> list[ModelVersion]:
        """Every committed version of a model, oldest first."""
        found = []
        for number in self._claimed(name):
            try:
                found.append(self.get(name, str(number)))
            except VersionNotFoundError:
                continue  # claimed but never committed
        return found

    def is_model_layer(self, layer_arn: str) -> bool:
        """Whether a layer version ARN is a model layer this registry publishes."""
        parts = layer_arn.split(":")
        return len(parts) == 8 and parts[6].startswith(f"{self.layer_prefix}-")

    def layer_unzipped_bytes(self, layer_arn: str) -> int | None:
        """What a model layer of this registry unpacks to (None: not one of ours)."""
        found = self.version_of_layer(layer_arn)
        if found is None:
            return None
        key = self._key(found.name, found.version, "layer.json")
        recorded = json.loads(self._get_bytes(key) or b"{}").get("unzipped_bytes")
        if isinstance(recorded, int):
            return recorded
        # Published before the size was recorded: read the zip's central directory.
        return budget.unzipped_bytes(self.layer_zip_bytes(found.name, found.version))

    def version_of_layer(self, layer_arn: str) -> ModelVersion | None:
        """The registry version a model layer ARN was published for, if it is one of ours."""
        if not self.is_model_layer(layer_arn):
            return None
        name = layer_arn.split(":")[6][len(self.layer_prefix) + 1 :]
        return next((v for v in self.versions(name) if v.layer_arn == layer_arn), None)

    def layer_zip_bytes(self, name: str, version: str) -> bytes:
        """The layer.zip of a version (what Lambda unpacks into /opt)."""
        obj = self.s3.get_object(Bucket=self.bucket, Key=self._key(name, version, "layer.zip"))
        return obj["Body"].read()
