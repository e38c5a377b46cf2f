"""The S3 registry against moto: numbering, immutability, the commit point, the layer."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from support import Account

from lambdaserve import manifest
from lambdaserve.registry.store import Registry, RegistryError, VersionExistsError, layer_zip


def _publish(account: Account, bundle: Path, version: int | None = None) -> str:
    return account.registry.publish(bundle, "arn:aws:iam::123456789012:user/ci", version).version


def test_publish_uploads_the_bundle_and_publishes_a_layer_from_s3(
    account: Account, sample_bundle: Path
) -> None:
    published = account.registry.publish(sample_bundle, "ci")
    assert published.version == "1"
    keys = {o["Key"] for o in account.s3.list_objects_v2(Bucket=account.bucket)["Contents"]}
    assert {
        f"models/retail-propensity/1/{f}"
        for f in ("model.joblib", "layer.zip", "layer.json", "manifest.json")
    } <= keys
    layer = account.lam.get_layer_version(
        LayerName="lambdaserve-model-retail-propensity", VersionNumber=1
    )
    assert layer["LayerVersionArn"] == published.layer_arn
    zipped = account.registry.layer_zip_bytes("retail-propensity", "1")
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        assert sorted(archive.namelist()) == [
            "model/manifest.json",
            "model/manifest.sig",
            "model/model.joblib",
        ]
        inside = json.loads(archive.read("model/manifest.json"))
    assert inside["version"] == "1"
    assert inside["sha256"] == manifest.read(sample_bundle).sha256


def test_manifest_is_written_last_as_the_commit_point(
    account: Account, sample_bundle: Path
) -> None:
    order: list[str] = []
    account.s3.meta.events.register(
        "provide-client-params.s3.PutObject",
        lambda params, **_: order.append(params["Key"].rsplit("/")[-1]),
    )
    _publish(account, sample_bundle)
    assert order[0] == ".reserved"
    assert order[-1] == "manifest.json"


def test_versions_count_up_and_a_version_without_manifest_does_not_exist(
    account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    assert _publish(account, sample_bundle) == "1"
    account.s3.put_object(
        Bucket=account.bucket, Key="models/retail-propensity/2/.reserved", Body=b""
    )
    assert _publish(account, second_bundle) == "3"
    listed = account.registry.versions("retail-propensity")
    assert [v.version for v in listed] == ["1", "3"]
    assert listed[1].summary()["sha256"] == manifest.read(second_bundle).sha256


def test_racing_publishers_never_get_the_same_version(
    account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    # Publisher A lists (sees no version), then publisher B publishes before A claims.
    import boto3

    other = Registry(account.bucket, boto3.client("s3"), boto3.client("lambda"))
    raced: list[str] = []

    def race(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].endswith(".reserved") and not raced:
            raced.append(other.publish(second_bundle, "b").version)

    account.s3.meta.events.register("provide-client-params.s3.PutObject", race)
    mine = _publish(account, sample_bundle)
    assert raced == ["1"]
    assert mine == "2"
    shas = {v.version: v.manifest.sha256 for v in account.registry.versions("retail-propensity")}
    assert shas == {
        "1": manifest.read(second_bundle).sha256,
        "2": manifest.read(sample_bundle).sha256,
    }


def test_a_published_version_is_immutable(
    account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    _publish(account, sample_bundle)
    with pytest.raises(VersionExistsError, match="exists already"):
        _publish(account, second_bundle, version=1)
    assert (
        account.registry.get("retail-propensity", "1").manifest.sha256
        == manifest.read(sample_bundle).sha256
    )


def test_a_tampered_bundle_is_never_published(account: Account, sample_bundle: Path) -> None:
    with open(sample_bundle / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(RegistryError, match="sha256"):
        _publish(account, sample_bundle)
    assert "Contents" not in account.s3.list_objects_v2(Bucket=account.bucket)


def test_version_of_layer_maps_a_layer_arn_back_to_its_model_version(
    account: Account, sample_bundle: Path
) -> None:
    published = account.registry.publish(sample_bundle, "ci")
    assert account.registry.version_of_layer(published.layer_arn) == published
    assert account.registry.version_of_layer("arn:aws:lambda:us-east-1:1:layer:Other:1") is None


def test_layer_zip_is_reproducible(sample_bundle: Path) -> None:
    m = manifest.read(sample_bundle)
    first = layer_zip(sample_bundle, m)
    # Other mtimes (as after a copy or a checkout a day later) must not change one byte.
    for path in sample_bundle.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert layer_zip(sample_bundle, m) == first
