"""Shadow deploys, the shadow's side: a CloudWatch Logs subscription hands the shadow version
the mirror records live wrote (shadow.py); each is scored as a request of this version's own and
written as one shadow record with both versions' answers (marker `lambdaserve_shadow`), which
the capture subscription takes to S3 beside capture records. No client waits for it, and it
writes no business metric and no capture."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lambdaserve.problem import RequestError
from lambdaserve.serving.capture import records_in_message
from lambdaserve.serving.mirror import MIRROR, SHADOW

if TYPE_CHECKING:
    from lambdaserve.serving.predictor import Predictor

log = logging.getLogger(__name__)


def _rounded(probabilities: list[list[float]] | None) -> list[list[float]] | None:
    return None if probabilities is None else [[round(p, 6) for p in r] for r in probabilities]


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


def _request(record: dict[str, Any]) -> Any:
    """The request a mirror record holds: as live received it, or its validated rows."""
    if "body" in record:
        return record["body"]
    return {"dataframe_split": {"columns": record.get("columns"), "data": record.get("rows")}}


def replay(predictor: Predictor, record: dict[str, Any], function_version: str) -> dict[str, Any]:
    """The shadow record of one mirror record: the rows scored by this version, as a request
    of its own, beside what the live version answered."""
    shadow: dict[str, Any]
    started = time.perf_counter()
    try:
        matrix = predictor.parse(_request(record))
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
        "rows": len(record.get("predictions") or ()),
        "live": {
            "model_version": record.get("model_version"),
            "function_version": record.get("function_version"),
            "predictions": record.get("predictions"),
            "probabilities": record.get("probabilities"),  # rounded by live already
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
