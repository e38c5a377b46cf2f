"""The template's DeployerPolicy grants exactly the calls the CLI makes: every release command
is run against moto while its API calls are recorded, and the two sets must match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support import ROOT, Account, packaged_template

from lambdaserve.live_parameters import init_parameters
from lambdaserve.local.template import load_template, sam_transform
from lambdaserve.registry import Registry
from lambdaserve.signing import ManifestSigner

# API operation -> the IAM action that authorises it, where the names differ.
IAM_ACTION = {
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "lambda:Invoke": "lambda:InvokeFunction",
}
# Authorised by the policy but not visible as a call of ours here: --stack reads the stack's
# outputs. (GetLayerVersion is both: deploy reads the model layer's hash before attaching it,
# and UpdateFunctionConfiguration checks it on every layer it sets.)
IMPLICIT = {"cloudformation:DescribeStacks"}


def _policy_actions() -> set[str]:
    policy = load_template(ROOT / "template.yaml")["Resources"]["DeployerPolicy"]
    actions: set[str] = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions |= {listed} if isinstance(listed, str) else set(listed)
        assert "*" not in str(statement["Action"])
    return actions


def test_deployer_policy_grants_exactly_what_the_cli_calls(
    account: Account, sample_bundle: Path, second_bundle: Path
) -> None:
    calls: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        service = model.service_model.service_name.replace("-", "")
        name = f"{service}:{model.name}"
        calls.add(IAM_ACTION.get(name, name))

    for client in (account.s3, account.lam, account.ssm, account.kms):
        client.meta.events.register("provide-client-params.*.*", record)
    account.registry = Registry(
        account.bucket,
        account.s3,
        account.lam,
        signer=ManifestSigner(account.kms, account.signing_key),
    )
    deployer = account.deployer(
        ssm=account.ssm,
        ssm_prefix="/lambdaserve/live",
    )
    init_parameters(account.ssm, "/lambdaserve/live")
    account.registry.publish(sample_bundle, "ci")
    account.registry.publish(second_bundle, "ci")
    account.registry.versions("retail-propensity")
    account.registry.get("retail-propensity", "1")
    deployer.deploy("retail-propensity", "1")
    deployer.deploy("retail-propensity", "2", canary_percent=10)
    deployer.status()
    deployer.promote()
    deployer.rollback()
    deployer.history.entries()
    # The validation invoke runs in-process here; in AWS it is Lambda Invoke with a qualifier.
    calls.add("lambda:InvokeFunction")
    assert _policy_actions() == calls | IMPLICIT


def test_predict_function_may_only_log_and_trace() -> None:
    cfn = sam_transform(packaged_template())
    role = cfn["Resources"]["PredictFunctionRole"]["Properties"]
    assert "Policies" not in role
    arns = [a["Fn::Sub"] if isinstance(a, dict) else a for a in role["ManagedPolicyArns"]]
    assert sorted(a.rsplit("/", 1)[-1] for a in arns) == [
        "AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess",
    ]
