from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from support import project_template

from lambdaserve import manifest
from lambdaserve.serving.openapi import document


@pytest.fixture
def doc(sample_bundle: Path) -> dict[str, Any]:
    return document(manifest.read(sample_bundle), max_rows=50)


def _validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    schema = {**doc["components"]["schemas"][name], "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    validate(doc)
    # Every route the API Gateway declares, and nothing else (template.yaml's DefinitionBody).
    api = project_template()["Resources"]["PredictApi"]["Properties"]["DefinitionBody"]
    routes = {(path, method) for path, methods in api["paths"].items() for method in methods}
    assert {(p, m) for p, methods in doc["paths"].items() for m in methods} == routes
    assert "/v2/models/{name}/versions/{version}/infer" in doc["paths"]


def test_every_operation_needs_an_api_key_or_sigv4_and_documents_the_403(
    doc: dict[str, Any],
) -> None:
    assert doc["security"] == [{"apiKey": []}, {"sigv4": []}]
    schemes = doc["components"]["securitySchemes"]
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "x-api-key")
    assert schemes["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for methods in doc["paths"].values():
        for operation in methods.values():
            assert "security" not in operation
            for code in ("403", "429", "502"):  # API Gateway's own answers
                assert operation["responses"][code] == {
                    "$ref": "#/components/responses/GatewayProblem"
                }


def test_request_schema_carries_names_types_enums_and_ranges(doc: dict[str, Any]) -> None:
    props = doc["components"]["schemas"]["Instance"]["properties"]
    assert props["recency_days"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 3650,
        "description": "days since the last purchase",
    }
    assert props["device"]["enum"] == ["desktop", "mobile", "tablet"]
    assert props["discount_pct"]["anyOf"][1] == {"type": "null"}
    assert "discount_pct" not in doc["components"]["schemas"]["Instance"]["required"]


def test_golden_inputs_validate_and_bad_rows_do_not(
    sample_bundle: Path, doc: dict[str, Any]
) -> None:
    golden = [g.inputs for g in manifest.read(sample_bundle).golden_examples]
    request = _validator(doc, "PredictRequest")
    request.validate({"instances": golden})
    assert not request.is_valid({"instances": [{**golden[0], "device": "watch"}]})
    assert not request.is_valid({"instances": [{**golden[0], "unknown": 1}]})
    assert not request.is_valid({"instances": []})
    assert not request.is_valid({"instances": [golden[0]] * 51})


def test_response_schema_lists_the_classes(doc: dict[str, Any]) -> None:
    response = doc["components"]["schemas"]["PredictResponse"]["properties"]
    assert response["predictions"]["items"] == {"type": "integer", "enum": [0, 1]}
    assert "probabilities" in response


def test_columnar_rows_are_documented_value_by_value(
    sample_bundle: Path, doc: dict[str, Any]
) -> None:
    golden = [g.inputs for g in manifest.read(sample_bundle).golden_examples]
    names = [f.name for f in manifest.read(sample_bundle).features]
    request = _validator(doc, "PredictRequest")
    rows = [[g.get(n) for n in names] for g in golden]
    request.validate({"dataframe_split": {"columns": names, "data": rows}})
    assert not request.is_valid({"dataframe_split": {"columns": names, "data": [rows[0][:-1]]}})
    bad = [*rows[0][:-2], "watch", rows[0][-1]]
    assert not request.is_valid({"dataframe_split": {"columns": names, "data": [bad]}})


def test_the_snowflake_route_documents_its_positional_rows_and_results(
    sample_bundle: Path,
) -> None:
    schemas = document(manifest.read(sample_bundle), max_rows=100)["components"]["schemas"]
    request = jsonschema.Draft202012Validator(schemas["SnowflakeRequest"])
    row = [0, 3, 6, 412.5, 9, 4, None, "desktop", "email"]
    assert request.is_valid({"data": [row]})
    assert not request.is_valid({"data": [row[:-1]]})  # one argument short
    assert not request.is_valid({"data": []})
    response = jsonschema.Draft202012Validator(schemas["SnowflakeResponse"])
    assert response.is_valid({"data": [[0, 0.25], [1, None]]})
