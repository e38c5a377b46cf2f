"""The monitor: captured rows of a time window, read from S3, measured against each model
version's baseline (`drift`), written as a JSON and an HTML report. AWS clients are passed in.

Capture objects come in the two shapes Firehose writes: gzip'd CloudWatch Logs envelopes
(`{"logEvents": [...]}`, concatenated; Firehose without processing, and the local stack) or
the extracted messages, one per line (Firehose with CloudWatch Logs decompression and message
extraction, as template.yaml configures it)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lambdaserve import drift
from lambdaserve.capture import MARKER, capture_records
from lambdaserve.manifest import MANIFEST_FILE, REGISTRY_PREFIX, Manifest

CAPTURE_PREFIX = "capture/"
REPORT_PREFIX = "monitoring/"
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
    marker: str = MARKER  # capture records; shadow records (lambdaserve.shadow) lie beside them

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


@dataclass
class Monitor:
    """One run: every model version captured in the window (or the one asked for)."""

    reader: CaptureReader
    manifest_of: Callable[[str, str], Manifest]
    thresholds: drift.Thresholds = field(default_factory=drift.Thresholds)
    reports: ReportStore | None = None

    def run(
        self,
        start: dt.datetime,
        end: dt.datetime,
        model: str | None = None,
        version: str | None = None,
    ) -> list[dict[str, Any]]:
        windows = self.reader.windows(start, end, model, version)
        if model and version and (model, version) not in windows:
            windows[model, version] = drift.Window([])
        results = []
        for (name, number), window in sorted(windows.items()):
            manifest = self.manifest_of(name, number)
            if not window.features:
                window.features = [f.name for f in manifest.features]
            verdict = drift.compare(manifest.baseline_profile, window, self.thresholds)
            result = {
                "model": name,
                "version": number,
                "window": {
                    "start": start.isoformat(timespec="seconds"),
                    "end": end.isoformat(timespec="seconds"),
                },
                "thresholds": self.thresholds.__dict__,
                **verdict,
                "report_uri": None,
            }
            if self.reports is not None:
                result["report_uri"] = self.reports.write(result)
            results.append(result)
        return results


@dataclass
class ReportStore:
    """Reports under monitoring/<model>/<version>/: one per run, and latest.{json,html}."""

    s3: Any
    bucket: str
    prefix: str = REPORT_PREFIX

    def write(self, result: dict[str, Any]) -> str:
        from lambdaserve.report_html import render

        folder = f"{self.prefix}{result['model']}/{result['version']}/"
        end = dt.datetime.fromisoformat(result["window"]["end"])
        stamp = end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")  # sorts by time, no colons
        html = render(result).encode("utf-8")
        body = json.dumps(result, indent=2).encode("utf-8")
        for name in (stamp, "latest"):
            self.s3.put_object(
                Bucket=self.bucket,
                Key=f"{folder}{name}.json",
                Body=body,
                ContentType="application/json",
            )
            self.s3.put_object(
                Bucket=self.bucket,
                Key=f"{folder}{name}.html",
                Body=html,
                ContentType="text/html; charset=utf-8",
            )
        return f"s3://{self.bucket}/{folder}{stamp}.html"

    def latest_html(self, model: str | None = None, version: str | None = None) -> bytes:
        """The newest HTML report (of one model or version, if named)."""
        prefix = self.prefix + (f"{model}/" if model else "") + (f"{version}/" if version else "")
        paginator = self.s3.get_paginator("list_objects_v2")
        newest: dict[str, Any] | None = None
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/latest.html") and (
                    newest is None or item["LastModified"] > newest["LastModified"]
                ):
                    newest = item
        if newest is None:
            raise MonitorError(f"no report under s3://{self.bucket}/{prefix}: run the monitor")
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=newest["Key"])["Body"].read()
        return body


def registry_manifests(s3: Any, bucket: str) -> Callable[[str, str], Manifest]:
    """Reads a version's manifest (its baseline) from the registry, without the registry
    module: the monitor needs one object per model version, read-only."""

    def read(name: str, version: str) -> Manifest:
        key = f"{REGISTRY_PREFIX}/{name}/{version}/{MANIFEST_FILE}"
        try:
            raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # NoSuchKey, AccessDenied: the verdict cannot be made
            raise MonitorError(
                f"no manifest for {name} v{version} in s3://{bucket}: {exc}"
            ) from None
        return Manifest.from_dict(json.loads(raw))

    return read


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The documented `--json` shape of one result (the report holds the plots' data too)."""
    keep = (
        "name",
        "measure",
        "value",
        "status",
        "missing_rate",
        "baseline_missing_rate",
        "out_of_range_rate",
    )
    prediction = result.get("prediction")
    return {
        "model": result["model"],
        "version": result["version"],
        "window": result["window"],
        "rows": result["rows"],
        "status": result["status"],
        "features": [{k: f[k] for k in keep} for f in result["features"]],
        "prediction": {k: prediction[k] for k in keep} if prediction else None,
        "report_uri": result["report_uri"],
    }
