"""The OpenAPI 3.1 document for one deployed model, generated from its manifest."""

from __future__ import annotations

from typing import Any

from lambdaserve.manifest import Feature, Manifest
from lambdaserve.problem import CONTENT_TYPE, GATEWAY_PROBLEMS, TYPE_BASE

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


def document(manifest: Manifest, max_rows: int, server_url: str | None = None) -> dict[str, Any]:
    """The document a client needs to call exactly this model."""
    props = {f.name: feature_schema(f) for f in manifest.features}
    record = {
        "type": "object",
        "properties": props,
        "required": [f.name for f in manifest.features if f.required],
        "additionalProperties": False,
    }
    names = [f.name for f in manifest.features]
    request = {
        "oneOf": [
            {
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
            },
            {
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
                            "data": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": max_rows,
                                "items": {
                                    "type": "array",
                                    "prefixItems": [props[n] for n in names],
                                    "minItems": len(names),
                                    "maxItems": len(names),
                                },
                            },
                            "index": {"type": "array"},
                        },
                    }
                },
            },
        ]
    }
    response_props: dict[str, Any] = {
        "predictions": {"type": "array", "items": _label_schema(manifest)},
        "model": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": ["string", "null"]}},
        },
    }
    if manifest.has_probabilities:
        response_props["probabilities"] = {
            "type": "array",
            "description": f"per row, one probability per class in the order {manifest.classes}",
            "items": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
        }
    problem_ref = {"$ref": "#/components/responses/Problem"}
    # API Gateway's own answers (template.yaml's GatewayResponses), on every route.
    forbidden = {
        code: {"$ref": "#/components/responses/GatewayProblem"} for code in ("403", "429", "502")
    }
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
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PredictRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "one prediction per row, in request order",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/PredictResponse"}
                                }
                            },
                        },
                        **{code: problem_ref for code in ("400", "413", "415", "422", "503")},
                        **forbidden,
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        "200": {"description": "the model is loaded"},
                        "503": problem_ref,
                        **forbidden,
                    },
                }
            },
            "/model": {
                "get": {
                    "operationId": "model",
                    "responses": {
                        "200": {"description": "the model's manifest, public part"},
                        "503": problem_ref,
                        **forbidden,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "responses": {
                        "200": {"description": "this document"},
                        "503": problem_ref,
                        **forbidden,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Instance": record,
                "PredictRequest": request,
                "PredictResponse": {
                    "type": "object",
                    "required": ["predictions", "model"],
                    "properties": response_props,
                },
                "GatewayProblem": {
                    "type": "object",
                    "required": ["type", "title", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "request_id": {"type": "string"},
                    },
                },
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["row", "field", "message"],
                                "properties": {
                                    "row": {"type": ["integer", "null"]},
                                    "field": {"type": ["string", "null"]},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                        "errors_omitted": {"type": "integer"},
                    },
                },
            },
            "securitySchemes": {
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
            },
            "responses": {
                "GatewayProblem": {
                    "description": (
                        "API Gateway answered before or instead of the model: no such route, "
                        "a missing or invalid API key or signature (403), throttled or over "
                        "quota (429), the function failed (502). Types: "
                        + ", ".join(sorted({TYPE_BASE + p.slug for p in GATEWAY_PROBLEMS.values()}))
                    ),
                    "content": {
                        CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/GatewayProblem"}}
                    },
                },
                "Problem": {
                    "description": "RFC 9457 problem details",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                },
            },
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
