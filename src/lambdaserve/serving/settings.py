"""The predict function's configuration: every environment variable it reads, read once."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from lambdaserve.serving.predictor import DEFAULT_MODEL_DIR, ExpectedModel
from lambdaserve.serving.schema import DEFAULT_MAX_ROWS

# Lambda's synchronous payload limit; API Gateway would accept 10 MB and Lambda then fail.
DEFAULT_MAX_BODY_BYTES = 6_000_000


@dataclass(frozen=True)
class Settings:
    """What template.yaml's environment says, with the defaults a missing variable gets."""

    model_dir: str = DEFAULT_MODEL_DIR
    expected: ExpectedModel = field(default_factory=ExpectedModel)
    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    capture_rate: float = 0.0  # share of predict requests captured for monitoring
    trace_subsegments: bool = False
    metrics_namespace: str = "lambdaserve"
    shadow_parameter: str = ""  # SSM parameter `lambdaserve shadow` writes; empty: no mirroring
    shadow_refresh_seconds: float = 30.0  # how stale the switch may be before it is read again

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """MODEL_DIR, MODEL_NAME/VERSION/SHA256, MAX_BATCH_ROWS, MAX_BODY_BYTES,
        CAPTURE_SAMPLE_RATE (0-1; DATA_CAPTURE=true, the older switch, means 1),
        TRACE_SUBSEGMENTS, POWERTOOLS_METRICS_NAMESPACE, SHADOW_PARAMETER and
        SHADOW_REFRESH_SECONDS."""
        return cls(
            model_dir=env.get("MODEL_DIR", DEFAULT_MODEL_DIR),
            expected=ExpectedModel.from_env(env),
            max_rows=int(env.get("MAX_BATCH_ROWS", DEFAULT_MAX_ROWS)),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)),
            capture_rate=_capture_rate(env),
            trace_subsegments=env.get("TRACE_SUBSEGMENTS", "false").lower() == "true",
            # A namespace even if the variable is missing: without one every flush raises.
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE", "lambdaserve"),
            shadow_parameter=env.get("SHADOW_PARAMETER", ""),
            shadow_refresh_seconds=_positive(env.get("SHADOW_REFRESH_SECONDS"), 30.0),
        )


def _capture_rate(env: Mapping[str, str]) -> float:
    """The capture sample rate, clamped to 0-1; a value that is not a number captures nothing."""
    if env.get("DATA_CAPTURE", "").lower() == "true":
        return 1.0
    try:
        rate = float(env.get("CAPTURE_SAMPLE_RATE", "0"))
    except ValueError:
        return 0.0
    return min(max(rate, 0.0), 1.0) if math.isfinite(rate) else 0.0


def _positive(value: str | None, default: float) -> float:
    """A positive finite number, else the default (a typo must not stop the function)."""
    try:
        number = float(value or default)
    except ValueError:
        return default
    return number if math.isfinite(number) and number > 0 else default
