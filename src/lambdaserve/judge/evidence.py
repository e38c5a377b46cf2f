"""What the canary judge reads, from where AWS keeps it: the rows each function version
answered (captured, in the monitoring bucket) and Lambda's own metrics per executed version
of the alias (CloudWatch: Invocations, Errors, Duration p99). Clients are passed in."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from lambdaserve.judge.canary import VersionEvidence
from lambdaserve.monitor.window import CaptureReader


class Evidence:
    """Gathers both versions' evidence for one window."""

    def __init__(
        self,
        reader: CaptureReader,
        cloudwatch: Any,
        function: str,
        alias: str,
        profile_of: Callable[[str], dict[str, Any] | None],
    ) -> None:
        self.reader, self.cloudwatch = reader, cloudwatch
        self.function, self.alias, self.profile_of = function, alias, profile_of

    def gather(
        self, stable: str, canary: str, start: dt.datetime, end: dt.datetime
    ) -> tuple[VersionEvidence, VersionEvidence]:
        windows = self.reader.function_windows(start, end)
        metrics = self.metrics([stable, canary], start, end)
        out = []
        for version in (stable, canary):
            figures = metrics.get(version, {})
            evidence = VersionEvidence(
                version, figures.get("invocations"), figures.get("errors"), figures.get("p99_ms")
            )
            if version in windows:
                evidence.window = windows[version]
            out.append(evidence)
        out[1].profile = self.profile_of(canary)
        return out[0], out[1]

    def metrics(
        self, versions: list[str], start: dt.datetime, end: dt.datetime
    ) -> dict[str, dict[str, float | None]]:
        """Sums of Invocations and Errors and the p99 Duration of each version in the window
        (whole minutes around it: CloudWatch's resolution for Lambda's metrics)."""
        first = start.replace(second=0, microsecond=0)
        period = max(60, math.ceil((end - first).total_seconds() / 60) * 60)
        found: dict[str, dict[str, float | None]] = {}
        for version in versions:
            dims = [
                {"Name": "FunctionName", "Value": self.function},
                {"Name": "Resource", "Value": f"{self.function}:{self.alias}"},
                {"Name": "ExecutedVersion", "Value": version},
            ]
            found[version] = {
                "invocations": self._stat("Invocations", "Sum", dims, first, period),
                "errors": self._stat("Errors", "Sum", dims, first, period),
                "p99_ms": self._stat("Duration", "p99", dims, first, period),
            }
        return found

    def _stat(
        self, name: str, stat: str, dims: list[dict[str, str]], start: dt.datetime, period: int
    ) -> float | None:
        """One statistic over the window; None where CloudWatch has no datapoint (or cannot
        compute it: moto, the local stack's CloudWatch, has no percentiles)."""
        query = {
            "Id": "m",
            "MetricStat": {
                "Metric": {"Namespace": "AWS/Lambda", "MetricName": name, "Dimensions": dims},
                "Period": period,
                "Stat": stat,
            },
        }
        try:
            reply = self.cloudwatch.get_metric_data(
                MetricDataQueries=[query],
                StartTime=start,
                EndTime=start + dt.timedelta(seconds=period),
            )
        except Exception:  # a statistic the endpoint cannot compute is no evidence
            return None
        values = [
            v for r in reply["MetricDataResults"] for v in r.get("Values", []) if v is not None
        ]
        if not values:
            return None
        return float(max(values) if stat.startswith("p") else sum(values))
