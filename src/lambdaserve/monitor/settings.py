"""The monitor function's configuration: every environment variable it reads, read once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from lambdaserve.monitor.drift import Thresholds


@dataclass(frozen=True)
class MonitorSettings:
    """What template.yaml gives MonitorFunction, with the defaults a missing variable gets."""

    monitoring_bucket: str
    registry_bucket: str
    window: str = "1h"  # what a scheduled run measures (the last hour)
    metrics_namespace: str = "lambdaserve"
    thresholds: Thresholds = field(default_factory=Thresholds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> MonitorSettings:
        """MONITORING_BUCKET, REGISTRY_BUCKET (both required), MONITOR_WINDOW,
        POWERTOOLS_METRICS_NAMESPACE and the DRIFT_* thresholds."""
        return cls(
            monitoring_bucket=env["MONITORING_BUCKET"],
            registry_bucket=env["REGISTRY_BUCKET"],
            window=env.get("MONITOR_WINDOW") or "1h",
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "lambdaserve",
            thresholds=Thresholds.from_env(env),
        )
