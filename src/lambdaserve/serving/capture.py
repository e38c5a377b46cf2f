"""Data capture: a sample of the predictions, inputs and outputs, as one compact JSON line per
request on stdout. Lambda sends stdout to CloudWatch Logs; a subscription filter takes these
lines through Firehose to S3 (capture/model=<name>/version=<v>/<hour>/), where the monitor reads
them. The predict role needs no S3 access and the request waits for no network call.

`capture_records` reads them back from whichever shape Firehose wrote them in.

Features marked `pii` in the manifest are erased ("*****", as Powertools' data masking erases)
before anything is written. Whatever the log level, capture is written: it is data, not a log."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import random
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lambdaserve.shared import jsonio

if TYPE_CHECKING:
    import numpy as np

    from lambdaserve.manifest import Manifest

MARKER = "lambdaserve_capture"  # the subscription filter's pattern: { $.lambdaserve_capture = 1 }
SCHEMA = 1
MASK = "*****"
ROWS_PER_RECORD = 200  # keeps a line well under CloudWatch Logs' 256 KB event limit


class DataCapture:
    """Writes capture records for a sampled share of predict requests."""

    def __init__(
        self,
        manifest: Manifest,
        rate: float,
        write: Callable[[str], Any] | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.manifest = manifest
        self.rate = rate
        self.write = write or (lambda line: sys.stdout.write(line))
        self.draw = draw
        self.names = [f.name for f in manifest.features]
        self.pii = [i for i, f in enumerate(manifest.features) if f.pii]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")

    def sampled(self) -> bool:
        return self.rate >= 1 or (self.rate > 0 and self.draw() < self.rate)

    def record(self, matrix: np.ndarray, result: dict[str, Any]) -> None:
        """Write this request's rows (feature order, missing as null, PII erased) and answers,
        if the request is in the sample."""
        if not self.sampled():
            return
        for record in self.records(matrix, result):
            self.write(jsonio.compact(record) + "\n")

    def records(self, matrix: np.ndarray, result: dict[str, Any]) -> Iterator[dict[str, Any]]:
        rows = json_rows(matrix)
        for row in rows:
            for i in self.pii:
                row[i] = MASK
        time = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        probabilities = result.get("probabilities")
        rounded = _rounded(probabilities) if probabilities is not None else []
        for start in range(0, len(rows), ROWS_PER_RECORD):
            end = start + ROWS_PER_RECORD
            record: dict[str, Any] = {
                MARKER: SCHEMA,
                "time": time,
                "model": self.manifest.name,
                "model_version": self.manifest.version,
                "function_version": self.function_version,
                "features": self.names,
                "rows": rows[start:end],
                "predictions": result["predictions"][start:end],
            }
            if probabilities is not None:
                record["probabilities"] = rounded[start:end]
            yield record


def json_rows(matrix: np.ndarray) -> list[list[Any]]:
    """A validated matrix's rows as JSON values: the parser's missing value (NaN) as null.
    NaN is the one value that differs from itself: one comparison over the whole matrix finds
    them all, in C even for an object matrix."""
    rows: list[list[Any]] = matrix.tolist()
    for i, j in zip(*(matrix != matrix).nonzero(), strict=True):
        rows[i][j] = None
    return rows


def _rounded(probabilities: list[list[float]]) -> list[list[float]]:
    """Probabilities to 6 decimals, exactly as `round(p, 6)` gives them, in C: numpy's
    rint(p * 1e6) / 1e6 differs from it only where p * 1e6 lies within a rounding error of a
    half, and those few values are rounded by `round` itself."""
    import numpy as np

    array = np.asarray(probabilities, dtype=float)
    if array.ndim != 2 or not array.size or not (np.abs(array) <= 1e6).all():  # NaN too
        return [[round(p, 6) for p in row] for row in probabilities]
    scaled = array * 1e6
    rows: list[list[float]] = (np.rint(scaled) / 1e6).tolist()
    for i, j in zip(*(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-3).nonzero(), strict=True):
        rows[i][j] = round(probabilities[i][j], 6)
    return rows


def capture_records(body: bytes, marker: str = MARKER) -> Iterator[dict[str, Any]]:
    """The capture records in one S3 object, whichever shape Firehose wrote it in (`marker`:
    the records of that kind, a shadow's, say)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)  # concatenated gzip members decompress as one
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return
        try:
            item, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError:  # not ours: skip to the next line
            newline = text.find("\n", index)
            if newline < 0:
                return
            index = newline + 1
            continue
        if isinstance(item, dict) and "logEvents" in item:
            for event in item["logEvents"]:
                yield from records_in_message(str(event.get("message", "")), marker)
        elif isinstance(item, dict) and item.get(marker) == 1:
            yield item


def records_in_message(message: str, marker: str = MARKER) -> Iterator[dict[str, Any]]:
    """The record of this kind a log event's message holds, if it holds one."""
    start = message.find("{")
    if start < 0 or marker not in message:
        return  # the function's other log lines share the log group
    try:
        item = json.loads(message[start:])
    except json.JSONDecodeError:
        return
    if isinstance(item, dict) and item.get(marker) == 1:
        yield item
