"""Shadow deploys, the live side: the live version mirrors a share of the requests it answered
to its log; the shadow version scores them (shadow_replay.py). Both ship in the serving layer.

The switch (`ShadowSwitch`) is an SSM parameter that `lambdaserve shadow start` writes. It is
read by a background thread, never on the request path: a request only looks at the value in
memory and, when that is older than `ttl`, wakes the thread. The read is one signed HTTPS call
(ssm_read.py), not boto3, whose import would hold the GIL against a new environment's first
requests. For a sampled share of the requests it answered (a refused request is never
mirrored), live writes a mirror record to stdout, like data capture: the request as it came
(its JSON text, not encoded again) and live's answers; a body over BODY_LIMIT goes as its
validated rows, ROWS_PER_RECORD per record. The request waits for no network call."""

from __future__ import annotations

import datetime as dt
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

from lambdaserve.serving.capture import json_rows
from lambdaserve.serving.shadow_switch import get_parameter
from lambdaserve.shared import jsonio

if TYPE_CHECKING:
    import numpy as np

    from lambdaserve.manifest import Manifest

MIRROR = "lambdaserve_mirror"  # the shadow subscription's pattern: { $.lambdaserve_mirror = 1 }
SHADOW = "lambdaserve_shadow"  # shadow records, taken to S3 by the capture subscription
ROWS_PER_RECORD = 200  # keeps a line well under CloudWatch Logs' 256 KB event limit
BODY_LIMIT = 200_000  # a body up to this size is mirrored as it came; larger ones in rows
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
        self,
        manifest: Manifest,
        matrix: np.ndarray,
        result: dict[str, Any],
        latency_ms: float,
        body: str | None = None,
    ) -> None:
        """Mirror this answered request if it is in the share (`body`: its JSON text)."""
        config = self.switch.current()
        if config is None or config.function_version == self.function_version:
            return  # no shadow, or this is the shadow itself
        if any(f.pii for f in manifest.features):
            return  # raw inputs would reach the logs: `shadow start` refuses such models
        if config.percent < 100 and self.draw() >= config.percent / 100:
            return
        if body is not None and len(body) <= BODY_LIMIT:  # the request as sent: no re-encoding
            head = _head(manifest, result, latency_ms, self.function_version, config)
            text = body.replace("\n", " ").replace("\r", " ")  # JSON whitespace: one log line
            self.write(_dumps(head)[:-1] + ',"body":' + text + "}\n")
            return
        for record in mirror_records(
            manifest, matrix, result, latency_ms, self.function_version, config
        ):
            self.write(_dumps(record) + "\n")


_dumps = jsonio.compact


def _head(
    manifest: Manifest,
    result: dict[str, Any],
    latency_ms: float,
    function_version: str,
    config: ShadowConfig,
) -> dict[str, Any]:
    """What every mirror record of a request says, its live answers included."""
    probabilities = result.get("probabilities")
    if probabilities:  # six digits, rounded in numpy: a shorter line, encoded faster
        import numpy as np

        probabilities = np.round(np.asarray(probabilities, dtype=float), 6).tolist()
    return {
        MIRROR: 1,
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "request": uuid.uuid4().hex,
        "part": 0,
        "parts": 1,
        "model": manifest.name,
        "model_version": manifest.version,
        "function_version": function_version,
        "shadow_version": config.function_version,
        "latency_ms": round(latency_ms, 3),
        "predictions": result["predictions"],
        "probabilities": probabilities,
    }


def columns_and_rows(manifest: Manifest, matrix: np.ndarray) -> tuple[list[str], list[list[Any]]]:
    """Validated rows back as the columnar request they were (`dataframe_split`): a missing
    value null, a boolean true/false. Another version validates them as its own request."""
    columns = [f.name for f in manifest.features]
    rows = json_rows(matrix)
    booleans = [i for i, f in enumerate(manifest.features) if f.type == "boolean"]
    for row in rows:
        for i in booleans:
            if row[i] is not None:
                row[i] = bool(row[i])
    return columns, rows


def mirror_records(
    manifest: Manifest,
    matrix: np.ndarray,
    result: dict[str, Any],
    latency_ms: float,
    function_version: str,
    config: ShadowConfig,
) -> Iterator[dict[str, Any]]:
    """A large request's mirror records: its validated rows, ROWS_PER_RECORD each."""
    head = _head(manifest, result, latency_ms, function_version, config)
    columns, rows = columns_and_rows(manifest, matrix)
    parts = max(1, math.ceil(len(rows) / ROWS_PER_RECORD))
    predictions, probabilities = head["predictions"], head["probabilities"]
    for part in range(parts):
        start, end = part * ROWS_PER_RECORD, (part + 1) * ROWS_PER_RECORD
        yield {
            **head,
            "part": part,
            "parts": parts,
            "columns": columns,
            "rows": rows[start:end],
            "predictions": predictions[start:end],
            "probabilities": probabilities[start:end] if probabilities else None,
        }
