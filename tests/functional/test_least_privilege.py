"""The template's DeployerPolicy grants exactly the calls the CLI makes: every release command
is run against moto while its API calls are recorded, and the two sets must match."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import pytest
from support import BATCH_FUNCTION, ROOT, Account, packaged_template

from lambdaserve.judge.shadow_report import shadow_records
from lambdaserve.local.template import load_template, sam_transform
from lambdaserve.registry.store import Registry
from lambdaserve.release.live_parameters import init_parameters
from lambdaserve.release.shadow import Shadows
from lambdaserve.shared.signing import ManifestSigner

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
# Only with provisioned concurrency on the alias (handover.py), which moto does not have: a
# version is provisioned before a move gives it traffic (test_handover.py, tests/e2e).
PROVISIONED_ONLY = {
    "lambda:PutProvisionedConcurrencyConfig",
    "lambda:DeleteProvisionedConcurrencyConfig",
}


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

    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/predict")
    boto3.client("s3").create_bucket(Bucket="shadow-records")
    for client in (account.s3, account.lam, account.ssm, account.kms, logs):
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
        followers=(BATCH_FUNCTION,),
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
    shadows = Shadows(deployer, logs, account.ssm, "/aws/lambda/predict", "/shadow")
    running = shadows.start("retail-propensity", "2", 20)
    shadow_records(account.s3, "shadow-records", running, dt.datetime.now(dt.UTC))
    shadows.stop()
    # The validation invoke runs in-process here; in AWS it is Lambda Invoke with a qualifier.
    calls.add("lambda:InvokeFunction")
    assert _policy_actions() == calls | IMPLICIT | PROVISIONED_ONLY


def test_predict_function_may_only_log_trace_and_read_its_shadow_switch() -> None:
    cfn = sam_transform(packaged_template())
    role = cfn["Resources"]["PredictFunctionRole"]["Properties"]
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "ssm:GetParameter"
    assert statement["Resource"]["Fn::Sub"].endswith(":parameter${ModelParameterPrefix}/shadow")
    arns = [a["Fn::Sub"] if isinstance(a, dict) else a for a in role["ManagedPolicyArns"]]
    assert sorted(a.rsplit("/", 1)[-1] for a in arns) == [
        "AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess",
    ]


# S3 API operation -> the IAM action that authorises it (multipart uploads are s3:PutObject).
S3_ACTION = {
    "ListObjectsV2": "s3:ListBucket",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
}


def _batch_policy() -> list[dict[str, Any]]:
    props = load_template(ROOT / "template.yaml")["Resources"]["BatchFunction"]["Properties"]
    (policy,) = props["Policies"]
    statements: list[dict[str, Any]] = policy["Statement"]
    return statements


def test_batch_function_grants_exactly_the_s3_calls_a_run_makes(
    sample_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    import gzip

    import boto3
    from moto import mock_aws

    from lambdaserve.batch import io as batch_io
    from lambdaserve.batch.io import BatchInputError
    from lambdaserve.batch.job import Job, finish, plan, write_plan
    from lambdaserve.batch.part import score_part
    from lambdaserve.bundle.sample import FEATURE_NAMES, generate
    from lambdaserve.serving.predictor import Predictor

    monkeypatch.setattr(batch_io, "UPLOAD_PIECE", 64 << 10)  # small outputs go up in pieces
    predictor = Predictor.load(sample_bundle)
    calls: set[str] = set()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="data")
        records, _ = generate(5_000, seed=5)
        lines = [",".join(FEATURE_NAMES)] + [
            ",".join("" if r[n] is None else str(r[n]) for n in FEATURE_NAMES) for r in records
        ]
        # a.csv: one small output (PutObject); b.csv.gz: cut short after more than one piece
        # of output, so its multipart upload is aborted.
        s3.put_object(Bucket="data", Key="batch/input/a.csv", Body="\n".join(lines[:400]).encode())
        whole = gzip.compress("\n".join(lines).encode())
        s3.put_object(Bucket="data", Key="batch/input/b.csv.gz", Body=whole[: len(whole) * 9 // 10])
        s3.meta.events.register(
            "provide-client-params.s3.*",
            lambda model, **_: calls.add(S3_ACTION.get(model.name, f"s3:{model.name}")),
        )
        job = Job.from_dict(
            {
                "input": "s3://data/batch/input/",
                "output": "s3://data/batch/output/",
                "chunk_rows": 500,
            }
        )
        parts = plan(s3, job, FEATURE_NAMES, [])
        write_plan(s3, job, parts)
        for part in parts:
            with contextlib.suppress(BatchInputError):  # the truncated gzip: upload aborted
                score_part(s3, predictor, job, part)
        finish(s3, job)
    granted = set()
    for statement in _batch_policy():
        listed = statement["Action"]
        granted |= {listed} if isinstance(listed, str) else set(listed)
    assert granted == calls


def test_batch_function_reads_only_the_input_prefix_and_writes_only_the_output_prefix() -> None:
    by_sid = {s["Sid"]: s for s in _batch_policy()}
    assert by_sid["ReadInput"]["Action"] == "s3:GetObject"
    assert "${BatchInputPrefix}*" in by_sid["ReadInput"]["Resource"]["Fn::Sub"][0]
    assert "${BatchOutputPrefix}*" in by_sid["WriteOutput"]["Resource"]["Fn::Sub"][0]
    assert by_sid["ListOnlyThesePrefixes"]["Condition"]["StringLike"]["s3:prefix"] == [
        {"Fn::Sub": "${BatchInputPrefix}*"},
        {"Fn::Sub": "${BatchOutputPrefix}*"},
    ]
    cfn = sam_transform(packaged_template())
    role = cfn["Resources"]["BatchFunctionRole"]["Properties"]
    arns = [a["Fn::Sub"] if isinstance(a, dict) else a for a in role["ManagedPolicyArns"]]
    assert sorted(a.rsplit("/", 1)[-1] for a in arns) == [
        "AWSLambdaBasicExecutionRole",
        "AWSXrayWriteOnlyAccess",
    ]
