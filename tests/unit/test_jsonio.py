"""The fast JSON codec answers as the standard library does: `loads` reads every text exactly
as `strict_loads` (json.loads refusing duplicate keys) reads it, or raises what it raises;
`dumps` writes what parses back to the same answer."""

from __future__ import annotations

import decimal
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lambdaserve.shared import jsonio

FEATURES = ["recency_days", "monetary_90d", "device", "a:b", "{x}"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: orjson would read those as floats
    st.integers(min_value=2**53 - 3, max_value=2**64 + 3),
    st.floats(),  # NaN and Infinity written as the literals json.dumps writes
    st.floats(min_value=-1e6, max_value=1e6),
    st.text(max_size=6),  # quotes, colons, braces, surrogates, control characters
    st.sampled_from(["mobile", "web", ":", "{", "}", '"', "\\", "\ud800", "\x00", "é"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(FEATURES), inner, max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0) and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _read(reader: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", reader(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and DuplicateKeyError
        return type(exc).__name__, str(exc)


def _assert_read_alike(text: str) -> str:
    fast, strict = _read(jsonio.loads, text), _read(jsonio.strict_loads, text)
    assert fast[0] == strict[0], (text, fast, strict)
    if fast[0] == "ok":
        assert _same(fast[1], strict[1]), (text, fast[1], strict[1])
    else:
        assert fast[1] == strict[1]
    return str(strict[0])


@st.composite
def texts(draw: st.DrawFn) -> str:
    """JSON texts as clients write them, then spoiled: a key written twice in some object,
    a character cut, whitespace and NaN literals, a request's shapes."""
    doc = draw(documents)
    if draw(st.booleans()):
        doc = {"instances": draw(st.lists(st.dictionaries(st.sampled_from(FEATURES), scalars)))}
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    spoil = draw(st.sampled_from(["none", "duplicate", "cut", "space"]))
    if spoil == "duplicate" and "{" in text:
        key = draw(st.sampled_from(FEATURES))
        text = text.replace("{", f'{{"{key}": 1, "{key}": 2, ', 1).replace(", }", "}")
    elif spoil == "cut" and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + text[at + 1 :]
    elif spoil == "space":
        text = f"\t\r\n {text} \n"
    return text


@settings(max_examples=1500, deadline=None)
@given(texts())
def test_loads_reads_every_text_as_the_strict_reader_does(text: str) -> None:
    event(f"strict reader: {_assert_read_alike(text)}")


@pytest.mark.parametrize(
    "text",
    [
        '{"instances": [{"a": 1, "a": 2}]}',  # a duplicate in a row
        '{"a": {"b": 1, "b": 1}}',  # in a nested object
        '{"a": [{"b": {"c": 1, "c": 2}}]}',  # deeper than a request goes
        '{"a": {"x": 1}, "a": 2}',  # the duplicate's first value an object
        '{"instances": [{"device": "a:b"}], "instances": []}',  # a colon in a string, too
        '{"instances": [{"recency_days": 18446744073709551616}]}',  # beyond 64 bits
        '{"instances": [{"recency_days": -9223372036854775809}]}',
        '{"instances": [{"recency_days": 9007199254740993}]}',  # beyond 2**53, within 64 bits
        '{"instances": [{"monetary_90d": NaN, "x": -Infinity}]}',
        '{"instances": [{"monetary_90d": 1e400}]}',
        '{"instances": [{"device": "\\ud800"}]}',  # a lone surrogate, escaped
        '\ufeff{"instances": []}',
        "[" * 2000 + "]" * 2000,
        '{"instances": [{"device": "{:}"}]}',
    ],
)
def test_loads_reads_the_texts_orjson_reads_otherwise_as_the_strict_reader_does(
    text: str,
) -> None:
    _assert_read_alike(text)


def test_a_duplicate_key_is_refused_wherever_it_is() -> None:
    for text in ('{"instances": [{"a": 1, "a": 2}]}', '{"a": {"b": {"c": 1, "c": 1}}}'):
        with pytest.raises(jsonio.DuplicateKeyError, match="duplicate key"):
            jsonio.loads(text)


def test_an_integer_beyond_64_bits_stays_an_exact_integer() -> None:
    doc = jsonio.loads('{"instances": [{"n": 18446744073709551617}]}')
    assert doc["instances"][0]["n"] == 2**64 + 1


finite = st.floats(allow_nan=False, allow_infinity=False)
answers = st.fixed_dictionaries(
    {
        "predictions": st.lists(st.one_of(st.text(), st.integers(-(2**63), 2**63), st.booleans())),
        "probabilities": st.lists(st.lists(finite, max_size=3)),
        "model": st.fixed_dictionaries({"name": st.text(), "version": st.none() | st.text()}),
    }
)


def _standard(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(answers)
def test_dumps_writes_what_reads_back_as_the_standard_librarys_answer(answer: Any) -> None:
    written = jsonio.dumps(answer, _standard)
    assert _same(json.loads(written), json.loads(_standard(answer)))


def test_dumps_leaves_what_orjson_does_not_write_to_the_fallback() -> None:
    assert jsonio.dumps({"n": 2**70}, _standard) == '{"n":1180591620717411303424}'
    assert jsonio.dumps({"d": decimal.Decimal("1.5")}, lambda o: "fallback") == "fallback"
    nowhere = {"x": math.nan, "y": math.inf}  # not JSON numbers
    assert json.loads(jsonio.dumps(nowhere, _standard)) == {"x": None, "y": None}


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.integers(1, 4)),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_number_rows_reads_back_as_the_same_doubles(matrix: np.ndarray) -> None:
    rows = jsonio.number_rows(matrix)
    assert [[float(v) for v in row.split(",")] for row in rows] == matrix.tolist()


def test_number_rows_writes_what_json_has_no_number_for_as_str_does() -> None:
    matrix = np.array([[math.nan, 0.5], [math.inf, -math.inf]])
    assert jsonio.number_rows(matrix) == ["nan,0.5", "inf,-inf"]
    assert jsonio.number_rows(np.array([[0.25], [1e-05]])) in (
        ["0.25", "0.00001"],
        ["0.25", "1e-05"],
    )


def test_compact_lines_read_back_as_the_standard_librarys() -> None:
    record = {"rows": [[1.5, None, "é", True]], "p": [[0.25, 1e-07]], "n": 2**70, "s": "\ud800"}
    line = jsonio.compact(record)  # orjson refuses the surrogate and the big integer
    assert line == json.dumps(record, separators=(",", ":"), allow_nan=False)
    del record["n"], record["s"]
    line = jsonio.compact(record)
    assert "\n" not in line
    assert json.loads(line) == record
    assert jsonio.compact({"x": float("nan")}) == '{"x":null}'  # JSON has no NaN
