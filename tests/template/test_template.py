"""template.yaml: linted by cfn-lint, and transformed by samtranslator as CloudFormation would."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from samtranslator.translator.transform import transform
from support import ROOT

from lambdaserve.local import load_template

TEMPLATE = ROOT / "template.yaml"


class NoManagedPolicies:
    """samtranslator's policy loader without IAM: the template names no managed policy by name."""

    def load(self) -> dict[str, str]:
        return {}


def _transform(template: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = transform(copy.deepcopy(template), {}, NoManagedPolicies())
    return result


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    """The template as `sam package` hands it to CloudFormation: local folders become S3 URIs."""
    template = load_template(TEMPLATE)
    for logical_id, resource in template["Resources"].items():
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://artifacts/{logical_id}.zip"
    return template


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


def test_function_runs_python312_x86_with_tracing_and_three_layers(cfn: dict[str, Any]) -> None:
    props = cfn["Resources"]["PredictFunction"]["Properties"]
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["x86_64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Handler"] == "app.lambda_handler"
    layer_ids = [layer["Ref"] for layer in props["Layers"]]
    assert [lid.rstrip("0123456789abcdef") for lid in layer_ids] == [
        "RuntimeLayer",
        "ServingLayer",
        "ModelLayer",
    ]
    for lid in layer_ids:
        assert cfn["Resources"][lid]["Type"] == "AWS::Lambda::LayerVersion"


def test_function_environment_names_the_model_and_powertools(cfn: dict[str, Any]) -> None:
    env = cfn["Resources"]["PredictFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MODEL_DIR"] == "/opt/model"
    assert env["MODEL_NAME"] == "retail-propensity"
    assert {"MODEL_VERSION", "MODEL_SHA256", "MAX_BATCH_ROWS", "MAX_BODY_BYTES"} <= set(env)
    assert env["POWERTOOLS_SERVICE_NAME"] == "lambdaserve"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}


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


def test_outputs_give_api_url_function_and_alias(cfn: dict[str, Any]) -> None:
    assert {"ApiUrl", "PredictFunctionArn", "LiveAliasArn"} <= set(cfn["Outputs"])
