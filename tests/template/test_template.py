"""template.yaml: linted by cfn-lint, and transformed by samtranslator as CloudFormation would."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from support import ROOT, packaged_template

from lambdaserve.cli.context import STACK_OUTPUTS
from lambdaserve.local.template import TemplateResolver, load_template, sam_transform

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


def test_rest_api_has_exactly_its_routes(cfn: dict[str, Any]) -> None:
    (api,) = _of_type(cfn, "AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    assert {(p, m) for p, methods in paths.items() for m in methods} == {
        ("/predict", "post"),
        ("/snowflake", "post"),
        ("/v2", "get"),
        ("/v2/health/live", "get"),
        ("/v2/health/ready", "get"),
        ("/v2/models/{name}", "get"),
        ("/v2/models/{name}/ready", "get"),
        ("/v2/models/{name}/infer", "post"),
        ("/v2/models/{name}/versions/{version}", "get"),
        ("/v2/models/{name}/versions/{version}/ready", "get"),
        ("/v2/models/{name}/versions/{version}/infer", "post"),
        ("/invocations", "post"),
        ("/ping", "get"),
        ("/version", "get"),
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
    runtime, *built, live = props["Layers"]
    # The runtime layer follows the live model's engine (scikit-learn or ONNX Runtime).
    condition, onnx, sklearn = runtime["Fn::If"]
    assert condition == "ServeOnnx"
    layer_ids = [onnx["Ref"], sklearn["Ref"]] + [layer["Ref"] for layer in built]
    assert [lid.rstrip("0123456789abcdef") for lid in layer_ids] == [
        "OnnxRuntimeLayer",
        "RuntimeLayer",
        "ServingLayer",
        "ModelLayer",
    ]
    for lid in layer_ids:
        assert cfn["Resources"][lid]["Type"] == "AWS::Lambda::LayerVersion"
    # The published model, when one is live, is the last layer: read from SSM, else none (the
    # sample ModelLayer serves).
    assert live == {
        "Fn::If": ["ServeSampleModel", {"Ref": "AWS::NoValue"}, {"Ref": "LiveModelLayerArn"}]
    }


def test_function_environment_names_the_model_and_powertools(cfn: dict[str, Any]) -> None:
    env = cfn["Resources"]["PredictFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MODEL_DIR"] == "/opt/model"
    for var, sample_value in (("NAME", "retail-propensity"), ("VERSION", ""), ("SHA256", "")):
        suffix = var.title().replace("Sha256", "Sha256")
        assert env[f"MODEL_{var}"] == {
            "Fn::If": ["ServeSampleModel", sample_value, {"Ref": f"LiveModel{suffix}"}]
        }
    assert {"MAX_BATCH_ROWS", "MAX_BODY_BYTES"} <= set(env)
    # The key deploys verify manifests with comes from the stack, not the operator's shell.
    assert env["SIGNING_KEY_ARN"] == {"Fn::GetAtt": ["ModelSigningKey", "Arn"]}
    assert env["POWERTOOLS_SERVICE_NAME"] == "lambdaserve"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}


def test_the_live_model_is_read_from_the_ssm_parameters_the_cli_writes(cfn: dict[str, Any]) -> None:
    from lambdaserve.release.live_parameters import SAMPLE, TEMPLATE_PARAMETER, template_overrides

    params = cfn["Parameters"]
    overrides = template_overrides("/lambdaserve/prod")
    assert set(overrides) == {"ModelParameterPrefix", *TEMPLATE_PARAMETER.values()}
    for key, name in TEMPLATE_PARAMETER.items():
        assert params[name]["Type"] == "AWS::SSM::Parameter::Value<String>"
        assert overrides[name] == f"/lambdaserve/prod/{key}"
    # No defaults: a stack that was not given its own names fails to deploy, instead of
    # silently sharing another stack's record of what serves.
    for name in overrides:
        assert "Default" not in params[name], name
    assert cfn["Conditions"]["ServeSampleModel"] == {
        "Fn::Equals": [{"Ref": "LiveModelLayerArn"}, SAMPLE]
    }
    assert cfn["Outputs"]["ModelParameterPrefix"]["Value"] == {"Ref": "ModelParameterPrefix"}


def _alias_and_bootstrap(cfn: dict[str, Any], function: str) -> dict[str, Any]:
    alias = cfn["Resources"][f"{function}Aliaslive"]
    version = cfn["Resources"][alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]]
    return {"alias": alias, "version": version}


@pytest.mark.parametrize("function", ["PredictFunction", "BatchFunction"])
def test_the_stack_declares_live_once_and_no_parameter_can_move_it(
    sam: dict[str, Any], cfn: dict[str, Any], function: str
) -> None:
    """Issue 27: CloudFormation updates a resource only when its declaration changes, so `live`
    and its bootstrap version must come out of the transform the same whatever the parameters
    (a change there would move `live` back to the bootstrap version)."""
    declared = _alias_and_bootstrap(cfn, function)
    alias, version = declared["alias"], declared["version"]
    assert alias["Type"] == "AWS::Lambda::Alias"
    assert alias["Properties"]["Name"] == "live"
    assert "UpdatePolicy" not in alias  # no CodeDeploy
    assert version["Type"] == "AWS::Lambda::Version"
    assert version["DeletionPolicy"] == "Retain"
    assert set(alias["Properties"]) == {"FunctionName", "FunctionVersion", "Name"}
    assert set(version["Properties"]) == {"FunctionName", "Description"}
    for changed in (
        {"MemorySize": "2048"},
        {"ColdStartStrategy": "provisioned"},
        {"ColdStartStrategy": "snapstart"},
        {"AuthMode": "AWS_IAM", "Timeout": "10", "LiveModelEngine": "/x/model-engine"},
    ):
        assert _alias_and_bootstrap(sam_transform(sam, changed), function) == declared, changed
    assert "AutoPublishAlias" not in sam["Resources"][function]["Properties"]
    assert "DeploymentPreference" not in sam["Resources"][function]["Properties"]


def test_nothing_in_the_stack_moves_live_or_publishes_a_version_but_the_bootstrap(
    cfn: dict[str, Any],
) -> None:
    kinds = {r["Type"] for r in cfn["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::CodeDeploy::")}
    versions = _of_type(cfn, "AWS::Lambda::Version")
    assert set(versions) == {"PredictFunctionBootstrapVersion", "BatchFunctionBootstrapVersion"}
    for gone in ("PreTrafficHookFunction", "CanaryJudgeFunction", "CanaryJudgeAlarm"):
        assert gone not in cfn["Resources"], gone
    for gone in ("DeploymentType", "CanaryJudgeWindow", "ModelLayerArn", "ModelRevision"):
        assert gone not in cfn["Parameters"], gone


def test_api_gateway_may_invoke_the_alias_only(cfn: dict[str, Any]) -> None:
    permissions = _of_type(cfn, "AWS::Lambda::Permission")
    api = [
        p["Properties"]
        for p in permissions.values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert api == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": "PredictFunctionAliaslive"},
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                "${AWS::AccountId}:${PredictApi}/*/*/*"
            },
        }
    ]


def test_runtime_layer_is_built_by_makefile_for_x86_64(sam: dict[str, Any]) -> None:
    meta = sam["Resources"]["RuntimeLayer"]["Metadata"]
    assert meta == {"BuildMethod": "makefile", "BuildArchitecture": "x86_64"}
    assert "build-RuntimeLayer:" in (ROOT / "layers/runtime/Makefile").read_text()


def test_outputs_give_what_the_cli_needs(cfn: dict[str, Any]) -> None:
    # The CLI's own list, and every output name its source spells, not a copy kept here.
    spelled = set()
    for module in (ROOT / "src/lambdaserve/cli").glob("*.py"):
        spelled |= set(
            re.findall(r'"([A-Z][A-Za-z]+(?:Name|Arn|Bucket|Url|Id|Prefix))"', module.read_text())
        )
    outputs = set(cfn["Outputs"])
    assert outputs >= STACK_OUTPUTS, STACK_OUTPUTS - outputs
    # Fields of AWS answers, not outputs: Application Auto Scaling's ResourceId and
    # ScheduledActionName, S3's BucketName (in an error).
    assert spelled - {"ResourceId", "ScheduledActionName", "BucketName"} <= STACK_OUTPUTS


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


def _deployed(cfn: dict[str, Any], **parameters: str) -> dict[str, Any]:
    """The transformed template as CloudFormation creates it for these parameter values:
    resources and outputs whose condition is false dropped, every Fn::If taken."""
    resolver = TemplateResolver(cfn, parameters)

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, yes, no = node["Fn::If"]
                return resolve(yes if resolver.condition(name) else no)
            out = {k: resolve(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v != {"Ref": "AWS::NoValue"}}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return {
        section: {
            name: resolve(body)
            for name, body in cfn.get(section, {}).items()
            if "Condition" not in body or resolver.condition(body["Condition"])
        }
        for section in ("Resources", "Outputs")
    }


AUTH_MODES: dict[str, list[dict[str, list[str]]]] = {
    "API_KEY": [{"api_key": []}],
    "AWS_IAM": [{"AWS_IAM": []}],
}


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_auth_mode_puts_exactly_one_scheme_on_every_route(
    sam: dict[str, Any], cfn: dict[str, Any], mode: str
) -> None:
    # AuthMode is resolved by CloudFormation, after the SAM transform: one transformed
    # template serves both modes (SAM sees the same template whatever AuthMode is).
    def kinds(template: dict[str, Any]) -> list[str]:
        return sorted(r["Type"] for r in template["Resources"].values())

    assert kinds(sam_transform(sam, {"AuthMode": mode})) == kinds(cfn)
    deployed = _deployed(cfn, AuthMode=mode)
    (api,) = _of_type(deployed, "AWS::ApiGateway::RestApi").values()
    methods = _methods(deployed)
    assert len(methods) == 17
    for method in methods:
        assert method["security"] == AUTH_MODES[mode]
        # No integration credentials: API Gateway invokes the alias through the function's
        # resource policy, so SigV4 callers need execute-api:Invoke only.
        assert "credentials" not in method["x-amazon-apigateway-integration"]
    schemes = api["Properties"]["Body"]["securityDefinitions"]
    assert schemes["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    assert schemes["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_every_route_integrates_with_live_and_the_function_has_no_api_event(
    sam: dict[str, Any],
) -> None:
    body = sam["Resources"]["PredictApi"]["Properties"]["DefinitionBody"]["paths"]
    for path, methods in body.items():
        for method, operation in methods.items():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy", (path, method)
            assert (
                "/functions/${PredictFunctionAliaslive}/invocations"
                in (integration["uri"]["Fn::Sub"])
            )
    # An Api event would make SAM add an integration with the unqualified function ($LATEST).
    assert "Events" not in sam["Resources"]["PredictFunction"]["Properties"]


def test_api_key_mode_has_a_usage_plan_per_key_and_iam_mode_throttles_the_stage(
    cfn: dict[str, Any],
) -> None:
    limits = {"ThrottleRateLimit": "5", "ThrottleBurstLimit": "9", "DailyQuota": "700"}
    keyed = _deployed(cfn, AuthMode="API_KEY", **limits)
    (plan,) = _of_type(keyed, "AWS::ApiGateway::UsagePlan").values()
    assert plan["Properties"]["Throttle"] == {
        "RateLimit": {"Ref": "ThrottleRateLimit"},
        "BurstLimit": {"Ref": "ThrottleBurstLimit"},
    }
    assert plan["Properties"]["Quota"] == {"Limit": {"Ref": "DailyQuota"}, "Period": "DAY"}
    assert plan["Properties"]["ApiStages"] == [
        {"ApiId": {"Ref": "PredictApi"}, "Stage": {"Ref": "PredictApiStage"}}
    ]
    (key,) = _of_type(keyed, "AWS::ApiGateway::UsagePlanKey").values()
    assert key["Properties"]["KeyId"] == {"Ref": "PredictApiApiKey"}
    assert keyed["Outputs"]["ApiKeyId"]["Value"] == {"Ref": "PredictApiApiKey"}
    (stage,) = _of_type(keyed, "AWS::ApiGateway::Stage").values()
    assert "MethodSettings" not in stage["Properties"]

    iam = _deployed(cfn, AuthMode="AWS_IAM")
    for kind in ("UsagePlan", "ApiKey", "UsagePlanKey"):
        assert not _of_type(iam, f"AWS::ApiGateway::{kind}"), kind
    assert "ApiKeyId" not in iam["Outputs"]
    (stage,) = _of_type(iam, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": {"Ref": "ThrottleRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "ThrottleBurstLimit"},
        }
    ]


def test_every_deploy_redeploys_the_stage_so_a_new_auth_mode_takes_effect(
    sam: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SAM names the API deployment after the body as written, Fn::If unresolved: only
    # AlwaysDeploy makes a changed AuthMode reach the stage.
    import samtranslator.model.apigateway as apigateway

    def deployment(now: float) -> str:
        monkeypatch.setattr(apigateway.time, "time", lambda: now)
        (name,) = _of_type(sam_transform(sam), "AWS::ApiGateway::Deployment")
        return name

    assert deployment(1_800_000_000.0) != deployment(1_800_000_100.0)


def test_access_logs_go_to_a_log_group_with_retention_and_no_cors(cfn: dict[str, Any]) -> None:
    (stage,) = _of_type(cfn, "AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(setting["Format"].replace("\n", ""))
    assert fields["requestId"] == "$context.requestId"
    # Who called: the key in AuthMode API_KEY, the IAM principal in AWS_IAM.
    assert fields["apiKeyId"] == "$context.identity.apiKeyId"
    assert fields["userArn"] == "$context.identity.userArn"
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


def test_the_app_stack_owns_no_account_wide_setting_and_account_yaml_keeps_its_own(
    cfn: dict[str, Any],
) -> None:
    # Deleting one app stack must not unset API Gateway logging for the whole account.
    assert _of_type(cfn, "AWS::ApiGateway::Account") == {}
    account = load_template(ROOT / "account.yaml")["Resources"]
    assert {r["Type"] for r in account.values()} == {"AWS::IAM::Role", "AWS::ApiGateway::Account"}
    assert all(r["DeletionPolicy"] == "Retain" for r in account.values())
    assert lint_file(ROOT / "account.yaml", ManualArgs()) == []


def test_api_gateways_own_answers_are_problem_json_derived_from_problem_py(
    sam: dict[str, Any],
) -> None:
    from lambdaserve.problem import GATEWAY_PROBLEMS, gateway_responses

    api = sam["Resources"]["PredictApi"]["Properties"]
    assert api["GatewayResponses"] == gateway_responses()
    # What API Gateway renders is what the local gateway answers: valid JSON, our shape.
    for problem in GATEWAY_PROBLEMS.values():
        body = problem.body('a "quoted" message', "req-1")
        assert body["detail"] == 'a "quoted" message'
        assert body["type"].endswith(problem.slug)
        assert body.get("status") == problem.status


def test_every_parameter_is_in_exactly_one_group(sam: dict[str, Any]) -> None:
    groups = sam["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(sam["Parameters"])


def test_batch_function_serves_with_exactly_the_predict_functions_layers_and_pins(
    sam: dict[str, Any],
) -> None:
    predict = sam["Resources"]["PredictFunction"]["Properties"]
    batch = sam["Resources"]["BatchFunction"]["Properties"]
    assert batch["Layers"] == predict["Layers"]
    for name in ("MODEL_DIR", "MODEL_NAME", "MODEL_VERSION", "MODEL_SHA256", "SIGNING_KEY_ARN"):
        assert batch["Environment"]["Variables"][name] == predict["Environment"]["Variables"][name]
    assert predict["Environment"]["Variables"]["BATCH_FUNCTION"] == {"Ref": "BatchFunction"}
    assert "AutoPublishAlias" not in batch  # its `live` is declared once, as predict's


def test_batch_scoring_is_a_distributed_map_that_retries_throttles_with_backoff(
    sam: dict[str, Any],
) -> None:
    machine = sam["Resources"]["BatchScoring"]["Properties"]
    assert machine["Type"] == "STANDARD"
    assert machine["DefinitionSubstitutions"] == {
        "BatchFunctionAlias": {"Ref": "BatchFunctionAliaslive"},
        "MaxConcurrency": {"Ref": "BatchMaxConcurrency"},
        "ToleratedFailurePercentage": {"Ref": "BatchToleratedFailurePercentage"},
    }
    text = (ROOT / "statemachines/batch_scoring.asl.json").read_text()
    assert load_template(TEMPLATE)["Resources"]["BatchScoring"]["Properties"]["DefinitionUri"] == (
        "statemachines/batch_scoring.asl.json"
    )
    for name in machine["DefinitionSubstitutions"]:
        text = text.replace("${" + name + "}", "1")
    definition = json.loads(text)
    score = definition["States"]["Score"]
    assert score["Type"] == "Map"
    assert score["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED",
        "ExecutionType": "STANDARD",
    }
    tasks = [definition["States"]["Plan"], definition["States"]["Finish"]]
    tasks.append(score["ItemProcessor"]["States"]["ScorePart"])
    for task in tasks:
        (retry,) = task["Retry"]
        assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"]
        assert retry["BackoffRate"] >= 2
    # A map that fails still adds up what was written, and the run then fails.
    assert score["Catch"][0]["Next"] == "Finish"
    assert definition["States"]["Incomplete"]["Type"] == "Fail"


def test_new_objects_under_the_input_prefix_can_start_a_run_and_do_not_by_default(
    sam: dict[str, Any],
) -> None:
    event = sam["Resources"]["BatchScoring"]["Properties"]["Events"]["NewInputObject"]
    props = event["Properties"]
    assert event["Type"] == "EventBridgeRule"
    assert props["State"] == {"Fn::If": ["ScoreOnUpload", "ENABLED", "DISABLED"]}
    assert sam["Parameters"]["BatchScoreOnUpload"]["Default"] == "false"
    assert props["Pattern"]["detail"]["object"]["key"] == [{"prefix": {"Ref": "BatchInputPrefix"}}]
    template = json.loads(
        props["InputTransformer"]["InputTemplate"]["Fn::Sub"]
        .replace("${BatchOutputPrefix}", "batch/output/")
        .replace("<bucket>", "b")
        .replace("<key>", "batch/input/day.csv")
    )
    assert template == {
        "input": "s3://b/batch/input/day.csv",
        "output": "s3://b/batch/output/batch/input/day.csv/",
    }
    cfn = sam_transform(packaged_template(), {"BatchScoreOnUpload": "true"})
    (rule,) = [
        r
        for r in _of_type(cfn, "AWS::Events::Rule").values()
        if r["Properties"]["Targets"][0]["Arn"] == {"Ref": "BatchScoring"}
    ]
    assert "EventPattern" in rule["Properties"]


def test_cold_start_strategy_switches_snapstart_or_provisioned_concurrency_and_autoscaling(
    sam: dict[str, Any],
) -> None:
    props = sam["Resources"]["PredictFunction"]["Properties"]
    assert props["SnapStart"] == {
        "Fn::If": ["UseSnapStart", {"ApplyOn": "PublishedVersions"}, {"Ref": "AWS::NoValue"}]
    }
    # Provisioned concurrency is the release's to keep on `live` (release/handover.py), not
    # the alias declaration's: a change there would move `live`.
    assert "ProvisionedConcurrencyConfig" not in props
    assert props["Environment"]["Variables"]["PROVISIONED_CONCURRENCY"] == {
        "Fn::If": ["UseProvisioned", {"Ref": "ProvisionedConcurrency"}, "0"]
    }
    for strategy, snap, provisioned in (
        ("none", False, False),
        ("snapstart", True, False),
        ("provisioned", False, True),
    ):
        resolver = TemplateResolver(sam, {"ColdStartStrategy": strategy})
        assert resolver.condition("UseSnapStart") is snap
        assert resolver.condition("UseProvisioned") is provisioned
    cfn = sam_transform(packaged_template(), {"ColdStartStrategy": "provisioned"})
    target = cfn["Resources"]["PredictScalableTarget"]
    assert target["DependsOn"] == "PredictFunctionAliaslive"
    assert target["Condition"] == "UseProvisioned"
    assert target["Properties"]["ResourceId"] == {"Fn::Sub": "function:${PredictFunction}:live"}
    policy = cfn["Resources"]["PredictScalingPolicy"]["Properties"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "LambdaProvisionedConcurrencyUtilization"
    )
    peak = TemplateResolver(sam, {"ColdStartStrategy": "provisioned", "ScheduledPeakMinimum": "50"})
    assert peak.condition("HasScheduledPeak")
    assert not TemplateResolver(sam, {"ColdStartStrategy": "provisioned"}).condition(
        "HasScheduledPeak"
    )


def test_redshift_may_invoke_live_only_and_snowflake_only_its_route(
    sam: dict[str, Any],
) -> None:
    """Warehouse scoring (docs: Warehouse scoring): each warehouse's role reaches one thing."""
    redshift = sam["Resources"]["RedshiftUdfRole"]["Properties"]
    (trust,) = redshift["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "redshift.amazonaws.com"}
    (policy,) = redshift["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": {"Ref": "PredictFunctionAliaslive"},
        }
    ]
    snowflake = sam["Resources"]["SnowflakeApiRole"]
    assert snowflake["Condition"] == "HasSnowflake"
    (trust,) = snowflake["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {
        "StringEquals": {"sts:ExternalId": {"Ref": "SnowflakeExternalId"}}
    }
    (policy,) = snowflake["Properties"]["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"]["Fn::Sub"].endswith("${PredictApi}/${StageName}/POST/snowflake")
