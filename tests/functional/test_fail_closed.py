"""Deploys fail closed: nothing reaches traffic without a signature the stack's own key made,
on a layer this registry published, holding exactly what the signed manifest says; the one way
around it is a loudly named flag that is warned about and recorded."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support import Account

from lambdaserve.alias import AliasState
from lambdaserve.cli.context import Services
from lambdaserve.cli.main import main
from lambdaserve.local.layers import zip_files
from lambdaserve.registry.trust import (
    UNVERIFIED_MARK,
    ForeignLayerError,
    LayerContentError,
    NoSigningKeyError,
    SignatureRejectedError,
    SigningKeyMismatchError,
    UnverifiedVersionError,
)

MODEL = "retail-propensity"


@pytest.fixture
def cli(account: Account, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """The CLI as an operator runs it: bucket and function named, no signing key anywhere."""
    monkeypatch.setenv("LAMBDASERVE_BUCKET", account.bucket)
    monkeypatch.setenv("LAMBDASERVE_FUNCTION", account.function)
    for name in ("LAMBDASERVE_SIGNING_KEY", "LAMBDASERVE_STACK", "LAMBDASERVE_SSM_PREFIX"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner(mix_stderr=False).invoke(
            main, list(args), obj=Services(invoker=account.invoker), env=env
        )

    return run


def _live(account: Account) -> AliasState:
    return account.live()


def _edit_manifest(account: Account, version: str, **changes: object) -> None:
    """What a principal who may write to the bucket, but not sign, can do."""
    key = f"models/{MODEL}/{version}/manifest.json"
    raw = json.loads(account.s3.get_object(Bucket=account.bucket, Key=key)["Body"].read())
    raw.update(changes)
    account.s3.put_object(Bucket=account.bucket, Key=key, Body=json.dumps(raw).encode())


def _point_layer_json_at(account: Account, version: str, layer_arn: str) -> None:
    key = f"models/{MODEL}/{version}/layer.json"
    record = json.loads(account.s3.get_object(Bucket=account.bucket, Key=key)["Body"].read())
    record["layer_arn"] = layer_arn
    account.s3.put_object(Bucket=account.bucket, Key=key, Body=json.dumps(record).encode())


def test_a_tampered_manifest_is_refused_with_or_without_a_key_in_the_shell(
    cli: Callable[..., Result], account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    # 1. publish two versions: the CLI finds the stack's key on the function and signs.
    assert cli("publish", str(sample_bundle)).exit_code == 0
    second = cli("publish", str(second_bundle))
    assert second.exit_code == 0, second.output
    assert "UNSIGNED" not in second.stderr
    assert cli("deploy", MODEL, "1").exit_code == 0
    before = _live(account)
    # 2. change v2's manifest in the bucket without re-signing (only the metrics).
    _edit_manifest(account, "2", metrics={"roc_auc": 0.99})
    # 3. with the key in the shell: refused.
    with_key = cli("deploy", MODEL, "2", env={"LAMBDASERVE_SIGNING_KEY": account.signing_key})
    assert with_key.exit_code == 3  # untrusted model
    assert "changed after it was signed" in with_key.stderr
    # 4. without any key in the shell: refused too, the stack names the key.
    without = cli("deploy", MODEL, "2")
    assert without.exit_code == 3
    assert without.stderr.strip().splitlines() == [
        f"verifying {MODEL} v2 against key {account.signing_key}",
        f"Error: refusing {MODEL} v2: the manifest was changed after it was signed",
    ]
    assert _live(account) == before


def test_no_key_known_refuses_and_says_how_to_give_one(
    account: Account, sample_bundle: Path
) -> None:
    account.registry.publish(sample_bundle, "ci")
    config = account.lam.get_function_configuration(FunctionName=account.function)
    env = dict(config["Environment"]["Variables"])
    env.pop("SIGNING_KEY_ARN")  # a stack from before the key was named on the function
    account.lam.update_function_configuration(
        FunctionName=account.function, Environment={"Variables": env}
    )
    with pytest.raises(NoSigningKeyError, match="--signing-key ARN; --insecure-skip-verify"):
        account.deployer().deploy(MODEL, "1")
    assert _live(account) == AliasState("1")
    # An explicit key is then the only anchor there is, and it is enforced.
    account.deployer(signing_key=account.signing_key).deploy(MODEL, "1")
    assert _live(account) == AliasState("2")


def test_a_signing_key_other_than_the_stacks_is_refused(
    cli: Callable[..., Result], account: Account, sample_bundle: Path
) -> None:
    rogue = account.kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    rogue_arn = rogue["KeyMetadata"]["Arn"]
    account.registry.publish(sample_bundle, "ci")
    with pytest.raises(SigningKeyMismatchError, match="not the key this stack verifies with"):
        account.deployer(signing_key=rogue_arn).deploy(MODEL, "1")
    # Publishing with it is refused too: it would sign what no deploy accepts.
    refused = cli("publish", str(sample_bundle), env={"LAMBDASERVE_SIGNING_KEY": rogue_arn})
    assert refused.exit_code == 3
    assert "not the key this stack verifies with" in refused.stderr
    # The same key spelled as a bare id is the same key.
    bare_id = account.signing_key.rsplit("/", 1)[-1]
    account.deployer(signing_key=bare_id).deploy(MODEL, "1")
    assert _live(account) == AliasState("2")


def test_a_layer_of_another_account_or_another_model_is_refused(
    account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    account.registry.publish(sample_bundle, "ci")
    own = account.registry.get(MODEL, "1").layer_arn
    foreign = own.replace(":123456789012:", ":999999999999:")
    _point_layer_json_at(account, "1", foreign)
    with pytest.raises(ForeignLayerError, match="account 123456789012"):
        account.deployer().deploy(MODEL, "1")
    other_model = account.lam.publish_layer_version(
        LayerName="lambdaserve-model-churn", Content={"ZipFile": zip_files({"x": "y"})}
    )["LayerVersionArn"]
    _point_layer_json_at(account, "1", other_model)
    with pytest.raises(ForeignLayerError, match="not a lambdaserve-model-retail-propensity"):
        account.deployer().deploy(MODEL, "1")
    assert _live(account) == AliasState("1")


def test_a_layer_whose_content_is_not_the_signed_bundle_is_refused(
    account: Account, sample_bundle: Path
) -> None:
    published = account.registry.publish(sample_bundle, "ci")
    prefix = f"models/{MODEL}/1"
    signed_zip = account.registry.layer_zip_bytes(MODEL, "1")
    # Same signed files, plus code that Lambda would put on sys.path from /opt/python.
    with zipfile.ZipFile(io.BytesIO(signed_zip)) as archive:
        files: dict[str, str | bytes] = {n: archive.read(n) for n in archive.namelist()}
    files["python/sitecustomize.py"] = "import os  # runs at every cold start"
    evil = zip_files(files)
    account.s3.put_object(Bucket=account.bucket, Key=f"{prefix}/evil.zip", Body=evil)
    layer = account.lam.publish_layer_version(
        LayerName=f"lambdaserve-model-{MODEL}",
        Content={"S3Bucket": account.bucket, "S3Key": f"{prefix}/evil.zip"},
    )["LayerVersionArn"]
    _point_layer_json_at(account, "1", layer)
    with pytest.raises(LayerContentError, match=r"does not hold the registry's layer\.zip"):
        account.deployer().deploy(MODEL, "1")
    # And if the registry's layer.zip is swapped for it as well: the entries give it away.
    account.s3.put_object(Bucket=account.bucket, Key=f"{prefix}/layer.zip", Body=evil)
    with pytest.raises(LayerContentError, match="not exactly the model"):
        account.deployer().deploy(MODEL, "1")
    assert _live(account) == AliasState("1")
    assert published.layer_arn != layer


def test_the_escape_hatch_warns_records_and_marks_the_version(
    cli: Callable[..., Result], account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    account.registry.publish(sample_bundle, "ci")
    account.registry.publish(second_bundle, "ci")
    assert cli("deploy", MODEL, "1").exit_code == 0
    _edit_manifest(account, "2", metrics={"roc_auc": 0.99})
    forced = cli("deploy", MODEL, "2", "--insecure-skip-verify")
    assert forced.exit_code == 0, forced.output
    assert "WARNING: --insecure-skip-verify" in forced.stderr
    assert _live(account) == AliasState("3")
    history = json.loads(cli("history", "--json").stdout)
    assert [h["verification"]["status"] for h in history] == ["verified", "skipped"]
    assert history[0]["verification"]["key"] == account.signing_key
    config = account.lam.get_function_configuration(FunctionName=account.function, Qualifier="3")
    assert UNVERIFIED_MARK in config["Description"]

    # Back to the verified version: no new verification needed.
    assert cli("rollback").exit_code == 0
    assert _live(account) == AliasState("2")
    # Back to the unverified one: only with the flag again.
    with pytest.raises(UnverifiedVersionError):
        account.deployer().rollback(to="3")
    refused = cli("rollback", "--to", "3")
    assert refused.exit_code == 3
    assert "went live without verification" in refused.stderr
    assert cli("rollback", "--to", "3", "--insecure-skip-verify").exit_code == 0
    history = json.loads(cli("history", "--json").stdout)
    assert [h["verification"]["status"] for h in history[2:]] == [
        "previously-verified",
        "skipped",
    ]


def test_promote_verifies_the_canary_again(
    account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    account.registry.publish(sample_bundle, "ci")
    account.registry.publish(second_bundle, "ci")
    deployer = account.deployer()
    deployer.deploy(MODEL, "1")
    deployer.deploy(MODEL, "2", canary_percent=10)
    _edit_manifest(account, "2", golden_examples=[])
    with pytest.raises(SignatureRejectedError):
        deployer.promote()
    assert _live(account) == AliasState("2", {"3": 0.1})
    assert deployer.promote(insecure_skip_verify=True) == AliasState("3")
    assert deployer.history.entries()[-1]["verification"]["status"] == "skipped"
