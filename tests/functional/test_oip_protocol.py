"""The Open Inference Protocol (KServe v2) with Triton's binary data extension (issue 29, part 2)
through the predict handler as Lambda runs it. Requests are encoded, and answers decoded, by
tritonclient's own code (`generate_request_body`, `InferResult.from_response_body`), so the
bytes are the ones a Triton client sends and reads. The e2e test points tritonclient's
InferenceServerClient at the local stack over HTTP.

Sources: kserve/open-inference-protocol specification/protocol/inference_rest.md;
triton-inference-server/server docs/protocol/extension_binary_data.md; API Gateway's binary
media types (docs.aws.amazon.com/apigateway/latest/developerguide/,
api-gateway-payload-encodings.html).
"""

from __future__ import annotations

import base64
import copy
import json
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from support import ROOT, FakeLambdaContext, import_fresh, load_event
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput, InferResult

RECORDS = json.loads(load_event("predict.json")["body"])["instances"]
NAME = "retail-propensity"
INFER = f"/v2/models/{NAME}/infer"
CATEGORIES = ("device", "channel")
BINARY = "application/octet-stream"


@pytest.fixture
def handler(handler_env: pytest.MonkeyPatch) -> ModuleType:
    return import_fresh(ROOT / "functions/predict/app.py", "predict_app_oip")


def call(
    handler: ModuleType,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """The proxy event API Gateway sends for this request, answered by the handler."""
    event = copy.deepcopy(load_event("predict.json"))
    event["resource"] = event["path"] = path
    event["requestContext"]["resourcePath"] = path
    event["httpMethod"] = "GET" if body is None else "POST"
    event["headers"] = dict(headers or {})
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    if body is None:
        event["body"] = None
    elif base64_encoded:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"], event["isBase64Encoded"] = body.decode("utf-8"), False
    response: dict[str, Any] = handler.lambda_handler(event, FakeLambdaContext())
    return response


def _header(response: dict[str, Any], name: str) -> str | None:
    values = (response.get("multiValueHeaders") or {}).get(name)
    return str(values[0]) if values else None


def result_of(response: dict[str, Any]) -> InferResult:
    """tritonclient's reading of an answer, as its HTTP client reads one."""
    assert response["statusCode"] == 200, response["body"]
    raw = (
        base64.b64decode(response["body"])
        if response.get("isBase64Encoded")
        else response["body"].encode()
    )
    length = _header(response, "Inference-Header-Content-Length")
    return InferResult.from_response_body(raw, False, int(length) if length else None)


def tensors(
    rows: list[dict[str, Any]], binary: bool, number_type: str = "FP64"
) -> list[InferInput]:
    """One tensor per feature, built as a Triton user builds them (NaN: a missing value)."""
    out = []
    for name in rows[0].keys() | {k for r in rows for k in r}:
        values = [r.get(name) for r in rows]
        if name in CATEGORIES:
            array = np.array(values, dtype=object)
            tensor = InferInput(name, [len(rows)], "BYTES")
        else:
            dtype = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64}[number_type]
            array = np.array([np.nan if v is None else v for v in values], dtype=dtype)
            tensor = InferInput(name, [len(rows)], number_type)
        tensor.set_data_from_numpy(array, binary_data=binary)
        out.append(tensor)
    return sorted(out, key=lambda t: t.name())


def infer(
    handler: ModuleType,
    inputs: list[InferInput],
    outputs: list[InferRequestedOutput] | None = None,
    accept: str | None = BINARY,
    path: str = INFER,
    **request: Any,
) -> dict[str, Any]:
    body, json_size = InferenceServerClient.generate_request_body(inputs, outputs, **request)
    headers = {"Accept": accept} if accept else {}
    if json_size is not None:  # what a client must send for API Gateway to keep the bytes
        headers |= {"Content-Type": BINARY, "Inference-Header-Content-Length": str(json_size)}
    return call(handler, path, body, headers, base64_encoded=json_size is not None)


def predicted(handler: ModuleType, rows: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps({"instances": rows}).encode()
    answer: dict[str, Any] = json.loads(
        call(handler, "/predict", body, {"Content-Type": "application/json"})["body"]
    )
    return answer


def test_metadata_health_and_readiness(handler: ModuleType) -> None:
    server = json.loads(call(handler, "/v2")["body"])
    assert server["extensions"] == ["binary_tensor_data"]
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{NAME}/ready"):
        assert call(handler, path)["statusCode"] == 200, path
    meta = json.loads(call(handler, f"/v2/models/{NAME}")["body"])
    inputs = {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]}
    assert inputs["recency_days"] == ("INT64", [-1])
    assert inputs["monetary_90d"] == ("FP64", [-1])
    assert inputs["device"] == ("BYTES", [-1])
    assert [o["name"] for o in meta["outputs"]] == ["predictions", "probabilities"]
    assert meta["outputs"][1]["shape"] == [-1, 2]
    for path in ("/v2/models/other", "/v2/models/other/ready", f"/v2/models/{NAME}/versions/9"):
        answer = call(handler, path)
        assert answer["statusCode"] == 404, path
        assert set(json.loads(answer["body"])) == {"error"}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_answers_equal_predicts_to_the_last_bit(handler: ModuleType, binary: bool) -> None:
    expected = predicted(handler, RECORDS)
    response = infer(handler, tensors(RECORDS, binary), request_id="r-1")
    # tritonclient asks every output in binary when it names none; this client accepts bytes.
    assert _header(response, "Content-Type") == BINARY
    result = result_of(response)
    assert result.get_response()["id"] == "r-1"
    assert result.get_response()["model_name"] == NAME
    assert result.as_numpy("predictions").tolist() == expected["predictions"]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float64
    assert probabilities.tobytes() == np.array(expected["probabilities"]).tobytes()


def test_outputs_are_binary_only_for_a_client_that_accepts_bytes(handler: ModuleType) -> None:
    """tritonclient asks for binary outputs by default but sends no Accept header: API Gateway
    would hand it base64 text, so such a client gets the outputs as JSON data."""
    expected = predicted(handler, RECORDS)
    for accept in (None, "application/json", f"application/json, {BINARY}"):
        response = infer(handler, tensors(RECORDS, True), accept=accept)
        assert not response.get("isBase64Encoded"), accept
        assert _header(response, "Content-Type") == "application/json"
        result = result_of(response)
        assert result.as_numpy("probabilities").tolist() == expected["probabilities"]
    binary = infer(handler, tensors(RECORDS, True))
    assert binary["isBase64Encoded"]
    assert _header(binary, "Content-Type") == BINARY
    # Each output as asked: probabilities binary, predictions as JSON.
    mixed = infer(
        handler,
        tensors(RECORDS, False),
        [
            InferRequestedOutput("predictions", binary_data=False),
            InferRequestedOutput("probabilities"),
        ],
    )
    outputs = {o["name"]: o for o in result_of(mixed).get_response()["outputs"]}
    assert "data" in outputs["predictions"]
    assert outputs["probabilities"]["parameters"]["binary_data_size"] == 2 * 2 * 8
    only = infer(handler, tensors(RECORDS, False), [InferRequestedOutput("predictions")])
    assert [o["name"] for o in result_of(only).get_response()["outputs"]] == ["predictions"]


def test_a_missing_value_is_nan_and_an_optional_feature_may_be_left_out(
    handler: ModuleType,
) -> None:
    rows = [dict(r) for r in RECORDS]
    rows[0]["discount_pct"] = None
    expected = predicted(handler, rows)
    for number_type in ("FP64", "FP32"):
        result = result_of(infer(handler, tensors(rows, True, number_type)))
        assert result.as_numpy("probabilities").tolist() == expected["probabilities"]
    without = [{k: v for k, v in r.items() if k != "discount_pct"} for r in RECORDS]
    result = result_of(infer(handler, tensors(without, True)))
    assert result.as_numpy("probabilities").tolist() == predicted(handler, without)["probabilities"]


def test_integers_and_a_versioned_path(handler: ModuleType, sample_bundle: Path) -> None:
    rows = [{**r, "discount_pct": r.get("discount_pct", 0)} for r in RECORDS]
    expected = predicted(handler, rows)
    result = result_of(infer(handler, tensors(rows, True, "INT64")))
    assert result.as_numpy("probabilities").tolist() == expected["probabilities"]


def test_one_matrix_tensor_for_an_all_numeric_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A model of numbers only takes one [rows, features] tensor, the way array models are
    called from Triton clients."""
    from zoo import ZOO

    from lambdaserve.bundle.make import make_bundle
    from lambdaserve.serving.predictor import sha256_of

    model = ZOO["rf-regressor"]()
    out = tmp_path / "bundle"
    make_bundle(
        model.estimator, name=model.name, spec=model.spec, sample_rows=model.requests, out_dir=out
    )
    for key, value in {
        "POWERTOOLS_SERVICE_NAME": "lambdaserve",
        "POWERTOOLS_METRICS_NAMESPACE": "lambdaserve-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "MODEL_DIR": str(out),
        "MODEL_NAME": model.name,
        "MODEL_SHA256": sha256_of(out / "model.joblib"),
    }.items():
        monkeypatch.setenv(key, value)
    handler = import_fresh(ROOT / "functions/predict/app.py", "predict_app_oip_numeric")
    rows = model.requests[:50]
    names = [f["name"] for f in model.spec["features"]]
    matrix = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    tensor = InferInput("input", list(matrix.shape), "FP64")
    tensor.set_data_from_numpy(matrix)
    path = f"/v2/models/{model.name}/infer"
    result = result_of(infer(handler, [tensor], path=path))
    expected = predicted(handler, rows)
    assert result.as_numpy("predictions").tolist() == expected["predictions"]
    if "probabilities" in expected:
        assert result.as_numpy("probabilities").tolist() == expected["probabilities"]
    wide = InferInput("input", [50, len(names) + 1], "FP64")
    wide.set_data_from_numpy(np.zeros((50, len(names) + 1)))
    refused = infer(handler, [wide], path=path)
    assert refused["statusCode"] == 400
    assert "columns" in json.loads(refused["body"])["error"]


def _tensor(name: str, datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _good_inputs(**changes: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for name in RECORDS[0]:
        values = [r.get(name) for r in RECORDS]
        if name in CATEGORIES:
            tensor = _tensor(name, "BYTES", [2], values)
        else:
            tensor = _tensor(name, "FP64", [2], [0.0 if v is None else v for v in values])
        if name in changes:
            if changes[name] is None:
                continue
            tensor |= changes[name]  # type: ignore[arg-type]
        out.append(tensor)
    return out


def _binary_body(header: dict[str, Any], tail: bytes) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(header).encode()
    return text + tail, {"Content-Type": BINARY, "Inference-Header-Content-Length": str(len(text))}


HOSTILE: list[tuple[str, Any, int, str]] = [
    # (case, JSON request or (body bytes, headers), status, words in the error)
    ("not an object", [1, 2], 400, "JSON object"),
    ("no inputs", {"inputs": []}, 400, "non-empty"),
    ("unknown top-level key", {"inputs": _good_inputs(), "input": 1}, 400, "unknown keys"),
    (
        "unknown datatype",
        {"inputs": _good_inputs(recency_days={"datatype": "FP128"})},
        400,
        "datatype",
    ),
    (
        "a datatype that is an object",
        {"inputs": _good_inputs(recency_days={"datatype": {}})},
        400,
        "datatype",
    ),
    (
        "shape of three dimensions",
        {"inputs": _good_inputs(recency_days={"shape": [2, 1, 1]})},
        400,
        "shape",
    ),
    ("negative shape", {"inputs": _good_inputs(recency_days={"shape": [-2]})}, 400, "shape"),
    ("zero rows", {"inputs": [_tensor("recency_days", "FP64", [0], [])]}, 400, "no rows"),
    (
        "count off the shape",
        {"inputs": _good_inputs(recency_days={"data": [1.0]})},
        400,
        "values in 'data'",
    ),
    (
        "strings in a number tensor",
        {"inputs": _good_inputs(recency_days={"data": ["3", "4"]})},
        400,
        "numbers",
    ),
    (
        "booleans in a number tensor",
        {"inputs": _good_inputs(recency_days={"data": [True, False]})},
        400,
        "numbers",
    ),
    (
        "floats in an INT64 tensor",
        {"inputs": _good_inputs(recency_days={"datatype": "INT64", "data": [1.5, 2]})},
        400,
        "integers",
    ),
    (
        "numbers for a category",
        {"inputs": _good_inputs(device={"datatype": "FP64", "data": [1.0, 2.0]})},
        400,
        "category",
    ),
    (
        "an unknown input",
        {"inputs": [*_good_inputs(), _tensor("age", "FP64", [2], [1, 2])]},
        400,
        "unknown input",
    ),
    (
        "a required input left out",
        {"inputs": _good_inputs(recency_days=None)},
        400,
        "missing input",
    ),
    (
        "inputs of different rows",
        {"inputs": _good_inputs(recency_days={"shape": [1], "data": [3]})},
        400,
        "different numbers of rows",
    ),
    ("a duplicate input", {"inputs": [*_good_inputs(), _good_inputs()[0]]}, 400, "same name"),
    (
        "no data nor binary size",
        {"inputs": [{"name": "recency_days", "datatype": "FP64", "shape": [2]}]},
        400,
        "neither",
    ),
    (
        "an unknown category",
        {"inputs": _good_inputs(device={"data": ["fax", "mobile"]})},
        422,
        "unknown category",
    ),
    (
        "below the minimum",
        {"inputs": _good_inputs(recency_days={"data": [-5.0, 3.0]})},
        422,
        "at least",
    ),
    (
        "a whole number that is not",
        {"inputs": _good_inputs(recency_days={"data": [2.5, 3.0]})},
        422,
        "whole number",
    ),
    (
        "a huge integer",
        {"inputs": _good_inputs(recency_days={"datatype": "INT64", "data": [2**60, 1]})},
        422,
        "too large",
    ),
    (
        "an unknown output",
        {"inputs": _good_inputs(), "outputs": [{"name": "scores"}]},
        400,
        "unknown output",
    ),
    (
        "the classification extension",
        {
            "inputs": _good_inputs(),
            "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}],
        },
        400,
        "classification",
    ),
    (
        "a non-boolean binary flag",
        {"inputs": _good_inputs(), "parameters": {"binary_data_output": "yes"}},
        400,
        "true or false",
    ),
    ("an id that is a number", {"inputs": _good_inputs(), "id": 7}, 400, "'id'"),
    (
        "too many rows",
        {"inputs": [_tensor("recency_days", "FP64", [10_001], [1.0] * 10_001)]},
        413,
        "limit",
    ),
    (
        "a binary size past the end",
        _binary_body(
            {
                "inputs": [
                    {
                        "name": "recency_days",
                        "datatype": "FP64",
                        "shape": [2],
                        "parameters": {"binary_data_size": 64},
                    }
                ]
            },
            b"\0" * 16,
        ),
        400,
        "past the body",
    ),
    (
        "binary bytes off the shape",
        _binary_body(
            {
                "inputs": [
                    {
                        "name": "recency_days",
                        "datatype": "FP64",
                        "shape": [2],
                        "parameters": {"binary_data_size": 12},
                    }
                ]
            },
            b"\0" * 12,
        ),
        400,
        "bytes of binary data",
    ),
    (
        "binary bytes left over",
        _binary_body({"inputs": _good_inputs()}, b"\0" * 8),
        400,
        "add up to",
    ),
    (
        "a cut BYTES element",
        _binary_body(
            {
                "inputs": [
                    {
                        "name": "device",
                        "datatype": "BYTES",
                        "shape": [1],
                        "parameters": {"binary_data_size": 6},
                    }
                ]
            },
            struct.pack("<I", 9) + b"mo",
        ),
        400,
        "BYTES element",
    ),
    (
        "BYTES that are not UTF-8",
        _binary_body(
            {
                "inputs": [
                    {
                        "name": "device",
                        "datatype": "BYTES",
                        "shape": [1],
                        "parameters": {"binary_data_size": 6},
                    }
                ]
            },
            struct.pack("<I", 2) + b"\xff\xfe",
        ),
        400,
        "UTF-8",
    ),
    (
        "a header length past the body",
        (b"{}", {"Content-Type": BINARY, "Inference-Header-Content-Length": "99"}),
        400,
        "Inference-Header-Content-Length",
    ),
    (
        "a header length that is not a number",
        (b"{}", {"Content-Type": BINARY, "Inference-Header-Content-Length": "ten"}),
        400,
        "number of bytes",
    ),
    ("an XML body", (b"<inputs/>", {"Content-Type": "application/xml"}), 415, "application/json"),
    (
        "a duplicate key",
        (b'{"inputs": [], "inputs": []}', {"Content-Type": "application/json"}),
        400,
        "duplicate key",
    ),
    (
        "a body that is not JSON",
        (b"{inputs", {"Content-Type": "application/json"}),
        400,
        "not valid JSON",
    ),
]


@pytest.mark.parametrize(
    ("case", "request_", "status", "words"), HOSTILE, ids=[c[0] for c in HOSTILE]
)
def test_every_bad_request_gets_its_4xx_in_the_protocols_error_shape_and_reaches_no_model(
    handler: ModuleType,
    capsys: pytest.CaptureFixture[str],
    case: str,
    request_: Any,
    status: int,
    words: str,
) -> None:
    if isinstance(request_, tuple):
        body, headers = request_
        binary = headers.get("Content-Type") == BINARY
    else:
        body, headers, binary = json.dumps(request_).encode(), {}, False
    capsys.readouterr()
    answer = call(handler, INFER, body, headers, base64_encoded=binary)
    assert answer["statusCode"] == status, answer["body"]
    error = json.loads(answer["body"])
    assert set(error) == {"error"}
    assert words in error["error"], error
    logs = capsys.readouterr().out
    assert "RowsPredicted" not in logs
    assert "Traceback" not in logs


def test_binary_tensors_sent_as_text_are_refused_with_the_header_to_send(
    handler: ModuleType,
) -> None:
    """Without Content-Type application/octet-stream API Gateway hands the body over as
    text, which binary data does not survive: the answer names the header to send."""
    body, json_size = InferenceServerClient.generate_request_body(tensors(RECORDS, True))
    text = body.decode("utf-8", "replace").encode()
    answer = call(handler, INFER, text, {"Inference-Header-Content-Length": str(json_size)})
    assert answer["statusCode"] == 400
    assert "Content-Type: application/octet-stream" in json.loads(answer["body"])["error"]


def test_the_openapi_document_lists_the_protocols_routes(handler: ModuleType) -> None:
    document = json.loads(call(handler, "/openapi.json")["body"])
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        assert path in document["paths"], path
    schema = document["components"]["schemas"]["OipInferRequest"]
    assert schema["properties"]["inputs"]["items"]["properties"]["name"]["enum"] == list(RECORDS[0])


def test_capture_records_protocol_requests_as_predicts(
    handler_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Data capture (and through the same scorer, a shadow's mirror and the judge's metrics)
    sees an OIP request's rows and answers as it sees /predict's."""
    handler_env.setenv("CAPTURE_SAMPLE_RATE", "1")
    handler = import_fresh(ROOT / "functions/predict/app.py", "predict_app_oip_capture")
    capsys.readouterr()
    predicted(handler, RECORDS)
    infer(handler, tensors(RECORDS, True))
    lines = [
        json.loads(line[line.index("{") :])
        for line in capsys.readouterr().out.splitlines()
        if "lambdaserve_capture" in line
    ]
    assert len(lines) == 2
    by_predict, by_oip = lines
    for key in ("features", "rows", "predictions", "probabilities", "model"):
        assert by_oip[key] == by_predict[key], key
