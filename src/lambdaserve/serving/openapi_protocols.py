"""The OpenAPI parts of the other protocols on the same model: MLflow's scoring server
(serving/mlflow.py), the Open Inference Protocol (serving/oip.py) and Snowflake's external
function (serving/warehouse.py). openapi.py puts them into the one document, beside
/predict's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdaserve.serving.oip import DATATYPES
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


def oip_paths(manifest: Manifest, gateway: dict[str, Any]) -> dict[str, Any]:
    """The Open Inference Protocol's routes (serving/oip.py). The JSON form of an inference
    request is described; the binary form (Content-Type application/octet-stream, the JSON
    header's length in Inference-Header-Content-Length, raw tensors after it) is the same
    header with `binary_data_size` in place of `data`."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/OipError"}}}}
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [manifest.name]},
    }
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [manifest.version or ""]},
    }
    empty = {"description": "yes (no body)"}
    unavailable = {"description": "the model could not be loaded", **error}
    unknown = {"description": "no such model or version", **error}

    def model_routes(suffix: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
        base = f"/v2/models/{{name}}{suffix}"
        tag = "Version" if suffix else ""
        return {
            base: {
                "get": {
                    "operationId": f"oipModel{tag}Metadata",
                    "parameters": parameters,
                    "responses": {
                        "200": {
                            "description": "the model's inputs (its features) and outputs",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/OipModelMetadata"}
                                }
                            },
                        },
                        "404": unknown,
                        "503": unavailable,
                        **gateway,
                    },
                }
            },
            f"{base}/ready": {
                "get": {
                    "operationId": f"oipModel{tag}Ready",
                    "parameters": parameters,
                    "responses": {"200": empty, "404": unknown, "503": unavailable, **gateway},
                }
            },
            f"{base}/infer": {
                "post": {
                    "operationId": f"oipModel{tag}Infer",
                    "description": "one tensor per feature ([rows] or [rows, 1]), or one "
                    "[rows, features] tensor for an all-numeric model; binary tensors with "
                    "Content-Type application/octet-stream and Inference-Header-Content-Length",
                    "parameters": parameters,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/OipInferRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the requested outputs (binary ones after the JSON "
                            "header, with Accept: application/octet-stream)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/OipInferResponse"}
                                },
                                "application/octet-stream": {},
                            },
                        },
                        "400": {"description": "a malformed request or tensor", **error},
                        "404": unknown,
                        "413": {"description": "too many rows, or too large", **error},
                        "415": {"description": "not JSON or application/octet-stream", **error},
                        "422": {"description": "a value the feature spec refuses", **error},
                        "503": unavailable,
                        **gateway,
                    },
                }
            },
        }

    return {
        "/v2": {
            "get": {
                "operationId": "oipServerMetadata",
                "responses": {
                    "200": {
                        "description": "the server's name, version and protocol extensions",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **gateway,
                },
            }
        },
        "/v2/health/live": {
            "get": {"operationId": "oipLive", "responses": {"200": empty, **gateway}}
        },
        "/v2/health/ready": {
            "get": {
                "operationId": "oipReady",
                "responses": {"200": empty, "503": unavailable, **gateway},
            }
        },
        **model_routes("", [name]),
        **model_routes("/versions/{version}", [name, version]),
    }


def oip_schemas(manifest: Manifest, max_rows: int) -> dict[str, Any]:
    """The inference request and response objects, the metadata and the error."""
    tensor_meta = {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
    }
    shape = {
        "type": "array",
        "minItems": 1,
        "maxItems": 2,
        "prefixItems": [{"type": "integer", "minimum": 1, "maximum": max_rows}],
        "items": {"type": "integer", "minimum": 0},
    }
    return {
        "OipInferRequest": {
            "type": "object",
            "required": ["inputs"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "shape", "datatype"],
                        "properties": {
                            "name": {"type": "string", "enum": [f.name for f in manifest.features]},
                            "shape": shape,
                            "datatype": {"type": "string", "enum": sorted(DATATYPES)},
                            "parameters": {"type": "object"},
                            "data": {"type": "array"},
                        },
                    },
                },
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "parameters": {"type": "object"},
                        },
                    },
                },
            },
        },
        "OipInferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": tensor_meta},
            },
        },
        "OipModelMetadata": {
            "type": "object",
            "required": ["name", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": tensor_meta},
                "outputs": {"type": "array", "items": tensor_meta},
            },
        },
        "OipError": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
    }
