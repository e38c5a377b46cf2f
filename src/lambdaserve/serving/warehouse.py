"""Scoring from the warehouse, in each vendor's documented JSON, over the same parser, model,
metrics and data capture as POST /predict.

- **Redshift** (a scalar Lambda UDF: `CREATE EXTERNAL FUNCTION ... LAMBDA '<function>:live'`)
  invokes the function with `{"request_id", "cluster", "user", "database", "external_function",
  "query_id", "num_records", "arguments": [[v1, v2, ...], ...]}` and expects
  `{"success": true, "num_records": n, "results": [...]}` in the same order, or
  `{"success": false, "error_msg": "..."}` (Amazon Redshift Database Developer Guide, "Scalar
  Lambda UDFs"). Redshift has no per-row error, so one bad row fails the call, naming the row.
- **Snowflake** (an external function through API Gateway, `POST /snowflake`) sends
  `{"data": [[row_number, v1, v2, ...], ...]}` and expects `{"data": [[row_number, result],
  ...]}` (Snowflake documentation, "Remote service input and output data formats"). A bad row
  fails the call too (a 400 in the API's problem+json, which Snowflake shows with the query's
  error), for the same reason as Redshift: a score silently missing from a warehouse table is
  worse than a query that says which row is wrong.

Arguments are positional, in the bundle's feature order (`lambdaserve sql` prints the
statements in that order). SQL's convention for NULL holds: a row with NULL in a required
feature scores NULL, as a strict SQL function would; an optional feature's NULL is a missing
value, as in /predict. A row's result is a binary classifier's probability of its positive
class (the bundle's second class), another classifier's predicted class, or a regressor's
prediction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambdaserve.problem import (
    FieldError,
    MalformedRequestError,
    PayloadTooLargeError,
    RequestError,
    SchemaViolationError,
)

if TYPE_CHECKING:
    from lambdaserve.manifest import Manifest
    from lambdaserve.serving.predictor import Predictor

# Score one validated {"instances": [...]} body: the route's Scorer (metrics, capture, mirror).
Score = Callable[["Predictor", dict[str, Any]], dict[str, Any]]
REDSHIFT_KEYS = frozenset({"external_function", "arguments", "num_records"})


def is_redshift_call(event: Any) -> bool:
    """Redshift's Lambda UDF payload (it invokes the function directly, not through the API)."""
    return isinstance(event, dict) and set(event) >= REDSHIFT_KEYS


def result_kind(manifest: Manifest) -> str:
    """What one row's result is: `probability`, `class` or `prediction`."""
    if manifest.task == "classification":
        return "probability" if len(manifest.classes or []) == 2 else "class"
    return "prediction"


def score_rows(predictor: Predictor, rows: list[Any], score: Score) -> list[Any]:
    """One result per positional row, in order (None for a row SQL's NULL rule leaves out).
    SchemaViolationError names the first bad rows; MalformedRequestError a row that is not a
    list of one value per feature."""
    features = predictor.manifest.features
    if not rows:
        raise MalformedRequestError("the batch has no rows")
    if len(rows) > predictor.parser.max_rows:
        raise PayloadTooLargeError(
            f"{len(rows)} rows is more than this endpoint's limit of "
            f"{predictor.parser.max_rows} per batch (MAX_BATCH_ROWS in the SQL statement)"
        )
    records: list[dict[str, Any]] = []
    kept: list[int] = []
    unscored: list[FieldError] = []
    for index, row in enumerate(rows):
        if row is None:
            continue  # a NULL row: NULL
        if not isinstance(row, list) or len(row) != len(features):
            raise MalformedRequestError(
                f"row {index}: expected {len(features)} arguments in the order "
                f"{', '.join(f.name for f in features)}, got "
                + (f"{len(row)}" if isinstance(row, list) else type(row).__name__)
            )
        if any(value is None and f.required for f, value in zip(features, row, strict=True)):
            # NULL in a required feature: NULL, as a strict SQL function; its other values
            # are still checked, so a bad one is named, never hidden behind the NULL.
            unscored += [
                FieldError(index, f.name, problem)
                for f, value in zip(features, row, strict=True)
                if (problem := predictor.parser.problem_with(f, value))
            ]
            continue
        records.append(
            {f.name: value for f, value in zip(features, row, strict=True) if value is not None}
        )
        kept.append(index)
    if unscored:
        raise SchemaViolationError(_rows_named(unscored), unscored)
    results: list[Any] = [None] * len(rows)
    if not records:
        return results
    try:
        answer = score(predictor, {"instances": records})
    except SchemaViolationError as exc:  # its rows renumbered as the caller sent them
        errors = [
            FieldError(kept[e.row] if e.row is not None else None, e.field, e.message)
            for e in exc.errors
        ]
        raise SchemaViolationError(_rows_named(errors), errors) from None
    kind = result_kind(predictor.manifest)
    for position, index in enumerate(kept):
        if kind == "probability":
            results[index] = answer["probabilities"][position][1]
        else:
            results[index] = answer["predictions"][position]
    return results


def _rows_named(errors: list[FieldError]) -> str:
    """The first field errors, one clause each: `row 3 recency_days: must be a number`."""
    named = [
        f"row {e.row}" + (f" {e.field}" if e.field else "") + f": {e.message}" for e in errors[:5]
    ]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(named) + more


def redshift_answer(event: dict[str, Any], model: Callable[[], Predictor], score: Score) -> str:
    """Redshift's answer to one batch, as the JSON text its documented examples return (a
    refusal is `success: false` with the reason: Redshift shows it as the query's error)."""
    arguments = event.get("arguments")
    try:
        if not isinstance(arguments, list):
            raise MalformedRequestError("'arguments' must be a list of rows")
        results = score_rows(model(), arguments, score)
    except RequestError as exc:
        return json.dumps({"success": False, "error_msg": f"lambdaserve: {exc.detail}"})
    return json.dumps({"success": True, "num_records": len(results), "results": results})


def snowflake_answer(body: Any, predictor: Predictor, score: Score) -> dict[str, Any]:
    """Snowflake's answer to one batch; a RequestError (a 4xx on the API) for a bad one."""
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(body, dict) and set(body) - {"data"}:
        raise MalformedRequestError(f"unknown top-level keys: {sorted(set(body) - {'data'})}")
    if not isinstance(data, list) or not all(
        isinstance(row, list) and row and type(row[0]) is int
        for row in data  # not a bool
    ):
        raise MalformedRequestError(
            'the body must be Snowflake\'s {"data": [[row_number, arguments...], ...]}'
        )
    results = score_rows(predictor, [row[1:] for row in data], score)
    return {"data": [[row[0], result] for row, result in zip(data, results, strict=True)]}


# A feature's SQL type in each warehouse (the argument list `lambdaserve sql` prints).
SQL_TYPES = {
    "redshift": {
        "number": "DOUBLE PRECISION",
        "integer": "BIGINT",
        "boolean": "BOOLEAN",
        "category": "VARCHAR",
    },
    "snowflake": {
        "number": "FLOAT",
        "integer": "NUMBER",
        "boolean": "BOOLEAN",
        "category": "VARCHAR",
    },
}


def returns_type(manifest: Manifest, warehouse: str) -> str:
    """The SQL type of a row's result: a number (probability, prediction) or the class."""
    types = SQL_TYPES[warehouse]
    if result_kind(manifest) != "class":
        return types["number"]
    labels = manifest.classes or []
    if all(isinstance(c, int) and not isinstance(c, bool) for c in labels):
        return types["integer"]
    return types["category"]
