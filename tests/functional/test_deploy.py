"""Deploy, canary, promote, rollback and history against moto, with the real handler invoked
in-process for each function version's own configuration."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support import BATCH_FUNCTION, Account

from lambdaserve import manifest
from lambdaserve.alias import AliasState
from lambdaserve.local.layers import zip_files
from lambdaserve.release.deployer import Deployer
from lambdaserve.release.errors import DeployError
from lambdaserve.release.live_parameters import KEYS, init_parameters
from lambdaserve.shared.signing import ManifestSigner

SSM_PREFIX = "/lambdaserve/test"


def _deployer(account: Account, sleeps: list[float] | None = None) -> Deployer:
    return account.deployer(
        caller="arn:aws:iam::123456789012:user/alice",
        ssm=account.ssm,
        ssm_prefix=SSM_PREFIX,
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )


class CallLog:
    """Every AWS API call a client makes, in order, with its parameters."""

    def __init__(self, *clients: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for client in clients:
            client.meta.events.register("provide-client-params.*.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _resign(account: Account, key: str, manifest_bytes: bytes) -> None:
    """Replace a version's manifest *and* sign it with the stack's key: a signer's mistake,
    which only golden validation can catch. The layer is rebuilt to match, as publish would."""
    signature = ManifestSigner(account.kms, account.signing_key).sign(manifest_bytes)
    prefix = key.rsplit("/", 1)[0]
    model = account.s3.get_object(Bucket=account.bucket, Key=f"{prefix}/model.joblib")
    content = zip_files(
        {
            "model/model.joblib": model["Body"].read(),
            "model/manifest.json": manifest_bytes,
            "model/manifest.sig": signature,
        }
    )
    account.s3.put_object(Bucket=account.bucket, Key=f"{prefix}/layer.zip", Body=content)
    name = prefix.split("/")[1]
    layer = account.lam.publish_layer_version(
        LayerName=f"lambdaserve-model-{name}",
        Content={"S3Bucket": account.bucket, "S3Key": f"{prefix}/layer.zip"},
    )
    record = {"layer_arn": layer["LayerVersionArn"], "published_at": "", "published_by": "ci"}
    for file, body in (
        ("layer.json", json.dumps(record).encode()),
        ("manifest.sig", signature),
        ("manifest.json", manifest_bytes),
    ):
        account.s3.put_object(Bucket=account.bucket, Key=f"{prefix}/{file}", Body=body)


def _live(account: Account) -> AliasState:
    return account.live()


def _ssm(account: Account) -> dict[str, str]:
    return {
        key: account.ssm.get_parameter(Name=f"{SSM_PREFIX}/{key}")["Parameter"]["Value"]
        for key in KEYS.values()
    }


def test_deploy_pins_the_model_in_a_new_version_validates_it_and_moves_live(
    published: Account,
) -> None:
    state = _deployer(published).deploy("retail-propensity", "1")
    assert state == AliasState("2") == _live(published)
    config = published.lam.get_function_configuration(
        FunctionName=published.function, Qualifier="2"
    )
    model = published.registry.get("retail-propensity", "1")
    env = config["Environment"]["Variables"]
    assert (env["MODEL_NAME"], env["MODEL_VERSION"], env["MODEL_SHA256"]) == (
        "retail-propensity",
        "1",
        model.manifest.sha256,
    )
    layers = [layer["Arn"] for layer in config["Layers"]]
    assert layers[-1] == model.layer_arn
    assert (
        layers[:2]
        == [
            layer["Arn"]
            for layer in published.lam.get_function_configuration(
                FunctionName=published.function, Qualifier="1"
            )["Layers"]
        ][:2]
    )
    assert published.invoker.calls == [(published.function, "2")]
    assert _ssm(published) == {
        "model-layer-arn": model.layer_arn,
        "model-name": "retail-propensity",
        "model-version": "1",
        "model-sha256": model.manifest.sha256,
        "model-engine": "sklearn",  # which runtime layer a later `sam deploy` attaches
    }


def test_canary_promote_and_rollback_move_traffic_as_asked(published: Account) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1")
    canary = deployer.deploy("retail-propensity", "2", canary_percent=10)
    assert canary == AliasState("2", {"3": 0.1}) == _live(published)
    assert _ssm(published)["model-version"] == "1", "a canary does not change what sam deploy keeps"
    assert deployer.promote() == AliasState("3") == _live(published)
    assert _ssm(published)["model-version"] == "2"
    log = CallLog(published.lam)
    assert deployer.rollback() == AliasState("2") == _live(published)
    updates = [params for name, params in log.calls if name == "UpdateAlias"]
    assert updates[0] == {
        "FunctionName": published.function,
        "Name": "live",
        "FunctionVersion": "2",
        "RoutingConfig": {"AdditionalVersionWeights": {}},
    }
    # Then the batch function follows, to the version it already had for that model.
    assert [u["FunctionName"] for u in updates[1:]] == [BATCH_FUNCTION]
    assert "PublishVersion" not in log.names()
    assert _ssm(published)["model-version"] == "1"


def test_rollback_during_a_canary_drops_the_canary(published: Account) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1", canary_percent=25)
    assert deployer.rollback() == AliasState("1") == _live(published)
    # Version 1 serves the template's own sample model: sam deploy is told to keep it.
    assert set(_ssm(published).values()) == {"sample"}


def test_rollback_to_an_explicit_version(published: Account) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1")
    deployer.deploy("retail-propensity", "2")
    assert deployer.rollback(to="1") == AliasState("1") == _live(published)


def test_a_model_failing_its_golden_examples_leaves_the_alias_untouched(
    published: Account,
) -> None:
    key = "models/retail-propensity/2/manifest.json"
    raw = json.loads(published.s3.get_object(Bucket=published.bucket, Key=key)["Body"].read())
    raw["golden_examples"][0]["prediction"] = 1 - raw["golden_examples"][0]["prediction"]
    _resign(published, key, json.dumps(raw).encode())
    log = CallLog(published.lam)
    with pytest.raises(DeployError, match="failed validation, live untouched: example 0"):
        _deployer(published).deploy("retail-propensity", "2")
    assert "UpdateAlias" not in log.names()
    assert _live(published) == AliasState("1")
    assert _deployer(published).history.entries() == []


def test_a_version_that_cannot_load_its_model_fails_validation(
    published: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The layer's model file is not the one the version pins: the handler answers 503.
    folders = published.invoker.layers
    other = folders.folder(published.registry.get("retail-propensity", "2").layer_arn)
    monkeypatch.setattr(folders, "folder", lambda _arn: other)
    with pytest.raises(DeployError, match="status 503"):
        _deployer(published).deploy("retail-propensity", "1")
    assert _live(published) == AliasState("1")


def test_deploy_refuses_while_a_canary_is_in_progress(published: Account) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1", canary_percent=10)
    with pytest.raises(DeployError, match="canary is in progress"):
        deployer.deploy("retail-propensity", "2")


def test_promote_without_a_canary_and_rollback_without_history_fail_clearly(
    published: Account,
) -> None:
    with pytest.raises(DeployError, match="no canary"):
        _deployer(published).promote()
    with pytest.raises(DeployError, match="use --to VERSION"):
        _deployer(published).rollback()


def test_deploy_waits_for_the_function_update_to_finish(published: Account) -> None:
    # Lambda applies a configuration update asynchronously; moto finishes at once, so the
    # first two reads after the update are made to say InProgress, as Lambda's would.
    pending: list[str] = []

    def updated(**_: Any) -> None:
        pending.extend(["InProgress", "InProgress"])

    def read(parsed: dict[str, Any], **_: Any) -> None:
        if pending:
            parsed["LastUpdateStatus"] = pending.pop()

    published.lam.meta.events.register("after-call.lambda.UpdateFunctionConfiguration", updated)
    published.lam.meta.events.register("after-call.lambda.GetFunctionConfiguration", read)
    sleeps: list[float] = []
    _deployer(published, sleeps).deploy("retail-propensity", "1")
    # The predict function's update, then the batch function's (it follows the new model).
    assert sleeps == [2, 2, 2, 2]
    assert _live(published) == AliasState("2")


def test_a_version_still_taking_its_snapstart_snapshot_is_waited_for_before_validation(
    published: Account,
) -> None:
    # With SnapStart a new version is Pending while Lambda takes its snapshot, and cannot be
    # invoked; moto makes it Active at once, so the first reads of it say Pending.
    pending: list[str] = []

    def published_version(**_: Any) -> None:
        pending.extend(["Pending", "Pending"])

    def read(parsed: dict[str, Any], **_: Any) -> None:
        if pending and parsed.get("Version", "$LATEST") != "$LATEST":
            parsed["State"] = pending.pop()

    published.lam.meta.events.register("after-call.lambda.PublishVersion", published_version)
    published.lam.meta.events.register("after-call.lambda.GetFunctionConfiguration", read)
    sleeps: list[float] = []
    _deployer(published, sleeps).deploy("retail-propensity", "1")
    assert sleeps[:2] == [2, 2]  # before the golden examples were sent to it
    assert _live(published) == AliasState("2")


def test_a_function_update_that_never_finishes_times_out_and_leaves_live(
    published: Account,
) -> None:
    def forever(parsed: dict[str, Any], **_: Any) -> None:
        parsed["LastUpdateStatus"] = "InProgress"

    published.lam.meta.events.register("after-call.lambda.GetFunctionConfiguration", forever)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    deployer = _deployer(published)
    publisher = deployer.publisher
    publisher.sleep, publisher.clock, publisher.wait_seconds = sleep, lambda: now[0], 10
    with pytest.raises(DeployError, match="did not finish in 10 s"):
        deployer.deploy("retail-propensity", "1")
    assert now[0] == 12  # six waits of 2 s: the deadline passed, checked after each
    assert _live(published) == AliasState("1")


def test_a_failed_function_update_stops_the_deploy(published: Account) -> None:
    def read(parsed: dict[str, Any], **_: Any) -> None:
        parsed["LastUpdateStatus"] = "Failed"
        parsed["LastUpdateStatusReason"] = "layer too large"

    published.lam.meta.events.register("after-call.lambda.GetFunctionConfiguration", read)
    with pytest.raises(DeployError, match="update failed: layer too large"):
        _deployer(published).deploy("retail-propensity", "1")
    assert _live(published) == AliasState("1")


def test_history_records_every_alias_change(published: Account) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1", reason="first real model")
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    deployer.promote()
    deployer.rollback(reason="p99 regression")
    entries = deployer.history.entries()
    assert [(e["from"], e["to"], e["model_version"]) for e in entries] == [
        ({"version": "1", "weights": {}}, {"version": "2", "weights": {}}, "1"),
        ({"version": "2", "weights": {}}, {"version": "2", "weights": {"3": 0.1}}, "2"),
        ({"version": "2", "weights": {"3": 0.1}}, {"version": "3", "weights": {}}, "2"),
        ({"version": "3", "weights": {}}, {"version": "2", "weights": {}}, "1"),
    ]
    assert entries[0]["reason"] == "first real model"
    assert entries[-1]["reason"] == "p99 regression"
    assert {e["caller"] for e in entries} == {"arn:aws:iam::123456789012:user/alice"}


def test_status_shows_versions_weights_and_models(published: Account) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1")
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    status = deployer.status()
    assert status["alias"] == "live"
    assert [(v["version"], v["weight"], v["model"]["version"]) for v in status["versions"]] == [
        ("2", 0.9, "1"),
        ("3", 0.1, "2"),
    ]
    assert (
        status["versions"][1]["layers"][-1]
        == published.registry.get("retail-propensity", "2").layer_arn
    )


def test_deployed_version_serves_the_published_manifest(
    published: Account, second_bundle: Path
) -> None:
    _deployer(published).deploy("retail-propensity", "2")
    health = published.invoker.invoke(
        published.function,
        "2",
        {
            "resource": "/health",
            "path": "/health",
            "httpMethod": "GET",
            "headers": {},
            "requestContext": {"requestId": "r1"},
            "body": None,
            "isBase64Encoded": False,
        },
    )
    body = json.loads(health["body"])
    assert body["model"] == {
        "name": "retail-propensity",
        "version": "2",
        "sha256": manifest.read(second_bundle).sha256,
    }


def test_deploy_keeps_the_sample_layer_under_the_registry_layer_and_replaces_only_that(
    published: Account,
) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1")
    deployer.deploy("retail-propensity", "2")
    v1 = published.lam.get_function_configuration(FunctionName=published.function, Qualifier="1")
    v3 = published.lam.get_function_configuration(FunctionName=published.function, Qualifier="3")
    assert [la["Arn"] for la in v3["Layers"]] == [
        *[la["Arn"] for la in v1["Layers"]],
        published.registry.get("retail-propensity", "2").layer_arn,
    ]


def test_init_parameters_creates_missing_ones_as_sample_and_keeps_existing(
    published: Account,
) -> None:
    deployer = _deployer(published)
    assert len(init_parameters(published.ssm, SSM_PREFIX)) == len(KEYS)
    assert set(_ssm(published).values()) == {"sample"}
    deployer.deploy("retail-propensity", "1")
    assert init_parameters(published.ssm, SSM_PREFIX) == []
    assert _ssm(published)["model-version"] == "1"


def test_rollback_makes_one_alias_write_and_costs_the_same_however_long_the_history(
    published: Account,
) -> None:
    deployer = _deployer(published)
    counts: list[dict[str, int]] = []
    model = "2"
    for deploys in (2, 6):
        while len(deployer.history.entries()) < deploys:
            model = "1" if model == "2" else "2"  # a different model each time
            deployer.deploy("retail-propensity", model)
        log = CallLog(published.lam, published.s3, published.ssm)
        deployer.rollback()
        ours = [n for n, params in log.calls if params.get("FunctionName") != BATCH_FUNCTION]
        counts.append(dict(Counter(ours)))
    # The ledger is one object: no history listing, no read per entry. (The batch function's
    # following, counted apart, depends on the model, not on the history.)
    assert (
        counts[0]
        == counts[1]
        == {
            "GetAlias": 1,
            "GetObject": 1,
            "GetFunctionConfiguration": 1,
            "UpdateAlias": 1,
            "PutObject": 4,  # the lease (release/lease.py), intent, history entry, ledger
            "PutParameter": 5,  # the live model: layer, name, version, sha256, engine
            # After the switch: the alias's provisioned concurrency as the stack asks (none).
            "GetProvisionedConcurrencyConfig": 1,
            "DeleteObject": 1,  # the lease freed
        }
    )


class _FailingPut:
    """An S3 client whose n-th PutObject under a prefix fails (the process dies there)."""

    def __init__(self, s3: Any, prefix: str, nth: int) -> None:
        self.s3, self.prefix, self.left = s3, prefix, nth

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)

    def put_object(self, **params: Any) -> Any:
        if params["Key"].startswith(self.prefix):
            self.left -= 1
            if self.left == 0:
                raise OSError("connection reset")
        return self.s3.put_object(**params)


# After the alias write: the history entry, or the ledger's second write (the first is the
# intent, before the alias moves).
@pytest.mark.parametrize(("failing", "nth"), [("deployments/", 1), ("aliases/", 2)])
def test_records_converge_on_the_alias_after_a_failure_between_the_writes(
    published: Account, failing: str, nth: int
) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1")
    broken = _deployer(published)
    broken.history.s3 = broken.ledger.object.s3 = _FailingPut(published.s3, failing, nth)  # type: ignore[assignment]
    with pytest.raises(OSError, match="connection reset"):
        broken.deploy("retail-propensity", "2")
    assert _live(published) == AliasState("3")  # the alias did move
    # The next command, by anyone, finishes the records before doing anything else.
    status = _deployer(published).status()
    assert status["versions"][0]["version"] == "3"
    history = _deployer(published).history_entries()
    assert [h["to"]["version"] for h in history] == ["2", "3"]
    assert _ssm(published)["model-version"] == "2"
    # And rollback knows where to go back to.
    assert _deployer(published).rollback() == AliasState("2")
    assert _ssm(published)["model-version"] == "1"


def test_an_intent_whose_alias_write_never_happened_is_dropped(published: Account) -> None:
    deployer = _deployer(published)
    deployer.deploy("retail-propensity", "1")

    class FailingAlias:
        def __init__(self, lam: Any) -> None:
            self.lam = lam

        def __getattr__(self, name: str) -> Any:
            return getattr(self.lam, name)

        def update_alias(self, **_: Any) -> Any:
            raise OSError("throttled")

    broken = _deployer(published)
    broken.lam = FailingAlias(published.lam)  # type: ignore[assignment]
    with pytest.raises(OSError, match="throttled"):
        broken.deploy("retail-propensity", "2")
    assert _live(published) == AliasState("2")
    assert [h["to"]["version"] for h in _deployer(published).history_entries()] == ["2"]
    assert _ssm(published)["model-version"] == "1"
    assert _deployer(published).ledger.read().pending is None  # type: ignore[union-attr]
