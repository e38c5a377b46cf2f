"""MLflow's scoring-server contract on the same model, validation and capture as /predict, so
code written against `mlflow models serve` (or MLflow's SageMaker deployment, the same contract)
calls lambdaserve unchanged (mlflow/pyfunc/scoring_server, MLflow 3.x):

- `POST /invocations`: `application/json` with exactly one of `dataframe_split`,
  `dataframe_records`, `instances` or `inputs`, and an optional `params`; or `text/csv` with a
  header row of column names. Answers `{"predictions": [...]}`, the model's `predict()`.
- A charset other than utf-8, another content-type parameter, or another media type: 415 with
  MLflow's text/plain message. Parquet, which MLflow also reads, is one of those here.
- Refusals in MLflow's error shape, `{"error_code": "BAD_REQUEST", "message": ...}`, with the
  statuses MLflow uses (400 for any bad input), plus `errors`, our per-field list.
- `GET /ping`: 200 with a newline, as MLflow's; `GET /version`: lambdaserve's version (MLflow's
  answers its own). Both as text/plain, which they are (MLflow labels them application/json).
  `GET /health` stays lambdaserve's own, richer answer (docs: The API).

Where we are stricter than MLflow, on purpose: a top-level key other than the format and
`params` is refused (MLflow drops it silently, so a typo in `params` would go unnoticed); rows
are checked feature by feature against the bundle's spec (MLflow enforces only the signature's
types); `instances`/`inputs` as bare lists of values (tensors) are refused, since the model
takes named features; `params` must be an object, and is accepted but not used (scikit-learn's
`predict` takes none, and MLflow's server likewise ignores them for such a model). A JSON
`NaN` (how MLflow's client writes a DataFrame's missing values) is a missing value, as in pandas.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lambdaserve.problem import (
    FieldError,
    MalformedRequestError,
    ModelUnavailableError,
    PayloadTooLargeError,
    RequestError,
)
from lambdaserve.serving.schema import from_text

if TYPE_CHECKING:
    from lambdaserve.manifest import Feature

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON_TYPE, CSV_TYPE = "application/json", "text/csv"
# MLflow's own wording, so a client that matches on it still does.
REQUIRED_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)
_ERROR_CODES = {400: "BAD_REQUEST", 413: "RESOURCE_LIMIT_EXCEEDED", 503: "TEMPORARILY_UNAVAILABLE"}


class UnsupportedContentError(Exception):
    """A 415, answered in MLflow's text/plain."""


def check_content_type(content_type: str | None) -> str:
    """The media type (json or csv), or UnsupportedContentError with MLflow's message."""
    parts = [p.strip() for p in (content_type or JSON_TYPE).split(";")]
    media, parameters = parts[0].lower(), dict(p.partition("=")[::2] for p in parts[1:] if p)
    if parameters.get("charset", "utf-8").strip('"').lower() != "utf-8":
        raise UnsupportedContentError("The scoring server only supports UTF-8")
    unexpected = set(parameters) - {"charset"}
    if unexpected:
        raise UnsupportedContentError(
            f"Unrecognized content type parameters: {', '.join(sorted(unexpected))}."
        )
    if media not in (JSON_TYPE, CSV_TYPE):
        raise UnsupportedContentError(
            "This predictor only supports the following content types: Types: "
            f"['{CSV_TYPE}', '{JSON_TYPE}']. Got '{content_type}'."
        )
    return media


def predict_body(
    media: str, text: str, max_rows: int, features: Sequence[Feature]
) -> dict[str, Any]:
    """An /invocations body as /predict's (`instances` or `dataframe_split`), or a
    RequestError that says why not."""
    if media == CSV_TYPE:
        return _csv_body(text, max_rows, features)
    try:
        # MLflow's client writes a DataFrame's missing values as NaN (json.dumps of
        # to_dict("split")); pandas means "missing" by it, so it is read as an absent value.
        body = json.loads(text, parse_constant=_constant) if text.strip() else None
    except (ValueError, RecursionError):
        raise MalformedRequestError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise MalformedRequestError(REQUIRED_FORMAT)
    given = [k for k in FORMATS if k in body]
    if len(given) != 1:
        raise MalformedRequestError(f"{REQUIRED_FORMAT}. Received: {sorted(body)}")
    extra = sorted(set(body) - {given[0], "params"})
    if extra:
        raise MalformedRequestError(f"unknown top-level keys: {extra} (only 'params' may join)")
    if "params" in body and not isinstance(body["params"], dict):
        raise MalformedRequestError("'params' must be an object")
    (shape,) = given
    value = body[shape]
    if shape == "dataframe_split":
        return {"dataframe_split": value}
    if shape == "inputs" and isinstance(value, dict):  # columns: {"name": [values, ...]}
        return {"dataframe_split": _columns_to_split(value)}
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise MalformedRequestError(
            f"'{shape}' must be a list of records ({{feature: value}}): this model takes named "
            "features, not tensors"
        )
    return {"instances": value}


def _constant(name: str) -> float | None:
    return None if name == "NaN" else float(name)  # ±Infinity: refused as not finite


def _columns_to_split(columns: dict[str, Any]) -> dict[str, Any]:
    values = list(columns.values())
    if not all(isinstance(v, list) for v in values) or len({len(v) for v in values}) > 1:
        raise MalformedRequestError(
            "'inputs' as columns must map each name to a list, all of one length"
        )
    rows = [list(row) for row in zip(*values, strict=True)] if values else []
    return {"columns": list(columns), "data": rows}


def _csv_body(text: str, max_rows: int, features: Sequence[Feature]) -> dict[str, Any]:
    """A CSV body with a header row as a dataframe_split, each field read as its feature's
    JSON value (schema.from_text: empty = missing), as batch scoring reads CSV."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not rows[0]:
        raise MalformedRequestError("the CSV body needs a header row of column names")
    header, data = rows[0], [r for r in rows[1:] if r]
    if len(data) > max_rows:
        raise PayloadTooLargeError(
            f"{len(data)} rows is more than this endpoint's limit of {max_rows} per request"
        )
    bad = [
        FieldError(i, None, f"has {len(r)} fields for {len(header)} columns")
        for i, r in enumerate(data)
        if len(r) != len(header)
    ]
    if bad:
        raise MalformedRequestError(f"{len(bad)} CSV row(s) do not match the header", bad)
    by_name = {f.name: f for f in features}
    readers = [by_name.get(name) for name in header]
    values = [
        [from_text(f, v) if f is not None else v for f, v in zip(readers, row, strict=True)]
        for row in data
    ]
    return {"dataframe_split": {"columns": header, "data": values}}


def error_answer(error: RequestError) -> tuple[int, str]:
    """A refusal as MLflow's server answers one: its status and JSON body."""
    status = 400 if error.status in (400, 422) else error.status
    code = _ERROR_CODES.get(status, "BAD_REQUEST")
    if isinstance(error, ModelUnavailableError):
        status, code = 503, _ERROR_CODES[503]
    body: dict[str, Any] = {"error_code": code, "message": error.detail}
    if error.errors:
        body["errors"] = [
            {"row": e.row, "field": e.field, "message": e.message} for e in error.errors[:100]
        ]
    return status, json.dumps(body)
