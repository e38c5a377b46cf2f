"""The vectorised fast path and the exact per-value path of request validation agree: on any
batch the fast path accepts, the exact path accepts it too and builds the same matrix; and
whatever the exact path accepts, the fast path does not refuse it (it would only be slower)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from lambdaserve.manifest import Feature
from lambdaserve.problem import RequestError
from lambdaserve.serving.schema import SMALL_BATCH, RequestParser

FEATURES = (
    Feature("amount", "number", minimum=0, maximum=1000),
    Feature("count", "integer", minimum=-5),
    Feature("flag", "boolean"),
    Feature("plan", "category", categories=("free", "plus", "pro")),
    Feature("region", "category", categories=("eu", "us"), allow_unknown=True),
    Feature("score", "number", required=False),
)
PARSER = RequestParser(FEATURES, max_rows=50)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=2000),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10, max_value=2000),
    st.sampled_from(["free", "plus", "pro", "eu", "us", "mars", "", "1", "true"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
VALID = {
    "amount": st.one_of(st.integers(0, 1000), st.floats(0, 1000)),
    "count": st.integers(-5, 10**6),
    "flag": st.booleans(),
    "plan": st.sampled_from(["free", "plus", "pro"]),
    "region": st.text(max_size=4),
    "score": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
}
MISSING = object()


valid_record = st.fixed_dictionaries(
    {f.name: VALID[f.name] for f in FEATURES if f.required},
    optional={"score": VALID["score"]},
)


@st.composite
def spoiled_record(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record with one field replaced by anything, removed, or one key too many."""
    row: dict[str, Any] = draw(valid_record)
    name = draw(st.sampled_from([f.name for f in FEATURES] + ["unknown", "AMOUNT"]))
    spoiled = draw(st.one_of(anything, st.just(MISSING)))
    if spoiled is MISSING:
        row.pop(name, None)
    else:
        row[name] = spoiled
    return row


batch = st.lists(st.one_of(valid_record, valid_record, spoiled_record()), min_size=1, max_size=6)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None)
@given(batch)
def test_the_fast_path_and_the_exact_path_agree(records: list[dict[str, Any]]) -> None:
    fast = PARSER._valid_batch(records)
    event("fast path accepted" if fast is not None else "fast path refused")
    try:
        exact: np.ndarray | None = PARSER.exact(records)
    except RequestError:
        exact = None
    if fast is None:
        assert exact is None, "the fast path refused a batch the exact path accepts"
        return
    assert exact is not None, "the fast path accepted a batch the exact path refuses"
    assert fast.shape == exact.shape
    for got, want in zip(fast.ravel(), exact.ravel(), strict=True):
        assert _same(got, want), (got, want)


def test_an_int_a_float_cannot_hold_is_refused_by_both_paths() -> None:
    # Found by the property test: the fast path turned 2**53 + 1 into 2**53 and served it.
    row = {"amount": 1, "count": 2**53 + 1, "flag": True, "plan": "pro", "region": "eu"}
    assert PARSER._valid_batch([row]) is None
    with pytest.raises(RequestError):
        PARSER.exact([row])
    big_float = {**row, "count": 1, "score": 2.0**60}  # a float is what it is
    assert PARSER._valid_batch([big_float]) is not None


# Batch scoring's CSV fast path (`text_columns`) against the exact path it stands in for:
# each field read as a request's JSON value (`from_text`), then the exact per-value checks.
TEXT = st.one_of(
    st.sampled_from(["", "0", "3", "-5", "7.5", "1e3", "1e999", "-0", "nan", "NaN", "inf"]),
    st.sampled_from(["-inf", "Infinity", " 4", "1_000", "0x10", "9007199254740993", "abc"]),
    st.sampled_from(["true", "false", "True", "1", "free", "plus", "pro", "eu", "us", "mars"]),
    st.integers(-10, 2000).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=3),
)


@st.composite
def text_batch(draw: st.DrawFn) -> tuple[dict[str, list[str]], int]:
    rows = draw(st.integers(1, 5))
    names = draw(st.sets(st.sampled_from([f.name for f in FEATURES])))
    return {n: draw(st.lists(TEXT, min_size=rows, max_size=rows)) for n in names}, rows


@settings(max_examples=600, deadline=None)
@given(text_batch())
def test_the_csv_fast_path_accepts_only_what_the_exact_path_accepts_and_agrees(
    batch: tuple[dict[str, list[str]], int],
) -> None:
    from lambdaserve.serving.schema import from_text

    columns, rows = batch
    features = {f.name: f for f in FEATURES}
    fast = PARSER.text_columns(columns, rows)
    event("fast path accepted" if fast is not None else "fast path refused")
    records = [
        {n: from_text(features[n], col[i]) for n, col in columns.items()} for i in range(rows)
    ]
    try:
        exact: np.ndarray | None = PARSER.exact(records)
    except RequestError:
        exact = None
    if fast is None:
        event("exact accepts what the fast path left to it" if exact is not None else "both refuse")
        return
    assert exact is not None, "the CSV fast path accepted text the exact path refuses"
    for got, want in zip(fast.ravel(), exact.ravel(), strict=True):
        assert _same(got, want), (got, want)


def _parse(body: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "ok", PARSER.parse(body)
    except RequestError as exc:
        return type(exc).__name__, exc.problem()


@st.composite
def any_size_batch(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Valid rows, none to two of them spoiled; large enough for the vectorised paths too
    (small batches take the exact path directly)."""
    records = draw(st.lists(valid_record, min_size=1, max_size=SMALL_BATCH + 4))
    for _ in range(draw(st.integers(0, 2))):
        records[draw(st.integers(0, len(records) - 1))] = draw(spoiled_record())
    return records


@settings(max_examples=400, deadline=None)
@given(any_size_batch())
def test_a_columnar_body_is_answered_as_the_same_rows_in_records_are(
    records: list[dict[str, Any]],
) -> None:
    # The columnar fast path turns rows into columns without a dict per row; whatever it
    # accepts or refuses, the records of the same rows get the same matrix or the same problem.
    columns = sorted({name for record in records for name in record})
    split = {"columns": columns, "data": [[r.get(c) for c in columns] for r in records]}
    as_records = [{c: r.get(c) for c in columns} for r in records]  # absent = null, as in split
    got, want = _parse({"dataframe_split": split}), _parse({"instances": as_records})
    event(f"{'vectorised' if len(records) > SMALL_BATCH else 'small, exact'}: {got[0]}")
    assert got[0] == want[0]
    if got[0] != "ok":
        assert got[1] == want[1]
        return
    for a, b in zip(got[1].ravel(), want[1].ravel(), strict=True):
        assert _same(a, b), (a, b)
