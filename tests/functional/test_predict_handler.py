"""The predict handler driven by the events/ files, with Powertools for real and no AWS."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from openapi_spec_validator import validate
from support import ROOT, FakeLambdaContext, import_fresh, load_event

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def _import_handler() -> ModuleType:
    return import_fresh(ROOT / "functions/predict/app.py", "predict_app")


@pytest.fixture
def invoke(handler_env: pytest.MonkeyPatch) -> Invoke:
    """A new container: the handler is imported on the first call (inside the test, where
    capsys is live, as Powertools binds its log stream at import); each call is one invocation."""
    container: list[ModuleType] = []

    def call(event: dict[str, Any]) -> dict[str, Any]:
        if not container:
            container.append(_import_handler())
        response: dict[str, Any] = container[0].lambda_handler(event, FakeLambdaContext())
        return response

    return call


def _body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def _content_type(response: dict[str, Any]) -> str:
    headers = response.get("multiValueHeaders") or {}
    return str(headers.get("Content-Type", [""])[0])


def _stdout_json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]


def _emf(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Every metric value emitted, by name, across the EMF blobs."""
    values: dict[str, Any] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "lambdaserve-test"
            for metric in directive["Metrics"]:
                values[metric["Name"]] = line[metric["Name"]]
    return values


def _problem(response: dict[str, Any], status: int) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    assert _content_type(response) == "application/problem+json"
    body: dict[str, Any] = _body(response)
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    assert "Traceback" not in response["body"]
    return body


def test_predict_event_answers_predictions_and_probabilities(invoke: Invoke) -> None:
    response = invoke(load_event("predict.json"))
    assert response["statusCode"] == 200
    assert _content_type(response) == "application/json"
    body = _body(response)
    assert len(body["predictions"]) == 2
    assert len(body["probabilities"]) == 2
    assert body["model"]["name"] == "retail-propensity"


def test_columnar_event_answers_exactly_what_the_records_event_does(invoke: Invoke) -> None:
    records = _body(invoke(load_event("predict.json")))
    columnar = _body(invoke(load_event("predict-columnar.json")))
    assert columnar == records


def test_invalid_event_answers_422_with_each_field_error(invoke: Invoke) -> None:
    body = _problem(invoke(load_event("predict-invalid.json")), 422)
    assert {(e["row"], e["field"]) for e in body["errors"]} == {
        (0, "recency_days"),
        (0, "frequency_90d"),
        (0, "device"),
    }


def test_malformed_event_answers_400(invoke: Invoke) -> None:
    body = _problem(invoke(load_event("predict-malformed.json")), 400)
    assert "not valid JSON" in body["detail"]


def test_health_reports_model_and_function_version(invoke: Invoke) -> None:
    response = invoke(load_event("health.json"))
    assert response["statusCode"] == 200
    body = _body(response)
    assert body["status"] == "ok"
    assert body["function_version"] == "7"
    assert body["model"]["name"] == "retail-propensity"


def test_model_event_answers_the_public_manifest(invoke: Invoke) -> None:
    body = _body(invoke(load_event("model.json")))
    assert [f["name"] for f in body["features"]][-2:] == ["device", "channel"]
    assert "golden_examples" not in body
    assert "roc_auc" in body["metrics"]


def test_openapi_event_answers_a_valid_document_for_this_model(invoke: Invoke) -> None:
    body = _body(invoke(load_event("openapi.json")))
    validate(body)
    assert body["info"]["title"] == "retail-propensity prediction API"


def test_logs_are_json_with_correlation_id_model_and_function_version(
    invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("predict-invalid.json")
    invoke(event)
    invoke(event)
    logs = [line for line in _stdout_json(capsys) if "message" in line]
    # The model is loaded once, in the init phase (before any request: no correlation id).
    (loaded,) = [line for line in logs if line["message"] == "model loaded"]
    assert loaded["model_name"] == "retail-propensity"
    assert "correlation_id" not in loaded
    first, second = [line for line in logs if line["message"] == "request refused"]
    assert first["correlation_id"] == event["requestContext"]["requestId"]
    assert first["model_name"] == "retail-propensity"
    assert first["function_version"] == "7"
    assert (first["cold_start"], second["cold_start"]) == (True, False)
    assert first["service"] == "lambdaserve"


def test_metrics_are_emitted_as_emf(invoke: Invoke, capsys: pytest.CaptureFixture[str]) -> None:
    invoke(load_event("predict.json"))
    first = _emf(_stdout_json(capsys))
    assert first["Requests"] == [1.0]
    assert first["PredictRequests"] == [1.0]
    assert first["RowsPredicted"] == [2.0]
    assert first["ColdStart"] == [1.0]
    assert first["ModelLoadTime"][0] > 0
    assert first["PredictionLatency"][0] > 0
    invoke(load_event("predict-invalid.json"))
    second = _emf(_stdout_json(capsys))
    assert second["InvalidRequests"] == [1.0]
    assert "ColdStart" not in second
    assert "ModelLoadTime" not in second


def test_a_tampered_model_answers_503_everywhere_and_is_never_loaded(
    handler_env: pytest.MonkeyPatch, sample_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open(sample_bundle / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    module = _import_handler()
    for name in ("health.json", "predict.json", "model.json"):
        body = _problem(module.lambda_handler(load_event(name), FakeLambdaContext()), 503)
        assert "sha256" in body["detail"]
    lines = _stdout_json(capsys)
    assert [line["message"] for line in lines if line.get("message") == "model refused"]
    assert _emf(lines)["ModelLoadFailures"] == [1.0]


def test_a_bundle_other_than_the_pinned_one_answers_503(
    handler_env: pytest.MonkeyPatch,
) -> None:
    handler_env.setenv("MODEL_SHA256", "0" * 64)
    module = _import_handler()
    body = _problem(module.lambda_handler(load_event("health.json"), FakeLambdaContext()), 503)
    assert "MODEL_SHA256" in body["detail"]


def _with(event: dict[str, Any], body: str | None = None, **headers: str) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    if body is not None:
        changed["body"] = body
    for name, value in headers.items():
        changed["headers"][name.replace("_", "-")] = value
        changed["multiValueHeaders"][name.replace("_", "-")] = [value]
    return changed


def test_wrong_content_type_is_415_and_a_charset_is_fine(invoke: Invoke) -> None:
    event = load_event("predict.json")
    _problem(invoke(_with(event, Content_Type="text/csv")), 415)
    assert invoke(_with(event, Content_Type="application/json; charset=utf-8"))["statusCode"] == 200


def test_too_many_rows_is_413(handler_env: pytest.MonkeyPatch) -> None:
    handler_env.setenv("MAX_BATCH_ROWS", "1")
    module = _import_handler()
    body = _problem(module.lambda_handler(load_event("predict.json"), FakeLambdaContext()), 413)
    assert "limit of 1" in body["detail"]


def test_too_large_a_body_is_413_before_parsing(handler_env: pytest.MonkeyPatch) -> None:
    handler_env.setenv("MAX_BODY_BYTES", "100")
    module = _import_handler()
    _problem(module.lambda_handler(load_event("predict.json"), FakeLambdaContext()), 413)


def test_unknown_route_is_a_404_problem(invoke: Invoke) -> None:
    event = load_event("health.json")
    event["path"] = event["resource"] = "/admin"
    _problem(invoke(event), 404)


def test_base64_encoded_bodies_are_decoded(invoke: Invoke) -> None:
    event = load_event("predict.json")
    plain = invoke(event)
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert invoke(event)["body"] == plain["body"]
    event["body"] = "%%% not base64 %%%"
    _problem(invoke(event), 400)


def _feature_values_in(lines: list[dict[str, Any]], event: dict[str, Any]) -> set[str]:
    """Which of the request's distinctive values appear anywhere in the log lines."""
    text = json.dumps(lines)
    body = json.loads(event["body"])["instances"]
    values = {v for row in body for v in (row["device"], row["channel"], str(row["monetary_90d"]))}
    return {
        v
        for v in values
        if len(v) >= 4
        and any(f in text for f in (f'"{v}"', f" {v},", f" {v}}}", f" {v}]", f"[{v},"))
    }


def test_logs_carry_no_feature_values_without_data_capture(
    invoke: Invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load_event("predict.json")
    invoke(event)
    invoke(load_event("predict-invalid.json"))
    assert _feature_values_in(_stdout_json(capsys), event) == set()


@pytest.mark.parametrize("switch", [("CAPTURE_SAMPLE_RATE", "1"), ("DATA_CAPTURE", "true")])
def test_data_capture_logs_inputs_and_outputs_with_pii_masked(
    handler_env: pytest.MonkeyPatch,
    sample_bundle: Path,
    capsys: pytest.CaptureFixture[str],
    switch: tuple[str, str],
) -> None:
    manifest_path = sample_bundle / "manifest.json"
    raw = json.loads(manifest_path.read_text())
    for feature in raw["features"]:
        feature["pii"] = feature["name"] == "device"
    manifest_path.write_text(json.dumps(raw))
    handler_env.setenv(*switch)
    handler_env.setenv("AWS_LAMBDA_FUNCTION_VERSION", "7")
    module = _import_handler()
    event = load_event("predict.json")
    module.lambda_handler(event, FakeLambdaContext())
    lines = _stdout_json(capsys)
    assert _feature_values_in(lines, event) >= {"email", "social", "412.5"}  # the probe works
    (record,) = [line for line in lines if line.get("lambdaserve_capture") == 1]
    names = record["features"]
    rows = [dict(zip(names, row, strict=True)) for row in record["rows"]]
    sent = json.loads(event["body"])["instances"]
    assert [r["device"] for r in rows] == ["*****", "*****"]
    assert [r["channel"] for r in rows] == [s["channel"] for s in sent]
    assert rows[1]["discount_pct"] is None
    assert len(record["predictions"]) == len(record["probabilities"]) == 2
    assert (record["model"], record["model_version"]) == ("retail-propensity", raw["version"])
    assert record["function_version"] == "7"


@pytest.mark.parametrize("rate", ["0", "-1", "not a number"])
def test_no_capture_when_the_rate_is_zero_or_invalid(
    handler_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rate: str
) -> None:
    handler_env.setenv("CAPTURE_SAMPLE_RATE", rate)
    module = _import_handler()
    for _ in range(5):
        module.lambda_handler(load_event("predict.json"), FakeLambdaContext())
    assert not [line for line in _stdout_json(capsys) if "lambdaserve_capture" in line]
