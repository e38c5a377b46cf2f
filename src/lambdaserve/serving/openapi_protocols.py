"""The OpenAPI parts of the other protocols on the same model: MLflow's scoring server
(serving/mlflow.py) and Snowflake's external function (serving/warehouse.py). openapi.py puts
them into the one document, beside /predict's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdaserve.serving.warehouse import result_kind

if TYPE_CHECKING:
    from lambdaserve.manifest import Manifest


def mlflow_paths(gateway: dict[str, Any]) -> dict[str, Any]:
    """MLflow's scoring protocol (serving/mlflow.py): its bodies, answers and error shape."""
    error = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MlflowError"}}}
    }
    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "/invocations": {
            "post": {
                "operationId": "mlflowInvocations",
                "description": "MLflow's scoring server: JSON with exactly one of "
                "dataframe_split, dataframe_records, instances, inputs (and optional params); "
                "text/csv with a header row is accepted too",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/MlflowRequest"}
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "the model's predict(), one per row",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["predictions"],
                                    "properties": {"predictions": {"type": "array"}},
                                }
                            }
                        },
                    },
                    "400": {"description": "a bad body (MLflow answers 400 for all)", **error},
                    "413": {"description": "too many rows, or too large", **error},
                    "415": {"description": "not JSON or CSV in UTF-8 (MLflow's text)", **text},
                    "503": {"description": "the model could not be loaded", **error},
                    **gateway,
                },
            }
        },
        "/ping": {
            "get": {
                "operationId": "mlflowPing",
                "responses": {
                    "200": {"description": "a newline: the model is loaded", **text},
                    "503": {"$ref": "#/components/responses/Problem"},
                    **gateway,
                },
            }
        },
        "/version": {
            "get": {
                "operationId": "mlflowVersion",
                "responses": {"200": {"description": "lambdaserve's version", **text}, **gateway},
            }
        },
    }


def mlflow_schemas(split: dict[str, Any], max_rows: int) -> dict[str, Any]:
    """MLflow's four JSON shapes for this model (records, or the columnar split), and its
    error body. (`inputs` as columns and `text/csv` are accepted too: docs, The API.)"""
    records = {
        "type": "array",
        "minItems": 1,
        "maxItems": max_rows,
        "items": {"$ref": "#/components/schemas/Instance"},
    }
    shapes = {
        "dataframe_split": split,
        "dataframe_records": records,
        "instances": records,
        "inputs": records,
    }
    one_of = [
        {
            "type": "object",
            "title": name,
            "required": [name],
            "additionalProperties": False,
            "properties": {name: schema, "params": {"type": "object"}},
        }
        for name, schema in shapes.items()
    ]
    return {
        "MlflowRequest": {"oneOf": one_of},
        "MlflowError": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {
                "error_code": {"type": "string"},
                "message": {"type": "string"},
                "errors": {"type": "array"},
            },
        },
    }


def snowflake_schemas(
    manifest: Manifest, feature_schemas: dict[str, Any], max_rows: int
) -> dict[str, Any]:
    """Snowflake's documented batch: [row_number, one value per feature (NULL allowed)]."""
    arguments = [{"anyOf": [feature_schemas[f.name], {"type": "null"}]} for f in manifest.features]
    result: dict[str, Any] = (
        {"type": ["number", "null"]}
        if result_kind(manifest) != "class"
        else {"type": ["string", "integer", "boolean", "null"]}
    )
    width = len(manifest.features) + 1
    return {
        "SnowflakeRequest": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_rows,
                    "items": {
                        "type": "array",
                        "prefixItems": [{"type": "integer"}, *arguments],
                        "minItems": width,
                        "maxItems": width,
                    },
                }
            },
            "additionalProperties": False,
        },
        "SnowflakeResponse": {
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "array",
                    # [row_number, result]; as `items`, not `prefixItems`, which Schemathesis
                    # cannot check in a response schema ("is not of types boolean, object").
                    "items": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "integer"}, result]},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                }
            },
        },
    }
