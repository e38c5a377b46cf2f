"""The OpenAPI 3.1 document for one deployed model, generated from its manifest."""

from __future__ import annotations

from typing import Any

from lambdaserve.manifest import Feature, Manifest
from lambdaserve.problem import (
    CONTENT_TYPE,
    GATEWAY_PROBLEMS,
    TYPE_BASE,
    MalformedRequestError,
    ModelUnavailableError,
    PayloadTooLargeError,
    RequestError,
    SchemaViolationError,
    UnsupportedMediaTypeError,
)
from lambdaserve.serving import openapi_protocols

_JSON_TYPES = {"number": "number", "integer": "integer", "boolean": "boolean", "category": "string"}


def feature_schema(feature: Feature) -> dict[str, Any]:
    """JSON Schema of one feature's value."""
    schema: dict[str, Any] = {"type": _JSON_TYPES[feature.type]}
    if feature.categories is not None and not feature.allow_unknown:
        schema["enum"] = list(feature.categories)
    elif feature.categories is not None:
        schema["examples"] = list(feature.categories)
    if feature.minimum is not None:
        schema["minimum"] = feature.minimum
    if feature.maximum is not None:
        schema["maximum"] = feature.maximum
    if not feature.required:
        schema = {"anyOf": [schema, {"type": "null"}]}
    if feature.description:
        schema["description"] = feature.description
    return schema


def _label_schema(manifest: Manifest) -> dict[str, Any]:
    """What one prediction is, by the kind of model."""
    if manifest.task == "clustering":
        return {"type": "integer", "minimum": 0, "description": "the cluster the row falls in"}
    if manifest.task == "outlier_detection":
        return {"type": "integer", "enum": [-1, 1], "description": "-1 outlier, 1 inlier"}
    if manifest.task == "regression" or not manifest.classes:
        return {"type": "number"}
    kinds = {
        "string" if isinstance(c, str) else "integer" if isinstance(c, int) else "number"
        for c in manifest.classes
    }
    return {
        "type": kinds.pop() if len(kinds) == 1 else ["string", "number"],
        "enum": list(manifest.classes),
    }


def _record_schema(manifest: Manifest) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: feature_schema(f) for f in manifest.features},
        "required": [f.name for f in manifest.features if f.required],
        "additionalProperties": False,
    }


def _records_shape(max_rows: int) -> dict[str, Any]:
    return {
        "type": "object",
        "title": "records",
        "required": ["instances"],
        "additionalProperties": False,
        "properties": {
            "instances": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_rows,
                "items": {"$ref": "#/components/schemas/Instance"},
            }
        },
    }


def _columnar_shape(manifest: Manifest, max_rows: int) -> dict[str, Any]:
    names = [f.name for f in manifest.features]
    row = {
        "type": "array",
        "prefixItems": [feature_schema(f) for f in manifest.features],
        "minItems": len(names),
        "maxItems": len(names),
    }
    return {
        "type": "object",
        "title": "columnar (MLflow dataframe_split)",
        "description": "columns in any order are accepted; this schema documents the "
        "feature order, which JSON Schema can tie to each row's values",
        "required": ["dataframe_split"],
        "additionalProperties": False,
        "properties": {
            "dataframe_split": {
                "type": "object",
                "required": ["columns", "data"],
                "additionalProperties": False,
                "properties": {
                    "columns": {"const": names},
                    "data": {"type": "array", "minItems": 1, "maxItems": max_rows, "items": row},
                    "index": {"type": "array"},
                },
            }
        },
    }


def _response_schema(manifest: Manifest) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "predictions": {"type": "array", "items": _label_schema(manifest)},
        "model": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": ["string", "null"]}},
        },
    }
    if manifest.has_probabilities:
        properties["probabilities"] = {
            "type": "array",
            "description": f"per row, one probability per class in the order {manifest.classes}",
            "items": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
        }
    return {"type": "object", "required": ["predictions", "model"], "properties": properties}


# What each route can refuse, from problem.py: its own problems, then API Gateway's (template
# GatewayResponses) on every route.
_PREDICT_REFUSALS = (
    MalformedRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    SchemaViolationError,
    ModelUnavailableError,
)
_GATEWAY_STATUSES = ("403", "429", "502")


def _gateway_responses() -> dict[str, Any]:
    """API Gateway's own answers, on every route."""
    return {code: {"$ref": "#/components/responses/GatewayProblem"} for code in _GATEWAY_STATUSES}


def _responses(ok: dict[str, Any], refusals: tuple[type[RequestError], ...]) -> dict[str, Any]:
    return {
        "200": ok,
        **{str(e.status): {"$ref": "#/components/responses/Problem"} for e in refusals},
        **_gateway_responses(),
    }


def _paths(manifest: Manifest) -> dict[str, Any]:
    predict_ok = {
        "description": "one prediction per row, in request order",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
        },
    }
    body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
        },
    }
    reads = {
        "/health": ("health", "the model is loaded"),
        "/model": ("model", "the model's manifest, public part"),
        "/openapi.json": ("openapi", "this document"),
    }
    snowflake_ok = {
        "description": "each row number with its result, in request order",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SnowflakeResponse"}}
        },
    }
    snowflake_body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SnowflakeRequest"}}
        },
    }
    return {
        "/predict": {
            "post": {
                "operationId": "predict",
                "requestBody": body,
                "responses": _responses(predict_ok, _PREDICT_REFUSALS),
            }
        },
        **openapi_protocols.mlflow_paths(_gateway_responses()),
        **openapi_protocols.oip_paths(manifest, _gateway_responses()),
        "/snowflake": {
            "post": {
                "operationId": "snowflake",
                "description": "a Snowflake external function's batch: arguments positional, "
                "in the feature order of the Instance schema",
                "requestBody": snowflake_body,
                "responses": _responses(snowflake_ok, _PREDICT_REFUSALS),
            }
        },
        **{
            path: {
                "get": {
                    "operationId": operation,
                    "responses": _responses({"description": ok}, (ModelUnavailableError,)),
                }
            }
            for path, (operation, ok) in reads.items()
        },
    }


def _problem_schemas() -> dict[str, Any]:
    error = {
        "type": "object",
        "required": ["row", "field", "message"],
        "properties": {
            "row": {"type": ["integer", "null"]},
            "field": {"type": ["string", "null"]},
            "message": {"type": "string"},
        },
    }
    # RFC 9457's members, shared by ours and API Gateway's (whose DEFAULT_* carry no status).
    rfc9457 = {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    }
    return {
        "GatewayProblem": {
            "type": "object",
            "required": ["type", "title", "detail"],
            "properties": {**rfc9457, "request_id": {"type": "string"}},
        },
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                **rfc9457,
                "instance": {"type": "string"},
                "errors": {"type": "array", "items": error},
                "errors_omitted": {"type": "integer"},
            },
        },
    }


_SECURITY_SCHEMES = {
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "AuthMode API_KEY: a key of the stack's usage plan",
    },
    "sigv4": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "AuthMode AWS_IAM: AWS Signature Version 4 (service execute-api) by a "
            "principal allowed execute-api:Invoke"
        ),
        "x-amazon-apigateway-authtype": "awsSigv4",
    },
}


def _problem_responses() -> dict[str, Any]:
    gateway_types = sorted({TYPE_BASE + p.slug for p in GATEWAY_PROBLEMS.values()})
    return {
        "GatewayProblem": {
            "description": (
                "API Gateway answered before or instead of the model: no such route, "
                "a missing or invalid API key or signature (403), throttled or over "
                "quota (429), the function failed (502). Types: " + ", ".join(gateway_types)
            ),
            "content": {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/GatewayProblem"}}},
        },
        "Problem": {
            "description": "RFC 9457 problem details",
            "content": {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        },
    }


def document(manifest: Manifest, max_rows: int, server_url: str | None = None) -> dict[str, Any]:
    """The document a client needs to call exactly this model."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{manifest.name} prediction API",
            "version": manifest.version or "unpublished",
            "description": f"{manifest.estimator} ({manifest.task}) served by lambdaserve.",
        },
        # One of the two, whichever the stack's AuthMode is; API Gateway checks it before the
        # function runs and answers 403 otherwise.
        "security": [{"apiKey": []}, {"sigv4": []}],
        "paths": _paths(manifest),
        "components": {
            "schemas": {
                "Instance": _record_schema(manifest),
                "PredictRequest": {
                    "oneOf": [_records_shape(max_rows), _columnar_shape(manifest, max_rows)]
                },
                "PredictResponse": _response_schema(manifest),
                **openapi_protocols.snowflake_schemas(
                    manifest, _record_schema(manifest)["properties"], max_rows
                ),
                **openapi_protocols.mlflow_schemas(
                    _columnar_shape(manifest, max_rows)["properties"]["dataframe_split"], max_rows
                ),
                **openapi_protocols.oip_schemas(manifest, max_rows),
                **_problem_schemas(),
            },
            "securitySchemes": _SECURITY_SCHEMES,
            "responses": _problem_responses(),
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
