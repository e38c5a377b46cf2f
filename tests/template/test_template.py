"""template.yaml: linted by cfn-lint, and transformed by samtranslator as CloudFormation would."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from support import ROOT, packaged_template

from lambdaserve.local.build import sam_transform

TEMPLATE = ROOT / "template.yaml"


def _transform(template: dict[str, Any]) -> dict[str, Any]:
    return sam_transform(template)


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return packaged_template()


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return _transform(sam)


def _of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in cfn["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_finds_nothing() -> None:
    matches = lint_file(Path(TEMPLATE), ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert [str(m) for m in matches] == []


def test_rest_api_has_exactly_the_four_routes(cfn: dict[str, Any]) -> None:
    (api,) = _of_type(cfn, "AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    assert {(p, m) for p, methods in paths.items() for m in methods} == {
        ("/predict", "post"),
        ("/health", "get"),
        ("/model", "get"),
        ("/openapi.json", "get"),
    }
    uri = paths["/predict"]["post"]["x-amazon-apigateway-integration"]["uri"]
    assert "PredictFunctionAliaslive" in str(uri), "API Gateway must invoke the alias, not $LATEST"


def test_function_runs_python312_x86_with_tracing_and_its_layers(cfn: dict[str, Any]) -> None:
    props = cfn["Resources"]["PredictFunction"]["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    assert cfn["Parameters"]["Architecture"]["Default"] == "x86_64"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Handler"] == "app.lambda_handler"
    *built, live = props["Layers"]
    layer_ids = [layer["Ref"] for layer in built]
    assert [lid.rstrip("0123456789abcdef") for lid in layer_ids] == [
        "RuntimeLayer",
        "ServingLayer",
        "ModelLayer",
    ]
    for lid in layer_ids:
        assert cfn["Resources"][lid]["Type"] == "AWS::Lambda::LayerVersion"
    # The published model, when one is live, is the last layer: named by a GitOps parameter,
    # else read from SSM, else none (the sample ModelLayer serves).
    assert live == {
        "Fn::If": [
            "GitOpsModel",
            {"Ref": "ModelLayerArn"},
            {"Fn::If": ["ServeSampleModel", {"Ref": "AWS::NoValue"}, {"Ref": "LiveModelLayerArn"}]},
        ]
    }


def test_function_environment_names_the_model_and_powertools(cfn: dict[str, Any]) -> None:
    env = cfn["Resources"]["PredictFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MODEL_DIR"] == "/opt/model"
    for var, sample_value in (("NAME", "retail-propensity"), ("VERSION", ""), ("SHA256", "")):
        suffix = var.title().replace("Sha256", "Sha256")
        assert env[f"MODEL_{var}"] == {
            "Fn::If": [
                "GitOpsModel",
                {"Ref": f"Model{suffix}"},
                {"Fn::If": ["ServeSampleModel", sample_value, {"Ref": f"LiveModel{suffix}"}]},
            ]
        }
    assert {"MAX_BATCH_ROWS", "MAX_BODY_BYTES"} <= set(env)
    assert env["POWERTOOLS_SERVICE_NAME"] == "lambdaserve"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}


def test_the_live_model_is_read_from_the_ssm_parameters_the_cli_writes(cfn: dict[str, Any]) -> None:
    from lambdaserve.deploy import SAMPLE, SSM_KEYS

    params = cfn["Parameters"]
    prefix = params["ModelParameterPrefix"]["Default"]
    for name, key in (
        ("LiveModelLayerArn", "layer"),
        ("LiveModelName", "MODEL_NAME"),
        ("LiveModelVersion", "MODEL_VERSION"),
        ("LiveModelSha256", "MODEL_SHA256"),
    ):
        assert params[name]["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert params[name]["Default"] == f"{prefix}/{SSM_KEYS[key]}"
    assert {"Fn::Equals": [{"Ref": "LiveModelLayerArn"}, SAMPLE]} in cfn["Conditions"][
        "ServeSampleModel"
    ]["Fn::And"]
    assert cfn["Outputs"]["ModelParameterPrefix"]["Value"] == {"Ref": "ModelParameterPrefix"}


def _version_with(sam: dict[str, Any], params: dict[str, str], **props: Any) -> str:
    changed = copy.deepcopy(sam)
    changed["Resources"]["PredictFunction"]["Properties"].update(props)
    (version,) = _of_type(sam_transform(changed, params), "AWS::Lambda::Version")
    return version


def test_gitops_model_revision_publishes_a_new_version(sam: dict[str, Any]) -> None:
    # SAM does not hash parameter values: a new ModelLayerArn alone would leave live as it was.
    gitops = {"ModelLayerArn": "arn:aws:lambda:us-east-1:1:layer:lambdaserve-model-m:1"}
    assert _version_with(sam, gitops) == _version_with(sam, {**gitops, "ModelLayerArn": "x:2"})
    first = _version_with(sam, {**gitops, "ModelRevision": "a" * 64})
    assert first != _version_with(sam, {**gitops, "ModelRevision": "b" * 64})
    assert first == _version_with(sam, {**gitops, "ModelRevision": "a" * 64})


def test_without_a_revision_template_changes_still_publish_a_version(sam: dict[str, Any]) -> None:
    assert _version_with(sam, {}) != _version_with(sam, {}, Description="memory bump")


def test_alias_live_points_at_a_published_version(cfn: dict[str, Any]) -> None:
    alias = cfn["Resources"]["PredictFunctionAliaslive"]
    assert alias["Type"] == "AWS::Lambda::Alias"
    assert alias["Properties"]["Name"] == "live"
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert cfn["Resources"][version_id]["Type"] == "AWS::Lambda::Version"


def _version_id(sam: dict[str, Any], model_uri: str, in_hash: bool) -> str:
    changed = copy.deepcopy(sam)
    layer = changed["Resources"]["ModelLayer"]["Properties"]
    layer["ContentUri"] = model_uri
    layer["PublishLambdaVersion"] = in_hash
    changed["Resources"]["PredictFunction"]["Properties"]["AutoPublishAliasAllProperties"] = in_hash
    (version,) = _of_type(_transform(changed), "AWS::Lambda::Version")
    return version


def test_a_new_model_layer_alone_publishes_a_new_function_version(sam: dict[str, Any]) -> None:
    # The SAM pitfall: by default the version hash covers the code only, so a new model layer
    # would update $LATEST but leave `live` on the old version (AutoPublishAliasAllProperties
    # alone does not help: it hashes the unresolved !Ref). The template opts out of it.
    assert sam["Resources"]["PredictFunction"]["Properties"]["AutoPublishAliasAllProperties"]
    for layer in ("RuntimeLayer", "ServingLayer", "ModelLayer"):
        assert sam["Resources"][layer]["Properties"]["PublishLambdaVersion"], layer
    old, new = "s3://artifacts/model-v1.zip", "s3://artifacts/model-v2.zip"
    assert _version_id(sam, old, in_hash=False) == _version_id(sam, new, in_hash=False)
    assert _version_id(sam, old, in_hash=True) != _version_id(sam, new, in_hash=True)


def test_runtime_layer_is_built_by_makefile_for_x86_64(sam: dict[str, Any]) -> None:
    meta = sam["Resources"]["RuntimeLayer"]["Metadata"]
    assert meta == {"BuildMethod": "makefile", "BuildArchitecture": "x86_64"}
    assert "build-RuntimeLayer:" in (ROOT / "layers/runtime/Makefile").read_text()


def test_outputs_give_what_the_cli_needs(cfn: dict[str, Any]) -> None:
    assert {
        "ApiUrl",
        "PredictFunctionArn",
        "LiveAliasArn",
        "PredictFunctionName",
        "RegistryBucket",
        "ModelParameterPrefix",
    } <= set(cfn["Outputs"])


def test_sam_deploy_shifts_traffic_through_codedeploy_with_alarms_and_a_pretraffic_hook(
    cfn: dict[str, Any],
) -> None:
    (group,) = _of_type(cfn, "AWS::CodeDeploy::DeploymentGroup").values()
    props = group["Properties"]
    assert props["DeploymentConfigName"]["Fn::Sub"][1] == {"ConfigName": "Canary10Percent5Minutes"}
    alarms = {a["Name"]["Ref"] for a in props["AlarmConfiguration"]["Alarms"]}
    assert alarms == {"AliasErrorsAlarm", "AliasLatencyAlarm", "InternalErrorsAlarm"}
    assert props["AutoRollbackConfiguration"]["Enabled"] is True
    hooks = cfn["Resources"]["PredictFunctionAliaslive"]["UpdatePolicy"][
        "CodeDeployLambdaAliasUpdate"
    ]
    assert hooks["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}
    assert cfn["Parameters"]["DeploymentType"]["Default"] == "Canary10Percent5Minutes"
    assert "AllAtOnce" in cfn["Parameters"]["DeploymentType"]["AllowedValues"]


def test_alarms_watch_the_live_alias(cfn: dict[str, Any]) -> None:
    for name in ("AliasErrorsAlarm", "AliasLatencyAlarm"):
        dims = {d["Name"]: d["Value"] for d in cfn["Resources"][name]["Properties"]["Dimensions"]}
        assert dims["Resource"] == {"Fn::Sub": "${PredictFunction}:live"}
    assert cfn["Resources"]["AliasLatencyAlarm"]["Properties"]["ExtendedStatistic"] == "p99"


def test_pretraffic_hook_may_invoke_only_this_functions_versions(cfn: dict[str, Any]) -> None:
    hook = cfn["Resources"]["PreTrafficHookFunction"]["Properties"]
    assert hook["Environment"]["Variables"]["TARGET_VERSION_ARN"]["Ref"].startswith(
        "PredictFunctionVersion"
    )
    role = cfn["Resources"][hook["Role"]["Fn::GetAtt"][0]]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    actions = {s["Action"]: s["Resource"] for s in statements}
    assert actions["lambda:InvokeFunction"] == {"Fn::Sub": "${PredictFunction.Arn}:*"}
    assert "codedeploy:PutLifecycleEventHookExecutionStatus" in actions
    assert set(actions) == {
        "lambda:InvokeFunction",
        "codedeploy:PutLifecycleEventHookExecutionStatus",
        "kms:Verify",
    }
    assert actions["kms:Verify"] == {"Fn::GetAtt": ["ModelSigningKey", "Arn"]}


def test_registry_bucket_is_versioned_encrypted_private_and_tls_only(cfn: dict[str, Any]) -> None:
    bucket = cfn["Resources"]["ModelRegistryBucket"]
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert bucket["DeletionPolicy"] == "Retain"
    (statement,) = cfn["Resources"]["ModelRegistryBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_predict_function_has_no_s3_permission(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["PredictFunctionRole"]["Properties"]
    assert "s3" not in json.dumps(role).lower()


def test_arm64_is_one_parameter_away(cfn: dict[str, Any]) -> None:
    assert cfn["Parameters"]["Architecture"]["AllowedValues"] == ["x86_64", "arm64"]
    layer = next(v for k, v in cfn["Resources"].items() if k.startswith("RuntimeLayer"))
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert "ARCH ?= x86_64" in (ROOT / "layers/runtime/Makefile").read_text()


def _methods(cfn: dict[str, Any]) -> list[dict[str, Any]]:
    (api,) = _of_type(cfn, "AWS::ApiGateway::RestApi").values()
    return [m for methods in api["Properties"]["Body"]["paths"].values() for m in methods.values()]


def test_every_route_needs_an_api_key_and_iam_mode_adds_sigv4(sam: dict[str, Any]) -> None:
    for method in _methods(sam_transform(sam)):
        assert method["security"] == [{"api_key": []}]
    for method in _methods(sam_transform(sam, {"ApiAuthorizer": "AWS_IAM"})):
        assert {"AWS_IAM": []} in method["security"]
        assert {"api_key": []} in method["security"]


def test_usage_plan_throttles_and_quotas_each_key_from_parameters(
    sam: dict[str, Any], cfn: dict[str, Any]
) -> None:
    limits = {"ThrottleRateLimit": "5", "ThrottleBurstLimit": "9", "DailyQuota": "700"}
    (plan,) = _of_type(sam_transform(sam, limits), "AWS::ApiGateway::UsagePlan").values()
    props = plan["Properties"]
    assert props["Throttle"] == {"RateLimit": "5", "BurstLimit": "9"}
    assert props["Quota"] == {"Limit": "700", "Period": "DAY"}
    assert _of_type(cfn, "AWS::ApiGateway::ApiKey")
    assert _of_type(cfn, "AWS::ApiGateway::UsagePlanKey")
    assert cfn["Outputs"]["ApiKeyId"]["Value"] == {"Ref": "PredictApiApiKey"}


def test_access_logs_go_to_a_log_group_with_retention_and_no_cors(cfn: dict[str, Any]) -> None:
    (stage,) = _of_type(cfn, "AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert json.loads(setting["Format"].replace("\n", ""))["requestId"] == "$context.requestId"
    group = cfn["Resources"]["ApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    (api,) = _of_type(cfn, "AWS::ApiGateway::RestApi").values()
    assert not any("options" in m for m in api["Properties"]["Body"]["paths"].values())


def test_every_checkov_skip_carries_its_reason(sam: dict[str, Any]) -> None:
    skips = [
        (name, skip)
        for name, resource in sam["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert skip["id"].startswith("CKV_"), name
        assert len(skip.get("comment", "")) > 20, (name, skip)
