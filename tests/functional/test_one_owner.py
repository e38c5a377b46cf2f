"""Issue 27: one owner of `live`. The stack's `sam deploy`s are modelled by local/cloudformation.py,
which encodes CloudFormation's and CodeDeploy's documented rules (cited there, one by one) over
the real SAM transform of each template. The same sequences run against round 2's template
(tests/fixtures/template-round2.yaml, AutoPublishAlias + DeploymentPreference), which fails
them as AWS documents, and against today's, which passes them.

Sequence 4 (a hand move) is tests/functional/test_alias_drift.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from support import BATCH_FUNCTION, ROOT, Account, project_template

from lambdaserve.alias import AliasState
from lambdaserve.local.cloudformation import CloudFormation, DeployedStack, StackUpdateError
from lambdaserve.local.template import load_template
from lambdaserve.release.lease import ReleaseLease
from lambdaserve.release.live_parameters import init_parameters, template_overrides

PREFIX = "/lambdaserve/cli/main"  # the cli fixture's SSM prefix
ROUND2 = ROOT / "tests/fixtures/template-round2.yaml"


def _doc(result: Result) -> Any:
    """The command's --json document (the handler, run in-process here, logs to stdout too)."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "["))
    return json.loads("\n".join(lines[start:]))


class Stack:
    """The account's stack as CloudFormation knows it, and `sam deploy` of a change to it."""

    def __init__(self, account: Account, template: dict[str, Any]) -> None:
        self.account = account
        init_parameters(account.ssm, PREFIX)
        self.cfn = CloudFormation(account.lam, account.ssm, account.lam.meta.region_name)
        config = account.lam.get_function_configuration(FunctionName=account.function)
        runtime, serving, model = (layer["Arn"] for layer in config["Layers"])
        self.parameters = template_overrides(PREFIX)
        self.record = self.cfn.adopt(
            template,
            self.parameters,
            {
                "PredictFunction": account.function,
                "BatchFunction": BATCH_FUNCTION,
                "RuntimeLayer": runtime,
                "ServingLayer": serving,
                "ModelLayer": model,
                "OnnxRuntimeLayer": config["Environment"]["Variables"]["ONNX_RUNTIME_LAYER"],
            },
        )

    def deploy(self, template: dict[str, Any] | None = None, **changes: str) -> list[str]:
        """`sam deploy` with these parameter overrides (the template: the one applied last)."""
        self.parameters = {**self.parameters, **changes}
        self.record, done = self.cfn.update(
            self.record, template or self.record.template, self.parameters
        )
        return done

    def live(self) -> dict[str, Any]:
        """What `live` serves alone: its version, memory and model version."""
        lam, function = self.account.lam, self.account.function
        version = lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
        model = config["Environment"]["Variables"].get("MODEL_VERSION")
        return {"version": version, "memory": config["MemorySize"], "model": model}


@pytest.fixture
def models(cli: Callable[..., Result], sample_bundle: Path, second_bundle: Path) -> None:
    for bundle in (sample_bundle, second_bundle):
        assert cli("publish", str(bundle)).exit_code == 0


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout[-2000:], result.stderr)
    return result


def _refused(result: Result, code: int, words: str) -> None:
    assert result.exit_code == code, (result.stdout[-2000:], result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0], lines[0]


def test_sequence_1_an_infrastructure_change_reaches_traffic_through_the_release_path(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    stack = Stack(account, project_template())  # the `make deploy` that created it
    assert stack.live() == {"version": "1", "memory": 1024, "model": ""}  # the bootstrap

    _ok(cli("deploy", "retail-propensity", "2"))
    released = stack.live()
    assert released["model"] == "2"

    # make deploy PARAMS=MemorySize=2048: `sam deploy` changes $LATEST and leaves `live`
    # (its declaration never changes), then `lambdaserve release` carries the change.
    _ok(cli("release", "--check"))
    assert not any("live" in line for line in stack.deploy(MemorySize="2048"))
    assert stack.live() == released
    answer = _doc(_ok(cli("release", "--json")))
    assert answer["released"] is True
    assert stack.live() == {"version": answer["version"], "memory": 2048, "model": "2"}
    assert _doc(_ok(cli("release", "--json")))["released"] is False  # nothing new since

    _ok(cli("rollback"))
    assert stack.live() == released  # model 2 on the memory it had

    stack.deploy(MemorySize="3008")
    assert stack.live() == released  # `sam deploy` alone moves nothing
    _ok(cli("release"))
    assert stack.live()["model"] == "2"  # still the rolled-back model, on the new memory
    assert stack.live()["memory"] == 3008
    history = _doc(_ok(cli("history", "--json")))
    assert [e["reason"].split(" ")[0] for e in history] == [
        "deploy",
        "release",
        "rollback",
        "release",
    ]


def test_sequence_1_fails_under_round_2s_template_as_aws_documents(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    stack = Stack(account, load_template(ROUND2))
    _ok(cli("deploy", "retail-propensity", "2"))
    released = stack.live()

    # A parameter change: SAM hashes the template, not parameter values, so no version is
    # published and the new memory never reaches traffic.
    stack.deploy(MemorySize="2048")
    assert stack.live() == released

    # Any change SAM does hash (new code, a template edit) publishes a version and asks
    # CodeDeploy to shift from the version CloudFormation recorded (1), not live's (2).
    edited = load_template(ROUND2)
    edited["Resources"]["PredictFunction"]["Properties"]["Description"] += " (edited)"
    with pytest.raises(StackUpdateError, match="INVALID_LAMBDA_CONFIGURATION"):
        stack.deploy(edited)
    assert stack.live() == released  # rolled back: the alias and $LATEST's memory as they were
    latest = account.lam.get_function_configuration(FunctionName=account.function)
    assert latest["MemorySize"] == 2048


def test_sequence_2_an_infrastructure_change_during_a_canary_is_refused(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    stack = Stack(account, project_template())
    _ok(cli("deploy", "retail-propensity", "1"))
    _ok(cli("deploy", "retail-propensity", "2", "--canary", "10"))
    canary = account.live()
    assert canary.weights
    history = _doc(_ok(cli("history", "--json")))

    # `make deploy` asks first and stops there: one line, exit 5, before `sam deploy` runs.
    _refused(cli("release", "--check"), 5, "a canary is in progress on live")
    # A `sam deploy` run by hand anyway changes $LATEST only: no half-moved alias...
    stack.deploy(MemorySize="2048")
    assert account.live() == canary
    # ...and its release waits for the canary the same way.
    _refused(cli("release"), 5, "a canary is in progress on live")
    assert account.live() == canary
    assert _doc(_ok(cli("history", "--json"))) == history

    _ok(cli("promote"))
    _ok(cli("release"))  # now the change reaches traffic
    assert (
        account.lam.get_function_configuration(
            FunctionName=account.function, Qualifier=account.live().version
        )["MemorySize"]
        == 2048
    )


def test_round_2s_codedeploy_refuses_a_weighted_alias(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    stack = Stack(account, load_template(ROUND2))
    _ok(cli("deploy", "retail-propensity", "2", "--canary", "10"))
    canary = account.live()
    edited = load_template(ROUND2)
    edited["Resources"]["PredictFunction"]["Properties"]["Description"] += " (edited)"
    with pytest.raises(StackUpdateError, match="routing weights"):
        stack.deploy(edited)
    assert account.live() == canary


def test_sequence_3_the_gitops_lock_file_takes_the_same_path(
    cli: Callable[..., Result], account: Account, models: None, tmp_path: Path
) -> None:
    Stack(account, project_template())
    lock = tmp_path / "lambdaserve.lock"
    _ok(cli("lock", "retail-propensity", "1", "--file", str(lock)))
    first = _doc(_ok(cli("release", "--lock", str(lock), "--json")))
    assert first["released"] is True
    _ok(cli("lock", "retail-propensity", "2", "--file", str(lock)))
    second = _doc(_ok(cli("release", "--lock", str(lock), "--json")))
    assert second["version"] != first["version"]
    history = _doc(_ok(cli("history", "--json")))
    assert history[-1]["reason"].startswith(f"release retail-propensity v2 (lock file {lock}")
    assert history[-1]["verification"]["status"] == "verified"

    # A lock whose sha256 is not the registry's bundle is refused before anything is published.
    data = json.loads(lock.read_text())
    data["model"]["sha256"] = "0" * 64
    lock.write_text(json.dumps(data))
    versions = account.lam.list_versions_by_function(FunctionName=account.function)["Versions"]
    _refused(cli("release", "--lock", str(lock)), 1, "pins sha256 000000000000")
    after = account.lam.list_versions_by_function(FunctionName=account.function)["Versions"]
    assert len(after) == len(versions)

    _ok(cli("rollback"))
    assert account.live() == AliasState(str(first["version"]))


def test_sequence_5_migrating_a_round_2_stack_moves_live_once_to_the_same_model(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    stack = Stack(account, load_template(ROUND2))
    _ok(cli("deploy", "retail-propensity", "2"))
    released = stack.live()

    # The update to today's template: the alias keeps its logical id, so CloudFormation
    # updates it, to the bootstrap version it publishes from $LATEST, which the SSM record
    # has given live's model (docs: Migrating).
    done = stack.deploy(project_template())
    moved = stack.live()
    assert moved["version"] != released["version"]
    assert moved["model"] == released["model"] == "2"
    assert any(line.startswith("updated PredictFunctionAliaslive") for line in done)

    # lambdaserve did not make that move: a release names it until it is adopted, once.
    _refused(cli("release"), 5, "moved outside lambdaserve")
    _ok(cli("release", "--adopt"))
    assert _doc(_ok(cli("status", "--json")))["drift"] is None

    # From now on a `sam deploy` never moves live.
    assert not any("Alias" in line for line in stack.deploy(MemorySize="2048"))
    assert stack.live()["version"] == moved["version"]
    _ok(cli("release"))
    assert stack.live()["memory"] == 2048


def test_a_release_while_another_is_in_flight_is_refused_and_changes_nothing(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    _ok(cli("deploy", "retail-propensity", "1"))
    before = account.live()
    other = ReleaseLease(account.bucket, account.s3, account.function, "live", "ci-job-41")
    with other.held("deploy"):
        _refused(cli("deploy", "retail-propensity", "2"), 5, "deploy by ci-job-41 since")
        _refused(cli("rollback"), 5, "another release is in flight on live")
        _refused(cli("release", "--check"), 5, "another release is in flight on live")
    assert account.live() == before
    _ok(cli("deploy", "retail-propensity", "2"))  # the lease is free again


def test_a_rollback_may_break_the_lease_of_a_dead_release(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    _ok(cli("deploy", "retail-propensity", "1"))
    _ok(cli("deploy", "retail-propensity", "2"))
    dead = ReleaseLease(account.bucket, account.s3, account.function, "live", "ci-job-7")
    dead._take("deploy")  # killed mid-way: its lease stays for 30 minutes
    _refused(cli("rollback"), 5, "if that release is dead: rollback --break-lease")
    broken = _ok(cli("rollback", "--break-lease"))
    assert "broke the lease of deploy by ci-job-7" in broken.stderr
    assert dead.holder() is None


def test_an_expired_lease_of_a_killed_release_is_taken_over(
    cli: Callable[..., Result], account: Account, models: None
) -> None:
    killed = ReleaseLease(
        account.bucket, account.s3, account.function, "live", "killed", seconds=-1
    )
    killed._take("deploy")  # a release killed mid-way never frees its lease
    _ok(cli("deploy", "retail-propensity", "1"))


def test_the_record_survives_a_restart(account: Account, tmp_path: Path) -> None:
    stack = Stack(account, project_template())
    stack.record.save(tmp_path / "stack.json")
    assert DeployedStack.load(tmp_path / "stack.json") == stack.record


def test_a_lock_files_rollout_starts_the_judged_canary(
    cli: Callable[..., Result],
    account: Account,
    models: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account.s3.create_bucket(Bucket="monitoring-one-owner")
    monkeypatch.setenv("LAMBDASERVE_MONITORING_BUCKET", "monitoring-one-owner")
    _ok(cli("deploy", "retail-propensity", "1"))
    lock = tmp_path / "lambdaserve.lock"
    _refused(cli("lock", "retail-propensity", "2", "--steps", "10,x"), 1, "--steps '10,x'")
    _ok(cli("lock", "retail-propensity", "2", "--file", str(lock), "--steps", "10,100"))
    assert json.loads(lock.read_text())["rollout"] == {"steps": "10,100"}
    plan = _doc(_ok(cli("release", "--lock", str(lock), "--json")))
    assert (plan["state"], plan["step"], plan["model_version"]) == ("running", 10, "2")
    assert account.live().weights == {plan["canary"]: 0.1}
    # The canary is the judge's to move on (`deploy --resume`): nothing else releases meanwhile.
    _refused(cli("release", "--check"), 5, "a canary is in progress on live")
