"""A time window of captured rows, read from the capture bucket: the window's bounds, the
objects that may hold its records, and the rows grouped per model version or function version.

Capture objects come in the two shapes Firehose writes: gzip'd CloudWatch Logs envelopes
(`{"logEvents": [...]}`, concatenated; Firehose without processing, and the local stack) or
the extracted messages, one per line (Firehose with CloudWatch Logs decompression and message
extraction, as template.yaml configures it)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lambdaserve.monitor import drift
from lambdaserve.serving.capture import MARKER, capture_records

CAPTURE_PREFIX = "capture/"
_WINDOW = re.compile(r"^(\d+)\s*([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
# S3 keeps LastModified to the second, and clocks differ a little: an object written in the
# window's first second must not be skipped. Records are filtered by their own time anyway.
LAST_MODIFIED_SLACK = dt.timedelta(minutes=5)


class MonitorError(ValueError):
    """A window, a model or a report the monitor cannot use."""


def parse_window(
    window: str | None, since: str | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) from `--window 1h` (minutes, hours, days) or `--since ISO`; an hour if
    neither is given."""
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            raise MonitorError(f"--since {since!r} is not an ISO 8601 time") from None
        start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    else:
        match = _WINDOW.match((window or "1h").strip())
        if not match or int(match.group(1)) == 0:
            raise MonitorError(f"window {window!r} is not like 30m, 1h or 7d")
        start = now - dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if start >= now:
        raise MonitorError(f"the window starts at {start.isoformat()}, not before now")
    return start, now


@dataclass
class CaptureReader:
    """Reads the capture records of a window from the capture bucket."""

    s3: Any
    bucket: str
    prefix: str = CAPTURE_PREFIX
    marker: str = (
        MARKER  # capture records; shadow records (lambdaserve.serving.mirror) lie beside them
    )

    def windows(
        self,
        start: dt.datetime,
        end: dt.datetime,
        model: str | None = None,
        version: str | None = None,
    ) -> dict[tuple[str, str], drift.Window]:
        """Rows per (model, version) captured in [start, end)."""
        records = self.records(start, end, model, version)
        return _grouped(records, lambda r: (str(r["model"]), str(r["model_version"])))

    def function_windows(self, start: dt.datetime, end: dt.datetime) -> dict[str, drift.Window]:
        """Rows per function version captured in [start, end): a canary's two versions."""
        return _grouped(self.records(start, end), lambda r: str(r.get("function_version")))

    def records(
        self,
        start: dt.datetime,
        end: dt.datetime,
        model: str | None = None,
        version: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        for key in self._keys(start, model, version):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            for record in capture_records(body, self.marker):
                if self._wanted(record, start, end, model, version):
                    yield record

    def _keys(self, start: dt.datetime, model: str | None, version: str | None) -> Iterator[str]:
        """Objects that may hold records of the window: written at or after its start (Firehose
        writes a record after it happened), and in the model's partition where keys have one."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if item["LastModified"] < start - LAST_MODIFIED_SLACK:
                    continue
                if model and "model=" in key and f"model={model}/" not in key:
                    continue
                if version and "version=" in key and f"version={version}/" not in key:
                    continue
                yield key

    @staticmethod
    def _wanted(
        record: dict[str, Any],
        start: dt.datetime,
        end: dt.datetime,
        model: str | None,
        version: str | None,
    ) -> bool:
        try:
            when = dt.datetime.fromisoformat(str(record["time"]))
        except (KeyError, ValueError):
            return False
        return (
            start <= when < end
            and (model is None or record.get("model") == model)
            and (version is None or str(record.get("model_version")) == str(version))
        )


def _grouped[K](
    records: Iterator[dict[str, Any]], key: Callable[[dict[str, Any]], K]
) -> dict[K, drift.Window]:
    out: dict[K, drift.Window] = {}
    for record in records:
        add_record(out.setdefault(key(record), drift.Window(list(record["features"]))), record)
    return out


def add_record(window: drift.Window, record: dict[str, Any]) -> None:
    names = list(record["features"])
    order = None if names == window.features else [names.index(n) for n in window.features]
    for row in record["rows"]:
        window.rows.append(row if order is None else [row[i] for i in order])
    window.predictions.extend(record["predictions"])
    probabilities = record.get("probabilities")
    if probabilities and len(probabilities[0]) == 2:
        window.scores.extend(p[1] for p in probabilities)
