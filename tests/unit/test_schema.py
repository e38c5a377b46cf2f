from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from lambdaserve.manifest import parse_features
from lambdaserve.problem import (
    MalformedRequestError,
    PayloadTooLargeError,
    RequestError,
    SchemaViolationError,
)
from lambdaserve.serving.schema import RequestParser

FEATURES = parse_features(
    [
        {"name": "age", "type": "integer", "minimum": 0, "maximum": 130},
        {"name": "spend", "type": "number"},
        {"name": "member", "type": "boolean"},
        {"name": "plan", "type": "category", "categories": ["free", "pro"]},
        {"name": "region", "type": "category", "categories": ["eu", "us"], "allow_unknown": True},
        {"name": "score", "type": "number", "required": False},
    ]
)
ROW = {"age": 41, "spend": 12.5, "member": True, "plan": "pro", "region": "eu", "score": 0.3}


def parser(max_rows: int = 100) -> RequestParser:
    return RequestParser(FEATURES, max_rows=max_rows)


def errors_of(body: Any) -> list[tuple[int | None, str | None, str]]:
    with pytest.raises(RequestError) as caught:
        parser().parse(body)
    return [(e.row, e.field, e.message) for e in caught.value.errors]


def test_records_become_a_matrix_in_feature_order() -> None:
    shuffled = dict(reversed(list(ROW.items())))
    matrix = parser().parse({"instances": [shuffled]})
    assert matrix.shape == (1, 6)
    assert matrix.tolist() == [[41.0, 12.5, 1.0, "pro", "eu", 0.3]]


def test_columnar_shape_gives_the_same_matrix_as_records() -> None:
    columns = list(reversed(ROW))
    body = {
        "dataframe_split": {
            "columns": columns,
            "data": [[ROW[c] for c in columns]] * 2,
            "index": [0, 1],
        }
    }
    assert parser().parse(body).tolist() == parser().parse({"instances": [ROW, ROW]}).tolist()


def test_optional_feature_missing_or_null_becomes_nan() -> None:
    row = {k: v for k, v in ROW.items() if k != "score"}
    matrix = parser().parse({"instances": [row, {**row, "score": None}]})
    assert math.isnan(matrix[0, 5])
    assert math.isnan(matrix[1, 5])


def test_unknown_category_passes_only_where_the_spec_allows_it() -> None:
    assert parser().parse({"instances": [{**ROW, "region": "apac"}]})[0, 4] == "apac"
    assert errors_of({"instances": [{**ROW, "plan": "enterprise"}]}) == [
        (0, "plan", "unknown category 'enterprise'")
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("age", None, "is required"),
        ("age", "41", "must be a number, got str"),
        ("age", True, "must be a number, got bool"),
        ("age", 41.5, "must be a whole number"),
        ("age", -1, "must be at least 0"),
        ("age", 131, "must be at most 130"),
        ("age", 10**400, "too large"),
        ("spend", float("nan"), "must be finite"),
        ("spend", float("inf"), "must be finite"),
        ("spend", [1], "must be a number, got list"),
        ("member", 1, "must be true or false, got int"),
        ("plan", 1, "must be a string category, got int"),
        ("plan", {"x": 1}, "must be a string category, got dict"),
    ],
)
def test_each_bad_value_is_reported_with_row_and_field(
    field: str, value: Any, message: str
) -> None:
    errors = errors_of({"instances": [ROW, {**ROW, field: value}]})
    assert len(errors) == 1
    row, where, text = errors[0]
    assert (row, where) == (1, field)
    assert message in text


def test_every_problem_in_a_batch_is_reported_at_once() -> None:
    errors = errors_of({"instances": [{**ROW, "age": -1}, ROW, {**ROW, "plan": "x", "nope": 1}]})
    assert errors == [
        (0, "age", "must be at least 0"),
        (2, "nope", "unknown feature"),
        (2, "plan", "unknown category 'x'"),
    ]


def test_a_row_that_is_not_an_object_is_a_row_error() -> None:
    assert errors_of({"instances": [ROW, [1, 2, 3]]}) == [
        (1, None, "a row must be an object of feature values")
    ]


@pytest.mark.parametrize(
    "body",
    [
        [ROW],
        "instances",
        {},
        {"instances": [ROW], "dataframe_split": {}},
        {"instances": {"0": ROW}},
        {"instances": [ROW], "extra": 1},
        {"dataframe_split": []},
        {"dataframe_split": {"columns": "age", "data": []}},
        {"dataframe_split": {"columns": ["age", "age"], "data": [[1, 2]]}},
        {"dataframe_split": {"columns": ["age"], "data": {"0": [1]}}},
        {"dataframe_split": {"columns": ["age"], "data": [[1]], "orient": "split"}},
        {"dataframe_split": {"columns": ["age"], "data": [[1]], "index": {}}},
    ],
)
def test_bodies_in_neither_shape_are_malformed(body: Any) -> None:
    with pytest.raises(MalformedRequestError):
        parser().parse(body)


def test_columnar_rows_of_the_wrong_length_are_row_errors() -> None:
    body = {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values()), [1, 2], "x"]}}
    assert errors_of(body) == [
        (1, None, "has 2 values for 6 columns"),
        (2, None, "a row must be a list of values"),
    ]


def test_an_empty_batch_is_a_schema_violation() -> None:
    with pytest.raises(SchemaViolationError, match="empty"):
        parser().parse({"instances": []})


@pytest.mark.parametrize("shape", ["instances", "dataframe_split"])
def test_too_many_rows_is_413_before_any_row_is_read(shape: str) -> None:
    rows: list[Any] = ["not even a row"] * 3
    body = (
        {"instances": rows}
        if shape == "instances"
        else {"dataframe_split": {"columns": list(ROW), "data": rows}}
    )
    with pytest.raises(PayloadTooLargeError, match="limit of 2"):
        parser(max_rows=2).parse(body)


def test_matrix_is_object_dtype_so_categories_stay_strings() -> None:
    matrix = parser().parse({"instances": [ROW]})
    assert matrix.dtype == np.dtype(object)


def test_vectorised_path_builds_exactly_what_the_per_value_path_would() -> None:
    from lambdaserve.bundle import sample

    records, _ = sample.generate(2_000, seed=5)
    p = RequestParser(parse_features(sample.SPEC["features"]), max_rows=10_000)
    fast = p.parse({"instances": records})
    exact = [[p._convert(f, r.get(f.name))[0] for f in p.features] for r in records]
    assert len(fast) == len(exact)
    for got, want in zip(fast.tolist(), exact, strict=True):
        assert [("nan" if isinstance(v, float) and math.isnan(v) else v) for v in got] == [
            ("nan" if isinstance(v, float) and math.isnan(v) else v) for v in want
        ]
