"""The request and response JSON codec: orjson where the runtime layer has it (a 1,000-row
body reads in about a third of the standard library's time and an answer writes in a
fifteenth), the standard library otherwise — with the standard library's answers either way.

orjson reads some texts otherwise than `json.loads` does: NaN and Infinity literals, numbers
beyond a double, lone surrogates (refused); integers of 20 digits or more (read as floats);
duplicate keys (the last one wins, where we refuse the body). Such a text, and any text we
cannot prove free of them, is read again by the standard library, strictly: the fast reader
changes how long a request takes, never what it is answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # a runtime without it (or a dev venv) reads with the standard library
    orjson = None  # type: ignore[assignment]

# A text with no run of 19 digits has no integer literal beyond 64 bits: orjson reads every
# integer in it exactly. (Bytes other than digits become spaces, so one search finds a run.)
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_INTEGER = b"0" * 19


class DuplicateKeyError(ValueError):
    """An object names a key twice: which value the client meant is ambiguous."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key[:64]!r} in the JSON body")
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise DuplicateKeyError(duplicate)
    return out


def strict_loads(text: str) -> Any:
    """`json.loads` refusing duplicate keys (DuplicateKeyError): the reference reader."""
    return json.loads(text, object_pairs_hook=_refuse_duplicate_keys)


def _objects_and_keys(doc: Any) -> tuple[int, int]:
    """Objects and their keys where a request has them: the body, an object in it
    (dataframe_split) and the objects of a list in it (instances). Any other object goes
    uncounted, so the text's braces outnumber the count and the strict reader decides."""
    if type(doc) is not dict:
        return 0, 0
    objects, keys = 1, len(doc)
    for value in doc.values():
        if type(value) is dict:
            objects, keys = objects + 1, keys + len(value)
        elif type(value) is list:
            rows = [row for row in value if type(row) is dict]
            objects, keys = objects + len(rows), keys + sum(map(len, rows))
    return objects, keys


def _read_as_strict(doc: Any, raw: bytes) -> bool:
    """Whether orjson's reading of `raw` is provably the strict reader's.

    Every object has one `{` and every key one `:` outside strings. So when the text holds
    exactly as many `{` as there are objects counted, and as many `:` as keys counted, no
    object was missed, no string holds either character and no key was written twice
    (orjson keeps one of them, and the text would have a `:` more)."""
    if _LONG_INTEGER in raw.translate(_DIGITS):
        return False
    objects, keys = _objects_and_keys(doc)
    return raw.count(b"{") == objects and raw.count(b":") == keys


def loads(text: str, raw: bytes | None = None) -> Any:
    """The JSON text read exactly as `strict_loads` reads it, with orjson when it can prove
    the answer is the same. `raw`: the text as UTF-8 (surrogatepass), if the caller has it.
    Raises what `strict_loads` raises: JSONDecodeError, RecursionError, DuplicateKeyError."""
    if orjson is not None:
        data = text.encode("utf-8", "surrogatepass") if raw is None else raw
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the strict reader says why (or reads NaN and Infinity, as it always has)
        else:
            if _read_as_strict(doc, data):
                return doc
    return strict_loads(text)


def dumps(obj: Any, fallback: Callable[[Any], str]) -> str:
    """Compact JSON for an answer: orjson, or `fallback` for what orjson does not write
    (Decimal, integers beyond 64 bits, keys that are not strings). NaN and infinities are
    written as null: JSON has no such numbers (json.dumps writes NaN, which clients refuse)."""
    if orjson is not None:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        except TypeError:
            pass
    return fallback(obj)


def compact(obj: Any) -> str:
    """One compact JSON line (a capture or mirror record): orjson's, or the standard library's
    compact form for what orjson does not write (a lone surrogate, an integer beyond 64 bits)."""
    return dumps(obj, _compact_stdlib)


def _compact_stdlib(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def number_rows(matrix: Any) -> list[str]:
    """Each row of a 2-D float64 array as its numbers joined by commas, each the shortest text
    that reads back as the same double, as `str` writes it but at C speed (orjson writes a
    5,000-row probability matrix in a fifth of `str`'s time). An exponent may be written
    otherwise (1e-5 for 1e-05); the value never is."""
    if orjson is not None and matrix.dtype.str == "<f8" and matrix.size:
        try:
            text = orjson.dumps(matrix, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        except TypeError:  # an array orjson does not write (not contiguous): as below
            pass
        else:
            if "null" not in text:  # a NaN or an infinity, which str writes as nan and inf
                return text[2:-2].split("],[")
    return [",".join(map(str, row)) for row in matrix.tolist()]
