"""Hand-built hostile requests against the real handler: each gets its documented 4xx with a
problem+json body that satisfies the published schema, and no traceback anywhere."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support import ROOT, FakeLambdaContext, import_fresh, load_event

from lambdaserve import manifest
from lambdaserve.serving.openapi import document

GOOD = json.loads(load_event("predict.json")["body"])["instances"][0]
COLUMNS = list(GOOD)


def records(*rows: Any) -> str:
    return json.dumps({"instances": list(rows)})


def columnar(rows: list[Any], columns: list[Any] | None = None) -> str:
    return json.dumps({"dataframe_split": {"columns": columns or COLUMNS, "data": rows}})


def row(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def values(**changes: Any) -> list[Any]:
    return list(row(**changes).values())


CASES: list[tuple[str, str, int, str]] = [
    # (name, body, status, content type)
    ("empty body", "", 400, "application/json"),
    ("whitespace body", "   \n", 400, "application/json"),
    ("truncated json", '{"instances": [{"recency_days": 3,', 400, "application/json"),
    ("trailing garbage", records(GOOD) + "}", 400, "application/json"),
    ("single quotes", "{'instances': []}", 400, "application/json"),
    ("json null", "null", 400, "application/json"),
    ("json number", "42", 400, "application/json"),
    ("json string", '"predict"', 400, "application/json"),
    ("top-level array", json.dumps([GOOD]), 400, "application/json"),
    ("top-level empty array", "[]", 400, "application/json"),
    ("deep nesting", "[" * 50_000 + "]" * 50_000, 400, "application/json"),
    (
        "deep nesting in a value",
        records(row(device=json.loads("[" * 500 + "]" * 500))),
        422,
        "application/json",
    ),
    ("duplicate top-level key", '{"instances": [], "instances": []}', 400, "application/json"),
    (
        "duplicate feature key",
        '{"instances": [{"recency_days": 1, "recency_days": 2}]}',
        400,
        "application/json",
    ),
    (
        "both shapes",
        json.dumps({"instances": [GOOD], "dataframe_split": {}}),
        400,
        "application/json",
    ),
    ("neither shape", json.dumps({"rows": [GOOD]}), 400, "application/json"),
    (
        "extra top-level key",
        json.dumps({"instances": [GOOD], "debug": True}),
        400,
        "application/json",
    ),
    ("instances not a list", json.dumps({"instances": GOOD}), 400, "application/json"),
    ("wrong content type", records(GOOD), 415, "text/plain"),
    ("form content type", "instances=1", 415, "application/x-www-form-urlencoded"),
    ("xml content type", "<instances/>", 415, "application/xml"),
    ("empty batch", records(), 422, "application/json"),
    ("row is a number", records(1), 422, "application/json"),
    ("row is null", records(None), 422, "application/json"),
    ("row is a list", records([1, 2]), 422, "application/json"),
    ("rows of mixed bad kinds", '{"instances": [null, 1, "x"]}', 422, "application/json"),
    ("row is a string", records("GOOD"), 422, "application/json"),
    (
        "NaN literal",
        records(GOOD).replace('"monetary_90d": 412.5', '"monetary_90d": NaN'),
        422,
        "application/json",
    ),
    (
        "Infinity literal",
        records(GOOD).replace('"monetary_90d": 412.5', '"monetary_90d": Infinity'),
        422,
        "application/json",
    ),
    (
        "-Infinity literal",
        records(GOOD).replace('"monetary_90d": 412.5', '"monetary_90d": -Infinity'),
        422,
        "application/json",
    ),
    ("overflowing float", records(GOOD).replace("412.5", "1e999"), 422, "application/json"),
    ("huge integer", records(row(recency_days=10**400)), 422, "application/json"),
    ("negative where minimum 0", records(row(cart_adds_7d=-1)), 422, "application/json"),
    ("above maximum", records(row(discount_pct=101)), 422, "application/json"),
    ("fraction for an integer", records(row(sessions_7d=2.5)), 422, "application/json"),
    ("string for a number", records(row(monetary_90d="412.5")), 422, "application/json"),
    ("boolean for a number", records(row(frequency_90d=True)), 422, "application/json"),
    ("object for a number", records(row(frequency_90d={"$gt": 1})), 422, "application/json"),
    ("number for a category", records(row(device=1)), 422, "application/json"),
    ("unknown category", records(row(device="smart-fridge")), 422, "application/json"),
    ("category with different case", records(row(device="Mobile")), 422, "application/json"),
    ("unicode look-alike category", records(row(device="mob\u0456le")), 422, "application/json"),
    ("lone surrogate category", records(row(device="\ud800")), 422, "application/json"),
    ("right-to-left override key", records({**GOOD, "device\u202e": "x"}), 422, "application/json"),
    ("unknown feature", records(row(customer_email="a@b.c")), 422, "application/json"),
    (
        "missing required feature",
        records({k: v for k, v in GOOD.items() if k != "device"}),
        422,
        "application/json",
    ),
    ("null for a required feature", records(row(channel=None)), 422, "application/json"),
    ("too many rows", records(*[GOOD] * 10_001), 413, "application/json"),
    (
        "columnar: data not a list",
        json.dumps({"dataframe_split": {"columns": COLUMNS, "data": {}}}),
        400,
        "application/json",
    ),
    ("columnar: columns not strings", columnar([values()], [1, 2, 3]), 400, "application/json"),
    (
        "columnar: duplicate columns",
        columnar([values()], [*COLUMNS[:-1], COLUMNS[0]]),
        400,
        "application/json",
    ),
    (
        "columnar: unknown key",
        json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [], "orient": "split"}}),
        400,
        "application/json",
    ),
    ("columnar: short row", columnar([values()[:3]]), 422, "application/json"),
    ("columnar: row is an object", columnar([GOOD]), 422, "application/json"),
    ("columnar: empty data", columnar([]), 422, "application/json"),
    ("columnar: NaN", columnar([values()]).replace("412.5", "NaN"), 422, "application/json"),
    (
        "columnar: unknown column",
        columnar([[*values(), 1]], [*COLUMNS, "ssn"]),
        422,
        "application/json",
    ),
    ("columnar: wrong type", columnar([values(device=7)]), 422, "application/json"),
    ("columnar: too many rows", columnar([values()] * 10_001), 413, "application/json"),
]


@pytest.fixture(scope="module")
def problem_schema(sample_bundle_session: Path) -> jsonschema.Draft202012Validator:
    doc = document(manifest.read(sample_bundle_session), max_rows=10_000)
    return jsonschema.Draft202012Validator(
        {**doc["components"]["schemas"]["Problem"], "components": doc["components"]}
    )


def _send(
    monkeypatch: pytest.MonkeyPatch,
    model_dir: Path,
    context: FakeLambdaContext,
    path: str,
    body: str,
    content_type: str,
) -> Any:
    """One request to `path` through a new container of the real handler."""
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "lambdaserve")
    handler = import_fresh(ROOT / "functions/predict/app.py", "hostile_app")
    event = copy.deepcopy(load_event("predict.json"))
    event["resource"] = event["path"] = path
    event["requestContext"]["resourcePath"] = path
    event["body"] = body
    event["headers"]["Content-Type"] = content_type
    event["multiValueHeaders"]["Content-Type"] = [content_type]
    return handler.lambda_handler(event, context)


@pytest.mark.parametrize(
    ("name", "body", "status", "content_type"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_request_gets_its_4xx_and_a_valid_problem(
    name: str,
    body: str,
    status: int,
    content_type: str,
    monkeypatch: pytest.MonkeyPatch,
    sample_bundle_session: Path,
    problem_schema: jsonschema.Draft202012Validator,
    capsys: pytest.CaptureFixture[str],
    lambda_context: FakeLambdaContext,
) -> None:
    response = _send(
        monkeypatch, sample_bundle_session, lambda_context, "/predict", body, content_type
    )
    logs = capsys.readouterr()
    assert response["statusCode"] == status, response["body"]
    assert response["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    problem = json.loads(response["body"])
    problem_schema.validate(problem)
    assert problem["status"] == status
    for text in (response["body"], logs.out, logs.err):
        assert "Traceback" not in text
        assert 'File "' not in text


# /invocations answers the same hostile bodies in MLflow's shape: 400 for any bad input (its
# 422 included), 413 and 415 as they are (serving/mlflow.py).
MLFLOW_STATUS = {400: 400, 422: 400, 413: 413, 415: 415}


@pytest.mark.parametrize(
    ("name", "body", "status", "content_type"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_request_on_invocations_gets_mlflows_refusal(
    name: str,
    body: str,
    status: int,
    content_type: str,
    monkeypatch: pytest.MonkeyPatch,
    sample_bundle_session: Path,
    capsys: pytest.CaptureFixture[str],
    lambda_context: FakeLambdaContext,
) -> None:
    response = _send(
        monkeypatch, sample_bundle_session, lambda_context, "/invocations", body, content_type
    )
    logs = capsys.readouterr()
    if content_type.split(";")[0] == "text/csv" and status == 415:
        expected = 400  # CSV is one of MLflow's types: the body itself is then what is bad
    else:
        expected = MLFLOW_STATUS[status]
    assert response["statusCode"] == expected, response["body"]
    if expected == 415:
        assert response["multiValueHeaders"]["Content-Type"] == ["text/plain"]
    else:
        error = json.loads(response["body"])
        assert set(error) <= {"error_code", "message", "errors"}
        assert error["error_code"] in ("BAD_REQUEST", "RESOURCE_LIMIT_EXCEEDED")
    for text in (response["body"], logs.out, logs.err):
        assert "Traceback" not in text
        assert 'File "' not in text
    assert '"RowsPredicted"' not in logs.out  # nothing reached the model
