"""Signed manifests: publish signs with KMS, deploy and the PreTraffic hook refuse anything
unsigned, re-signed by another key or changed after signing (KMS through moto)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from support import ROOT, Account, import_fresh

from lambdaserve.alias import AliasState
from lambdaserve.manifest import Manifest
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


def _hook(monkeypatch: pytest.MonkeyPatch, account: Account, model_dir: Path) -> Any:
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("SIGNING_KEY_ARN", account.signing_key)
    monkeypatch.setenv("TARGET_VERSION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:f:2")
    return import_fresh(ROOT / "functions/pretraffic/app.py", "pretraffic_signed")


def test_pretraffic_hook_verifies_the_layers_manifest(
    account: Account, sample_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _signed(account)
    registry.publish(sample_bundle, "ci")
    with zipfile.ZipFile(io.BytesIO(registry.layer_zip_bytes("retail-propensity", "1"))) as z:
        z.extractall(tmp_path)
    hook = _hook(monkeypatch, account, tmp_path / "model")
    monkeypatch.setattr(hook, "clients", lambda: (account.lam, None, account.kms))
    assert isinstance(hook.read_manifest(), Manifest)

    manifest_file = tmp_path / "model/manifest.json"
    manifest_file.write_bytes(
        manifest_file.read_bytes().replace(b'"version": "1"', b'"version": "9"')
    )
    codedeploy = boto3.client("codedeploy")
    with Stubber(codedeploy) as stubber:
        stubber.add_response(
            "put_lifecycle_event_hook_execution_status",
            {},
            {"deploymentId": "d-1", "lifecycleEventHookExecutionId": "h-1", "status": "Failed"},
        )
        monkeypatch.setattr(hook, "clients", lambda: (account.lam, codedeploy, account.kms))
        result = hook.lambda_handler(EVENT, None)
        stubber.assert_no_pending_responses()
    assert result["status"] == "Failed"
    assert "changed after it was signed" in result["problems"][0]


def test_pretraffic_hook_accepts_the_stacks_own_unsigned_sample(
    account: Account, sample_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(monkeypatch, account, sample_bundle)  # version null: built with the stack
    monkeypatch.setattr(hook, "clients", lambda: (account.lam, None, account.kms))
    assert isinstance(hook.read_manifest(), Manifest)


def test_pretraffic_hook_refuses_an_unsigned_published_model(
    account: Account, sample_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsigned = _unsigned(account)
    unsigned.publish(sample_bundle, "ci")
    with zipfile.ZipFile(io.BytesIO(unsigned.layer_zip_bytes("retail-propensity", "1"))) as z:
        z.extractall(tmp_path)
    hook = _hook(monkeypatch, account, tmp_path / "model")
    monkeypatch.setattr(hook, "clients", lambda: (account.lam, None, account.kms))
    refused = hook.read_manifest()
    assert isinstance(refused, SignatureError)
    assert "unsigned" in str(refused)
