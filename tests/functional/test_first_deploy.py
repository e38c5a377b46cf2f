"""The README's "Deploy to AWS" path, command by command, against moto from an empty account.

moto's CloudFormation cannot run the SAM transform, so `sam deploy` is played by what it
guarantees the CLI: every SSM-typed parameter of the transformed template resolves (or the
deploy fails), and the stack's outputs name the resources. The resources themselves are the
`account` fixture's, built from template.yaml's own properties. Everything else is the real CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from support import Account, load_event, packaged_template

from lambdaserve.cli.context import Services
from lambdaserve.cli.main import main
from lambdaserve.local.template import sam_transform
from lambdaserve.release.live_parameters import names

STACK = "churn-prod"
# What the CLI reads from the outputs (--stack), and `endpoint` for the first call.
CLI_OUTPUTS = {
    "RegistryBucket",
    "PredictFunctionName",
    "ModelParameterPrefix",
    "SigningKeyArn",
    "ApiUrl",
    "ApiKeyId",
}


@pytest.fixture
def cli(account: Account, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`lambdaserve --stack NAME ...` with nothing else configured, as the README runs it."""
    for name in ("BUCKET", "FUNCTION", "SSM_PREFIX", "SIGNING_KEY", "STACK", "ALIAS"):
        monkeypatch.delenv(f"LAMBDASERVE_{name}", raising=False)

    def run(*args: str, stack: str = STACK) -> Result:
        return CliRunner(mix_stderr=False).invoke(
            main, ["--stack", stack, *args], obj=Services(invoker=account.invoker)
        )

    return run


def _said(result: Result) -> str:
    """The command's own last line (the in-process handler also logs to stdout here)."""
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def _overrides(line: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in line.split())


def _sam_deploy(account: Account, stack: str, overrides: dict[str, str]) -> dict[str, Any]:
    """What CloudFormation checks and exposes on `sam deploy --parameter-overrides ...`."""
    cfn = sam_transform(packaged_template())
    params = cfn["Parameters"]
    assert [n for n, p in params.items() if "Default" not in p and n not in overrides] == []
    ssm_typed = [n for n, p in params.items() if p["Type"].startswith("AWS::SSM::Parameter")]
    resolved = account.ssm.get_parameters(Names=[overrides[n] for n in ssm_typed])
    assert resolved["InvalidParameters"] == [], "sam deploy would fail: missing SSM parameters"
    key_id = boto3.client("apigateway").create_api_key(name=f"{stack}-key", enabled=True)["id"]
    outputs = {
        "RegistryBucket": account.bucket,
        "PredictFunctionName": account.function,
        "ModelParameterPrefix": overrides["ModelParameterPrefix"],
        "SigningKeyArn": account.signing_key,
        "ApiUrl": f"https://abc123.execute-api.us-east-1.amazonaws.com/v1#{stack}",
        "ApiKeyId": key_id,
    }
    assert set(outputs) == CLI_OUTPUTS
    assert set(outputs) <= set(cfn["Outputs"])
    boto3.client("cloudformation").create_stack(
        StackName=stack,
        TemplateBody=json.dumps(
            {
                "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()},
            }
        ),
    )
    return {p["Name"]: p["Value"] for p in resolved["Parameters"]}


@pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle")
def test_the_readme_aws_path_works_from_an_empty_account(
    cli: Callable[..., Result], account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    prefix = f"/lambdaserve/{STACK}"
    assert account.ssm.get_parameters(Names=list(names(prefix).values()))["Parameters"] == []
    # The one-time setup: no bucket, no function, no stack yet; only the stack's name.
    init = cli("init-parameters")
    assert init.exit_code == 0, init.output
    overrides = _overrides(init.stdout)
    assert overrides["ModelParameterPrefix"] == prefix
    assert init.stderr.count("created ") == 5
    assert cli("init-parameters").stderr.strip() == f"the parameters under {prefix} exist already"

    resolved = _sam_deploy(account, STACK, overrides)
    assert set(resolved.values()) == {"sample"}  # the first deploy serves the sample model

    found = json.loads(cli("endpoint", "--json").stdout)
    assert found["url"].startswith("https://")
    assert len(found["api_key"]) >= 20
    first = account.invoker.invoke(account.function, "1", load_event("predict.json"))
    assert first["statusCode"] == 200

    # Their own model (here: two versions), signed with the stack's key without being told.
    for bundle in (sample_bundle, second_bundle):
        published = cli("publish", str(bundle), "--json")
        assert published.exit_code == 0, published.output
        assert "UNSIGNED" not in published.stderr
    assert _said(cli("deploy", "retail-propensity", "1")) == "live: version 2 (100%)"
    canary = cli("deploy", "retail-propensity", "2", "--canary", "10")
    assert canary.exit_code == 0, canary.output
    status = json.loads(cli("status", "--json").stdout)  # the handler logs to stdout here
    assert [(v["version"], v["weight"]) for v in status["versions"]] == [("2", 0.9), ("3", 0.1)]
    assert _said(cli("promote")) == "live: version 3 (100%)"
    assert _said(cli("rollback")) == "live: version 2 (100%)"
    history = json.loads(cli("history", "--json").stdout)
    assert [h["to"]["version"] for h in history] == ["2", "2", "3", "2"]
    live = {
        p["Name"].rsplit("/", 1)[-1]: p["Value"]
        for p in account.ssm.get_parameters(Names=list(names(prefix).values()))["Parameters"]
    }
    assert live["model-version"] == "1"
    assert live["model-layer-arn"] == account.registry.get("retail-propensity", "1").layer_arn

    # A second stack in the same account and region gets its own record of what serves.
    other = cli("init-parameters", stack="churn-dev")
    assert _overrides(other.stdout)["ModelParameterPrefix"] == "/lambdaserve/churn-dev"
    assert account.ssm.get_parameter(Name=f"{prefix}/model-version")["Parameter"]["Value"] == "1"

    # Teardown: `purge` before `sam delete` removes what the stack retains on purpose.
    refused = cli("purge")
    assert refused.exit_code == 1
    assert "--yes" in refused.stderr
    purged = cli("purge", "--yes")
    assert purged.exit_code == 0, purged.output
    assert "2 model layer versions, 5 parameters" in purged.stdout
    assert account.bucket not in [b["Name"] for b in account.s3.list_buckets()["Buckets"]]
    key = account.kms.describe_key(KeyId=account.signing_key)["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
    assert account.ssm.get_parameters(Names=list(names(prefix).values()))["Parameters"] == []
    assert account.ssm.get_parameter(Name="/lambdaserve/churn-dev/model-version")


def test_a_missing_stack_is_one_line(cli: Callable[..., Result]) -> None:
    result = cli("status", stack="nope")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no stack nope in this account and region"
