"""The monitor's verdicts as CloudWatch metrics (EMF, through Powertools): per model version,
per feature, and one summary per service that the stack's alarms watch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SERVICE = "lambdaserve"
# Names the dashboard and the alarms read (tests/template checks them against this module).
DRIFTED_FEATURES = "DriftedFeatures"
PREDICTION_DRIFT = "PredictionDrift"
FEATURE_DRIFT = "FeatureDrift"
MONITORED_ROWS = "MonitoredRows"


def emit(results: Iterable[dict[str, Any]], namespace: str, service: str = SERVICE) -> None:
    """One EMF line per metric and dimension set (Powertools' single_metric)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    def put(name: str, value: float, unit: MetricUnit, dims: dict[str, str]) -> None:
        with single_metric(
            name=name, unit=unit, value=value, namespace=namespace, default_dimensions=dims
        ):
            pass

    for result in results:
        version = {"service": service, "Model": result["model"], "ModelVersion": result["version"]}
        put(MONITORED_ROWS, result["rows"], MetricUnit.Count, version)
        if result["status"] not in ("ok", "drift"):
            continue  # no verdict: no drift figure, rather than a reassuring zero
        drifted = float(result["drifted_features"])
        put(DRIFTED_FEATURES, drifted, MetricUnit.Count, version)
        put(DRIFTED_FEATURES, drifted, MetricUnit.Count, {"service": service})
        prediction = float(result["prediction"]["value"])
        put(PREDICTION_DRIFT, prediction, MetricUnit.NoUnit, version)
        put(PREDICTION_DRIFT, prediction, MetricUnit.NoUnit, {"service": service})
        for feature in result["features"]:
            dims = version | {"Feature": feature["name"]}
            put(FEATURE_DRIFT, float(feature["value"]), MetricUnit.NoUnit, dims)
