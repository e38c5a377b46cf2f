"""Warehouse scoring (issue 30, part 2) through the predict handler as Lambda runs it: Redshift's
Lambda UDF payload and Snowflake's external-function body, exactly as each vendor documents them
(Amazon Redshift Database Developer Guide, "Scalar Lambda UDFs"; Snowflake, "Remote service
input and output data formats"), answered from the same model as POST /predict; and the SQL
`lambdaserve sql` prints for them."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from types import ModuleType
from typing import Any

import boto3
import pytest
from click.testing import Result
from support import ROOT, Account, FakeLambdaContext, import_fresh, load_event

from lambdaserve.bundle.sample import FEATURE_NAMES

ROW = [3, 6, 412.5, 9, 4, 10, "desktop", "email"]  # the sample's features, in order
OTHER = [120, 0, 0, 1, 0, None, "mobile", "social"]  # discount_pct is optional: NULL = missing
NAMES = FEATURE_NAMES


@pytest.fixture
def handler(handler_env: pytest.MonkeyPatch) -> ModuleType:
    return import_fresh(ROOT / "functions/predict/app.py", "predict_app_warehouse")


def _redshift(handler: ModuleType, arguments: list[Any]) -> dict[str, Any]:
    """One Redshift batch, the payload as Redshift's guide documents it; the answer parsed."""
    event = {
        "request_id": "23FF1F97-F28A-44AA-AB67-266ED976BF40",
        "cluster": "arn:aws:redshift:us-east-1:123456789012:cluster:analytics",
        "user": "analyst",
        "database": "retail",
        "external_function": "public.f_retail_propensity",
        "query_id": 5678234,
        "num_records": len(arguments),
        "arguments": arguments,
    }
    answer = handler.lambda_handler(event, FakeLambdaContext())
    assert isinstance(answer, str)  # as the guide's examples return it: JSON text
    parsed: dict[str, Any] = json.loads(answer)
    return parsed


def _snowflake(handler: ModuleType, data: Any) -> dict[str, Any]:
    """One Snowflake batch through API Gateway's REST event for POST /snowflake."""
    event = copy.deepcopy(load_event("predict.json"))
    event["resource"] = event["path"] = "/snowflake"
    event["requestContext"]["resourcePath"] = "/snowflake"
    event["requestContext"]["path"] = "/v1/snowflake"
    event["headers"]["sf-external-function-format"] = "json"
    event["body"] = json.dumps({"data": data})
    response: dict[str, Any] = handler.lambda_handler(event, FakeLambdaContext())
    return response


def _predict(handler: ModuleType, rows: list[list[Any]]) -> list[float]:
    event = copy.deepcopy(load_event("predict.json"))
    records = [{n: v for n, v in zip(NAMES, row, strict=True) if v is not None} for row in rows]
    event["body"] = json.dumps({"instances": records})
    body = json.loads(handler.lambda_handler(event, FakeLambdaContext())["body"])
    return [p[1] for p in body["probabilities"]]


def test_redshift_gets_the_positive_class_probability_per_row_in_order(
    handler: ModuleType,
) -> None:
    answer = _redshift(handler, [ROW, OTHER, ROW])
    expected = _predict(handler, [ROW, OTHER, ROW])
    assert answer == {"success": True, "num_records": 3, "results": expected}


def test_redshift_nulls_follow_sql_a_required_null_scores_null_an_optional_one_is_missing(
    handler: ModuleType,
) -> None:
    no_recency = [None, *ROW[1:]]
    answer = _redshift(handler, [ROW, no_recency, None, OTHER])
    first, other = _predict(handler, [ROW, OTHER])
    assert answer["success"] is True
    assert answer["results"] == [first, None, None, other]


def test_redshift_fails_a_batch_with_a_bad_row_and_names_it(handler: ModuleType) -> None:
    bad = [*ROW[:6], "tablet-ish", ROW[7]]
    answer = _redshift(handler, [ROW, ROW, bad, ROW])
    assert answer["success"] is False
    assert answer["error_msg"].startswith("lambdaserve: row 2 device: ")
    assert "results" not in answer
    # A NULL row is NULL, but its other values are still checked.
    hidden = _redshift(handler, [ROW, [None, *ROW[1:7], "carrier pigeon"]])
    assert hidden["success"] is False
    assert hidden["error_msg"].startswith("lambdaserve: row 1 channel: unknown category")
    wrong_arity = _redshift(handler, [ROW[:3]])
    assert wrong_arity["success"] is False
    assert (
        "row 0: expected 8 arguments in the order recency_days, frequency_90d"
        in (wrong_arity["error_msg"])
    )


def test_redshift_scores_a_batch_of_several_thousand_rows(handler: ModuleType) -> None:
    rng = random.Random(7)
    rows = [
        [rng.randint(0, 365), rng.randint(0, 20), round(rng.uniform(0, 900), 2), 3, 1, None,
         rng.choice(["desktop", "mobile"]), "email"]
        for _ in range(5000)
    ]  # fmt: skip
    answer = _redshift(handler, rows)
    assert answer["success"] is True
    assert answer["num_records"] == len(answer["results"]) == 5000
    assert answer["results"][:50] == _predict(handler, rows[:50])


def test_snowflake_gets_each_row_number_with_its_result(handler: ModuleType) -> None:
    response = _snowflake(handler, [[0, *ROW], [1, *OTHER], [2, None, *ROW[1:]]])
    assert response["statusCode"] == 200
    first, other = _predict(handler, [ROW, OTHER])
    assert json.loads(response["body"]) == {"data": [[0, first], [1, other], [2, None]]}


def test_snowflake_fails_a_batch_with_a_bad_row_in_the_apis_problem_shape(
    handler: ModuleType,
) -> None:
    bad = [*ROW[:2], "lots", *ROW[3:]]
    response = _snowflake(handler, [[0, *ROW], [1, *bad]])
    assert response["statusCode"] == 422
    problem = json.loads(response["body"])
    assert problem["detail"].startswith("row 1 monetary_90d: ")
    assert problem["errors"][0]["row"] == 1
    assert _snowflake(handler, [[True, *ROW]])["statusCode"] == 400  # a row number, not a bool
    malformed = _snowflake(handler, {"rows": []})
    assert malformed["statusCode"] == 400
    extra = copy.deepcopy(load_event("predict.json"))
    extra.update(resource="/snowflake", path="/snowflake")
    extra["requestContext"]["resourcePath"] = "/snowflake"
    extra["body"] = json.dumps({"data": [[0, *ROW]], "extra": 1})
    unknown = handler.lambda_handler(extra, FakeLambdaContext())
    assert unknown["statusCode"] == 400  # as /predict: an unknown top-level key is refused
    assert "unknown top-level keys: ['extra']" in json.loads(unknown["body"])["detail"]
    big = [[i, *ROW] for i in range(5000)]
    assert len(json.loads(_snowflake(handler, big)["body"])["data"]) == 5000


def test_sql_redshift_prints_the_udf_for_the_live_model(
    cli: Callable[..., Result], published: Account
) -> None:
    assert cli("deploy", "retail-propensity", "2").exit_code == 0
    role = "arn:aws:iam::123456789012:role/redshift-udf"
    result = cli("sql", "redshift", "--role", role, "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert [a["name"] for a in found["arguments"]] == NAMES
    assert [a["type"] for a in found["arguments"]][:3] == ["BIGINT", "BIGINT", "DOUBLE PRECISION"]
    assert found["returns"] == "DOUBLE PRECISION"
    assert found["result"] == "probability"
    (statement,) = found["statements"]
    assert "CREATE OR REPLACE EXTERNAL FUNCTION f_retail_propensity (" in statement
    assert f"LAMBDA '{published.function}:live'" in statement
    assert f"IAM_ROLE '{role}'" in statement
    assert "MAX_BATCH_ROWS 10000" in statement
    assert "-- retail-propensity v2" in statement
    no_role = cli("sql", "redshift")
    assert no_role.exit_code == 2
    assert "--role ARN" in no_role.stderr


@pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle")
def test_sql_snowflake_prints_the_three_steps(
    cli: Callable[..., Result], published: Account
) -> None:
    outputs = {
        "RegistryBucket": published.bucket,
        "PredictFunctionName": published.function,
        "ModelParameterPrefix": "/lambdaserve/cli/main",
        "SigningKeyArn": published.signing_key,
        "ApiUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/v1",
        "LiveAliasArn": f"arn:aws:lambda:us-east-1:123456789012:function:{published.function}:live",
    }
    boto3.client("cloudformation").create_stack(
        StackName="shop",
        TemplateBody=json.dumps(
            {
                "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()},
            }
        ),
    )
    result = cli("--stack", "shop", "sql", "snowflake", "retail-propensity", "1")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "API_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/shop-snowflake'" in text
    assert "API_ALLOWED_PREFIXES = ('https://abc123.execute-api.us-east-1.amazonaws.com/v1/" in text
    assert 'make deploy STACK=shop PARAMS="SnowflakeIamUserArn=' in text
    assert "CREATE OR REPLACE EXTERNAL FUNCTION f_retail_propensity(recency_days NUMBER" in text
    assert "AS 'https://abc123.execute-api.us-east-1.amazonaws.com/v1/snowflake';" in text
    assert "API_KEY" not in text  # no ApiKeyId output: AuthMode AWS_IAM
