"""MLflow's scoring-server contract (issue 29, part 1) through the predict handler as Lambda runs
it: the four JSON shapes with params, CSV with a header row as pandas writes it, MLflow's 415s
and error shape, /ping and /version. The e2e test points MLflow's own client at the local stack.
"""

from __future__ import annotations

import copy
import io
import json
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from support import ROOT, FakeLambdaContext, import_fresh, load_event

from lambdaserve import __version__

RECORDS = json.loads(load_event("predict.json")["body"])["instances"]


@pytest.fixture
def handler(handler_env: pytest.MonkeyPatch) -> ModuleType:
    return import_fresh(ROOT / "functions/predict/app.py", "predict_app_mlflow")


def _call(
    handler: ModuleType,
    path: str,
    body: str | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("predict.json" if body is not None else "health.json"))
    event["resource"] = event["path"] = path
    event["requestContext"]["resourcePath"] = path
    if body is not None:
        event["body"] = body
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
    response: dict[str, Any] = handler.lambda_handler(event, FakeLambdaContext())
    return response


def _content_type(response: dict[str, Any]) -> str:
    headers = response.get("multiValueHeaders") or {}
    return str(headers["Content-Type"][0])


def _predicted(handler: ModuleType) -> list[Any]:
    answer = _call(handler, "/predict", json.dumps({"instances": RECORDS}))
    predictions: list[Any] = json.loads(answer["body"])["predictions"]
    return predictions


def test_the_four_json_shapes_and_params_answer_mlflows_predictions_to_the_byte(
    handler: ModuleType,
) -> None:
    frame = pd.DataFrame(RECORDS)
    split = json.loads(frame.to_json(orient="split", index=False))
    columns = {name: [r.get(name) for r in RECORDS] for name in frame.columns}
    expected = json.dumps({"predictions": _predicted(handler)})
    for body in (
        {"dataframe_split": split},
        {"dataframe_records": RECORDS},
        {"instances": RECORDS},
        {"inputs": RECORDS},
        {"inputs": columns},
        {"dataframe_records": RECORDS, "params": {"threshold": 0.3}},
    ):
        answer = _call(handler, "/invocations", json.dumps(body))
        assert answer["statusCode"] == 200, (body, answer["body"])
        assert answer["body"] == expected, body  # as MLflow's json.dump writes it
        assert _content_type(answer) == "application/json"


def test_csv_with_a_header_row_as_pandas_writes_it(handler: ModuleType) -> None:
    out = io.StringIO()
    pd.DataFrame(RECORDS).to_csv(out, index=False)  # the second row's discount_pct: empty
    answer = _call(handler, "/invocations", out.getvalue(), "text/csv")
    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"]) == {"predictions": _predicted(handler)}
    utf8 = _call(handler, "/invocations", out.getvalue(), "text/csv; charset=UTF-8")
    assert utf8["statusCode"] == 200


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/json; charset=latin-1", "The scoring server only supports UTF-8"),
        ("application/json; format=pandas-split", "Unrecognized content type parameters: format"),
        ("application/vnd.apache.parquet", "only supports the following content types"),
        ("text/plain", "Got 'text/plain'"),
    ],
)
def test_other_content_types_get_mlflows_415(
    handler: ModuleType, content_type: str, message: str
) -> None:
    answer = _call(handler, "/invocations", json.dumps({"instances": RECORDS}), content_type)
    assert answer["statusCode"] == 415
    assert _content_type(answer) == "text/plain"
    assert message in answer["body"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"records": RECORDS}, "exactly one of the input fields"),
        ({"instances": RECORDS, "inputs": RECORDS}, "exactly one of the input fields"),
        ({"instances": RECORDS, "parms": {}}, "unknown top-level keys: ['parms']"),
        ({"instances": RECORDS, "params": [1]}, "'params' must be an object"),
        ({"instances": [[3, 6, 412.5]]}, "takes named features, not tensors"),
        ({"dataframe_split": {"columns": ["a"], "data": "x"}}, "must be a list of rows"),
    ],
)
def test_bad_bodies_get_mlflows_error_shape_with_status_400(
    handler: ModuleType, body: dict[str, Any], words: str
) -> None:
    answer = _call(handler, "/invocations", json.dumps(body))
    assert answer["statusCode"] == 400
    error = json.loads(answer["body"])
    assert error["error_code"] == "BAD_REQUEST"
    assert words in error["message"]


def test_a_bad_value_is_a_400_naming_the_field_as_mlflow_answers_schema_errors(
    handler: ModuleType,
) -> None:
    bad = [{**RECORDS[0], "device": "toaster"}, RECORDS[1]]
    answer = _call(handler, "/invocations", json.dumps({"dataframe_records": bad}))
    assert answer["statusCode"] == 400
    error = json.loads(answer["body"])
    assert error["error_code"] == "BAD_REQUEST"
    assert error["errors"] == [
        {"row": 0, "field": "device", "message": "unknown category 'toaster'"}
    ]
    empty = _call(handler, "/invocations", "")
    assert empty["statusCode"] == 400
    ragged = _call(handler, "/invocations", "recency_days,device\n3\n", "text/csv")
    assert ragged["statusCode"] == 400
    assert "do not match the header" in json.loads(ragged["body"])["message"]


def test_ping_and_version_answer_as_mlflows_server(handler: ModuleType) -> None:
    ping = _call(handler, "/ping")
    assert (ping["statusCode"], ping["body"]) == (200, "\n")
    version = _call(handler, "/version")
    assert (version["statusCode"], version["body"]) == (200, __version__)


def test_mlflows_own_parser_reads_our_bodies_as_we_do(handler: ModuleType) -> None:
    """The bodies above, read by MLflow's own scoring server code: the frame it would score
    holds what we score."""
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    frame = infer_and_parse_data({"dataframe_records": RECORDS})
    assert list(frame.columns) == list(pd.DataFrame(RECORDS).columns)
    assert frame.to_dict(orient="records")[0] == RECORDS[0]


def test_a_dataframe_as_mlflows_client_dumps_it_with_nan_for_missing(handler: ModuleType) -> None:
    from mlflow.utils.proto_json_utils import dump_input_data

    body = dump_input_data(pd.DataFrame(RECORDS))  # the second row's discount_pct: NaN
    assert "NaN" in body
    answer = _call(handler, "/invocations", body)
    assert answer["statusCode"] == 200, answer["body"]
    assert json.loads(answer["body"]) == {"predictions": _predicted(handler)}
    infinite = body.replace("NaN", "Infinity")
    assert _call(handler, "/invocations", infinite)["statusCode"] == 400
