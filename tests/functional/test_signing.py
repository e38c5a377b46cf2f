"""Signed manifests: publish signs with KMS, deploy refuses anything
unsigned, re-signed by another key or changed after signing (KMS through moto)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from support import Account

from lambdaserve.alias import AliasState
from lambdaserve.registry.store import Registry
from lambdaserve.registry.trust import SignatureRejectedError
from lambdaserve.release.deployer import Deployer
from lambdaserve.shared.signing import ManifestSigner, SignatureError

EVENT = {"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h-1"}


def _signed(account: Account, key: str | None = None) -> Registry:
    return Registry(
        account.bucket,
        account.s3,
        account.lam,
        signer=ManifestSigner(account.kms, key or account.signing_key),
    )


def _deployer(registry: Registry, account: Account) -> Deployer:
    return account.deployer(registry=registry)


def _live(account: Account) -> AliasState:
    return account.live()


def test_publish_signs_and_a_signed_model_deploys(account: Account, sample_bundle: Path) -> None:
    registry = _signed(account)
    published = registry.publish(sample_bundle, "ci")
    stored = registry.get("retail-propensity", published.version)
    assert stored.signature
    assert json.loads(stored.signature)["algorithm"] == "ECDSA_SHA_256"
    with zipfile.ZipFile(io.BytesIO(registry.layer_zip_bytes("retail-propensity", "1"))) as z:
        assert z.read("model/manifest.sig") == stored.signature
        assert z.read("model/manifest.json") == stored.raw_manifest
    _deployer(registry, account).deploy("retail-propensity", "1")
    assert _live(account) == AliasState("2")


def _unsigned(account: Account) -> Registry:
    return Registry(account.bucket, account.s3, account.lam)


def test_an_unsigned_manifest_is_refused(account: Account, sample_bundle: Path) -> None:
    _unsigned(account).publish(sample_bundle, "ci")
    with pytest.raises(SignatureRejectedError, match="unsigned"):
        _deployer(_signed(account), account).deploy("retail-propensity", "1")
    assert _live(account) == AliasState("1")


def test_a_manifest_changed_after_signing_is_refused(account: Account, sample_bundle: Path) -> None:
    registry = _signed(account)
    registry.publish(sample_bundle, "ci")
    key = "models/retail-propensity/1/manifest.json"
    raw = json.loads(account.s3.get_object(Bucket=account.bucket, Key=key)["Body"].read())
    raw["sha256"] = "0" * 64  # point the manifest at another model file
    account.s3.put_object(Bucket=account.bucket, Key=key, Body=json.dumps(raw).encode())
    with pytest.raises(SignatureRejectedError, match="changed after it was signed"):
        _deployer(registry, account).deploy("retail-propensity", "1")
    assert _live(account) == AliasState("1")


def test_a_signature_by_another_key_is_refused(account: Account, sample_bundle: Path) -> None:
    rogue = account.kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    _signed(account, rogue["KeyMetadata"]["Arn"]).publish(sample_bundle, "ci")
    with pytest.raises(SignatureRejectedError, match="not valid for key"):
        _deployer(_signed(account), account).deploy("retail-propensity", "1")
    assert _live(account) == AliasState("1")


def test_malformed_signatures_are_refused(account: Account) -> None:
    signer = ManifestSigner(account.kms, account.signing_key)
    for bad in (b"not json", b'{"signature": "***"}', b"{}"):
        with pytest.raises(SignatureError):
            signer.verify(b"{}", bad)
