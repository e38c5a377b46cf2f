"""Capture lines, now written by orjson with NaN found in one comparison, read back as the
standard library's lines did: the same rows (missing as null, PII erased), the same
probabilities to 6 decimals, and a line orjson cannot write written by json.dumps."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdaserve.manifest import Manifest
from lambdaserve.serving import capture
from lambdaserve.serving.capture import MASK, DataCapture, json_rows

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=False),
    st.sampled_from(["mobile", "web", "é", "\ud800", "", "a\nb"]),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
)


def _old_rows(matrix: np.ndarray) -> list[list[Any]]:
    """json_rows before: a loop over every value."""
    rows: list[list[Any]] = matrix.tolist()
    for row in rows:
        for i, value in enumerate(row):
            if isinstance(value, float) and math.isnan(value):
                row[i] = None
    return rows


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(values, min_size=3, max_size=3), max_size=12))
def test_json_rows_nulls_exactly_the_nans_of_an_object_matrix(rows: list[list[Any]]) -> None:
    matrix = np.empty((len(rows), 3), dtype=object)
    for i, row in enumerate(rows):
        matrix[i, :] = row
    assert json_rows(matrix) == _old_rows(matrix)


@given(st.lists(st.floats(width=64), min_size=0, max_size=30))
def test_json_rows_of_a_float_matrix(numbers: list[float]) -> None:
    matrix = np.array(numbers[: len(numbers) // 3 * 3], dtype=float).reshape(-1, 3)
    assert json_rows(matrix) == _old_rows(matrix)


near_half = st.integers(0, 10**6).map(lambda k: (k + 0.5) / 1e6)  # ties, as near as doubles get
probability = st.one_of(st.floats(min_value=0, max_value=1), near_half, st.sampled_from([0.0, 1.0]))


@settings(max_examples=500)
@given(st.lists(st.lists(probability, min_size=3, max_size=3), max_size=20))
def test_probabilities_round_as_round_does(probabilities: list[list[float]]) -> None:
    assert capture._rounded(probabilities) == [[round(p, 6) for p in r] for r in probabilities]


def test_every_near_tie_rounds_as_round_does() -> None:
    ties = [
        [(k + 0.5) / 1e6, math.nextafter((k + 0.5) / 1e6, 1), math.nextafter((k + 0.5) / 1e6, 0)]
        for k in range(0, 10**6, 7)
    ]
    assert capture._rounded(ties) == [[round(p, 6) for p in r] for r in ties]


def test_what_is_not_a_probability_matrix_rounds_one_by_one() -> None:
    odd: list[list[list[float]]] = [[[float("nan"), 0.5]], [[1e12, 0.25]], [], [[]]]
    for probabilities in odd:
        want = [[round(p, 6) for p in r] for r in probabilities]
        assert repr(capture._rounded(probabilities)) == repr(want)  # NaN is not == NaN


@pytest.fixture
def manifest(sample_bundle_session: Path) -> Manifest:
    raw = json.loads((sample_bundle_session / "manifest.json").read_text())
    raw["features"][1]["pii"] = True
    return Manifest.from_dict(raw)


def test_lines_read_back_as_json_dumps_wrote_them(manifest: Manifest) -> None:
    names = [f.name for f in manifest.features]
    rows = 450  # three records: 200, 200 and 50 rows
    matrix = np.empty((rows, len(names)), dtype=object)
    for j in range(len(names)):
        matrix[:, j] = [
            [1.5, float("nan"), "é", "\ud800", 7, None][(i + j) % 6] for i in range(rows)
        ]
    probabilities = [[i / 3e3 + 1e-7, 1 - i / 3e3] for i in range(rows)]
    result = {"predictions": [i % 2 for i in range(rows)], "probabilities": probabilities}
    lines: list[str] = []
    DataCapture(manifest, 1.0, write=lines.append).record(matrix, result)
    assert len(lines) == 3
    assert all(line.endswith("\n") for line in lines)
    read = [json.loads(line) for line in lines]
    old = _old_rows(matrix)
    for row in old:
        row[1] = MASK
    assert [r for record in read for r in record["rows"]] == old
    assert [p for record in read for p in record["probabilities"]] == [
        [round(p, 6) for p in r] for r in probabilities
    ]
    assert "\\ud800" in lines[0]  # a lone surrogate: orjson refuses it, json.dumps escapes it
    assert all(r["features"] == names and r[capture.MARKER] == capture.SCHEMA for r in read)
