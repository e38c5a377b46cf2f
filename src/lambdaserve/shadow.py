"""Shadow deploys at serving time: the live version mirrors a share of the requests it answered,
and the shadow version scores them. Both halves ship in the serving layer.

Live side: the switch (`ShadowSwitch`) is an SSM parameter that `lambdaserve shadow start`
writes. It is read by a background thread, never on the request path: a request only looks at
the value in memory and, when that is older than `ttl`, wakes the thread. The read is one
signed HTTPS call (ssm_read.py), not boto3, whose import would hold the GIL against a new
environment's first requests. For a sampled
share of the requests it answered (a refused request is never mirrored), the live version
writes mirror records to stdout, like data capture: the request waits for no network call.

Shadow side: a subscription filter on the predict log group (`{ $.lambdaserve_mirror = 1 }`)
hands CloudWatch Logs batches to the shadow function version, whose handler scores each mirror
record's rows and writes one shadow record with both versions' answers (marker
`lambdaserve_shadow`), which the capture path takes to S3 beside capture records. Shadow
requests never reach a client, and the shadow writes no business metrics and no capture."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging
import math
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdaserve.capture import records_in_message
from lambdaserve.problem import RequestError
from lambdaserve.ssm_read import get_parameter

if TYPE_CHECKING:
    import numpy as np

    from lambdaserve.manifest import Manifest
    from lambdaserve.serving import Predictor

MIRROR = "lambdaserve_mirror"  # the shadow subscription's pattern: { $.lambdaserve_mirror = 1 }
SHADOW = "lambdaserve_shadow"  # shadow records, taken to S3 by the capture subscription
ROWS_PER_RECORD = 200  # keeps a line well under CloudWatch Logs' 256 KB event limit
FILTER_NAME = "lambdaserve-shadow"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowConfig:
    """What the SSM parameter says: which function version shadows, on what share."""

    function_version: str
    percent: float
    model: str = ""
    model_version: str = ""

    @classmethod
    def parse(cls, value: str | None) -> ShadowConfig | None:
        """The running shadow in the parameter's JSON, or None (stopped, absent, unreadable)."""
        try:
            data = json.loads(value or "")
            percent = float(data.get("percent", 0))
            if data.get("state") != "running" or not 0 < percent <= 100:
                return None
            return cls(
                str(data["function_version"]),
                percent,
                str(data.get("model", "")),
                str(data.get("model_version", "")),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


class ShadowSwitch:
    """The shadow configuration in memory, refreshed off the request path."""

    def __init__(
        self,
        parameter: str,
        fetch: Callable[[str], str | None] = get_parameter,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.parameter, self.fetch, self.ttl, self.clock = parameter, fetch, ttl, clock
        self.config: ShadowConfig | None = None
        self._due = -math.inf
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> ShadowConfig | None:
        """The last value read; a stale one wakes the reader, and nothing here waits for it."""
        now = self.clock()
        if now >= self._due:
            self._due = now + self.ttl
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shadow switch", daemon=True)
                self._thread.start()
            self._wake.set()
        return self.config

    def refresh(self) -> None:
        """Read the parameter now; any failure means no shadow (mirroring is never required)."""
        try:
            self.config = ShadowConfig.parse(self.fetch(self.parameter))
        except Exception as exc:
            self.config = None
            log.warning("shadow switch unreadable: %s", exc)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            self.refresh()


class Mirror:
    """The live side: mirror records for the configured share of answered requests."""

    def __init__(
        self,
        switch: ShadowSwitch,
        write: Callable[[str], Any] | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.switch, self.draw = switch, draw
        self.write = write or (lambda line: sys.stdout.write(line))
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")

    def __call__(
        self, manifest: Manifest, matrix: np.ndarray, result: dict[str, Any], latency_ms: float
    ) -> None:
        config = self.switch.current()
        if config is None or config.function_version == self.function_version:
            return  # no shadow, or this is the shadow itself
        if any(f.pii for f in manifest.features):
            return  # raw inputs would reach the logs: `shadow start` refuses such models
        if config.percent < 100 and self.draw() >= config.percent / 100:
            return
        for record in mirror_records(
            manifest, matrix, result, latency_ms, self.function_version, config
        ):
            self.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")


def columns_and_rows(manifest: Manifest, matrix: np.ndarray) -> tuple[list[str], list[list[Any]]]:
    """Validated rows back as the columnar request they were (`dataframe_split`): a missing
    value null, a boolean true/false. Another version validates them as its own request."""
    columns = [f.name for f in manifest.features]
    rows = matrix.tolist()
    booleans = [i for i, f in enumerate(manifest.features) if f.type == "boolean"]
    for row in rows:
        for i, value in enumerate(row):
            if value != value:  # NaN, the parser's missing value
                row[i] = None
        for i in booleans:
            if row[i] is not None:
                row[i] = bool(row[i])
    return columns, rows


def _rounded(probabilities: list[list[float]] | None) -> list[list[float]] | None:
    return None if probabilities is None else [[round(p, 6) for p in r] for r in probabilities]


def mirror_records(
    manifest: Manifest,
    matrix: np.ndarray,
    result: dict[str, Any],
    latency_ms: float,
    function_version: str,
    config: ShadowConfig,
) -> Iterator[dict[str, Any]]:
    """One request's mirror records, ROWS_PER_RECORD rows each."""
    columns, rows = columns_and_rows(manifest, matrix)
    request, parts = uuid.uuid4().hex, max(1, math.ceil(len(rows) / ROWS_PER_RECORD))
    time_ = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    probabilities = result.get("probabilities")
    if probabilities:  # six digits, rounded in numpy: a shorter line, encoded faster
        import numpy as np

        probabilities = np.round(np.asarray(probabilities, dtype=float), 6).tolist()
    for part in range(parts):
        start, end = part * ROWS_PER_RECORD, (part + 1) * ROWS_PER_RECORD
        yield {
            MIRROR: 1,
            "time": time_,
            "request": request,
            "part": part,
            "parts": parts,
            "model": manifest.name,
            "model_version": manifest.version,
            "function_version": function_version,
            "shadow_version": config.function_version,
            "latency_ms": round(latency_ms, 3),
            "columns": columns,
            "rows": rows[start:end],
            "predictions": result["predictions"][start:end],
            "probabilities": probabilities[start:end] if probabilities else None,  # 6 digits
        }


def mirrored(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The mirror records in a CloudWatch Logs subscription event (other lines skipped)."""
    try:
        data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
        events = list(data["logEvents"])
    except (ValueError, TypeError, KeyError, OSError, EOFError):
        log.warning("not a CloudWatch Logs subscription event: nothing to score")
        return
    for item in events:
        if not isinstance(item, dict):
            continue
        yield from records_in_message(str(item.get("message", "")), MIRROR)


def replay(predictor: Predictor, record: dict[str, Any], function_version: str) -> dict[str, Any]:
    """The shadow record of one mirror record: the rows scored by this version, as a request
    of its own, beside what the live version answered."""
    shadow: dict[str, Any]
    started = time.perf_counter()
    try:
        request = {"dataframe_split": {"columns": record["columns"], "data": record["rows"]}}
        matrix = predictor.parse(request)
        started = time.perf_counter()  # predict alone, as the live side measures it
        result = predictor.predict(matrix)
        shadow = {
            "predictions": result["predictions"],
            "probabilities": _rounded(result.get("probabilities")),
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
    except RequestError as exc:  # this version refuses what live answered: a finding
        shadow = {"refused": {"status": exc.status, "detail": exc.detail}}
    manifest = predictor.manifest
    return {
        SHADOW: 1,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "mirrored_at": record.get("time"),
        "request": record.get("request"),
        "part": record.get("part", 0),
        "parts": record.get("parts", 1),
        "model": manifest.name,
        "model_version": manifest.version,
        "function_version": function_version,
        "rows": len(record["rows"]),
        "live": {
            "model_version": record.get("model_version"),
            "function_version": record.get("function_version"),
            "predictions": record.get("predictions"),
            "probabilities": _rounded(record.get("probabilities")),
            "latency_ms": record.get("latency_ms"),
        },
        "shadow": shadow,
    }


def score_mirrored(
    predictor: Predictor,
    event: dict[str, Any],
    function_version: str,
    write: Callable[[str], Any] | None = None,
) -> dict[str, int]:
    """The shadow version's side of a subscription batch: each mirror record meant for this
    version scored and written as a shadow record. Counts for the invocation's result."""
    write = write or (lambda line: sys.stdout.write(line))
    counts = {"records": 0, "rows": 0, "skipped": 0}
    for record in mirrored(event):
        if str(record.get("shadow_version")) != function_version:
            counts["skipped"] += 1  # meant for another version (a subscription left behind)
            continue
        out = replay(predictor, record, function_version)
        write(json.dumps(out, separators=(",", ":"), allow_nan=False) + "\n")
        counts["records"] += 1
        counts["rows"] += out["rows"]
    return counts
