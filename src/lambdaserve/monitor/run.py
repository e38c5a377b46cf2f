"""One monitor run: the captured rows of a window (`window`) measured against each model
version's baseline (`drift`), written as a JSON and an HTML report. AWS clients are passed in."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdaserve.manifest import MANIFEST_FILE, REGISTRY_PREFIX, Manifest
from lambdaserve.monitor import drift
from lambdaserve.monitor.window import CaptureReader, MonitorError

REPORT_PREFIX = "monitoring/"


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
        from lambdaserve.monitor.report import render

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
        "decided_by",
        "reason",
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
