"""The two layouts of a predict body: records (`instances`, one object per row) and columnar
(MLflow's `dataframe_split`: the names once, then a list of values per row). Their structure is
checked here; the values, feature by feature, in schema.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdaserve.problem import (
    FieldError,
    MalformedRequestError,
    PayloadTooLargeError,
    SchemaViolationError,
)


@dataclass(frozen=True)
class Columnar:
    """A dataframe_split whose rows are all lists of one value per column."""

    columns: list[str]
    data: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        """The rows as records, for the exact per-value path."""
        return [dict(zip(self.columns, values, strict=True)) for values in self.data]


def request_rows(body: Any, max_rows: int) -> list[Any] | Columnar:
    """A predict body's rows: the `instances` list as sent (its rows not yet checked), or a
    well-formed `dataframe_split`; a MalformedRequestError, SchemaViolationError or
    PayloadTooLargeError for a body of neither layout, or of no rows or too many."""
    if not isinstance(body, dict):
        raise MalformedRequestError(
            "the body must be a JSON object with 'instances' or 'dataframe_split'"
        )
    shapes = [k for k in ("instances", "dataframe_split") if k in body]
    if len(shapes) != 1:
        raise MalformedRequestError(
            "the body must have exactly one of 'instances' or 'dataframe_split'"
        )
    extra = sorted(set(body) - {"instances", "dataframe_split"})
    if extra:
        raise MalformedRequestError(f"unknown top-level keys: {extra}")
    if shapes[0] == "instances":
        records = body["instances"]
        if not isinstance(records, list):
            raise MalformedRequestError("'instances' must be a list of objects")
        _check_count(len(records), max_rows)
        return records
    return _columnar(body["dataframe_split"], max_rows)


def _columnar(split: Any, max_rows: int) -> Columnar:
    if not isinstance(split, dict):
        raise MalformedRequestError("'dataframe_split' must be an object")
    extra = sorted(set(split) - {"columns", "data", "index"})
    if extra:
        raise MalformedRequestError(f"unknown keys in 'dataframe_split': {extra}")
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise MalformedRequestError("'dataframe_split.columns' must be a list of strings")
    if len(set(columns)) != len(columns):
        raise MalformedRequestError("'dataframe_split.columns' has duplicate names")
    if not isinstance(data, list):
        raise MalformedRequestError("'dataframe_split.data' must be a list of rows")
    if "index" in split and not isinstance(split["index"], list):
        raise MalformedRequestError("'dataframe_split.index' must be a list")
    _check_count(len(data), max_rows)
    if set(map(type, data)) == {list} and set(map(len, data)) == {len(columns)}:
        return Columnar(columns, data)
    errors: list[FieldError] = []
    for row, values in enumerate(data):
        if not isinstance(values, list):
            errors.append(FieldError(row, None, "a row must be a list of values"))
        elif len(values) != len(columns):
            errors.append(
                FieldError(row, None, f"has {len(values)} values for {len(columns)} columns")
            )
    raise SchemaViolationError(f"{len(errors)} malformed row(s)", errors)


def _check_count(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise SchemaViolationError("the batch is empty: send at least one row")
    if rows > max_rows:
        raise PayloadTooLargeError(
            f"{rows} rows is more than this endpoint's limit of {max_rows} per request"
        )
