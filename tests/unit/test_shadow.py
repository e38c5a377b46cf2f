"""Shadow deploys, the pure parts: the switch, mirror records, replay and the comparison."""

from __future__ import annotations

import base64
import gzip
import json
import threading
from typing import Any

import pytest

from lambdaserve.bundle import sample
from lambdaserve.judge import shadow_report
from lambdaserve.local.subscriptions import matches
from lambdaserve.serving.mirror import (
    MIRROR,
    ROWS_PER_RECORD,
    SHADOW,
    Mirror,
    ShadowConfig,
    ShadowSwitch,
    columns_and_rows,
)
from lambdaserve.serving.predictor import Predictor
from lambdaserve.serving.replay import mirrored, score_mirrored

RUNNING = {"state": "running", "function_version": "9", "percent": 50, "model": "m"}


class FixedSwitch(ShadowSwitch):
    def __init__(self, config: ShadowConfig | None) -> None:
        super().__init__("/p/shadow", fetch=lambda _: None)
        self.config = config

    def current(self) -> ShadowConfig | None:
        return self.config


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    out = tmp_path_factory.mktemp("shadow-bundle")
    sample.train(out, rows=3000, seed=5)
    return Predictor.load(out)


def _event(lines: list[str]) -> dict[str, Any]:
    data = {
        "logEvents": [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(lines)]
    }
    return {
        "awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()}
    }


def test_the_switch_reads_only_a_running_shadow_with_a_share() -> None:
    assert ShadowConfig.parse(json.dumps(RUNNING)) == ShadowConfig("9", 50.0, "m", "")
    for value in (None, "", "not json", "[]", json.dumps({**RUNNING, "state": "stopped"}),
                  json.dumps({**RUNNING, "percent": 0}), json.dumps({**RUNNING, "percent": 101}),
                  json.dumps({"state": "running", "percent": 5})):  # fmt: skip
        assert ShadowConfig.parse(value) is None, value


def test_the_switch_is_read_off_the_request_path_and_a_failure_means_no_shadow() -> None:
    fetched = threading.Event()
    release = threading.Event()
    now = [0.0]

    def fetch(name: str) -> str:
        assert name == "/p/shadow"
        release.wait(5)  # a slow SSM: the request must not wait for it
        fetched.set()
        return json.dumps(RUNNING)

    switch = ShadowSwitch("/p/shadow", fetch=fetch, ttl=30, clock=lambda: now[0])
    assert switch.current() is None  # the first request: nothing read yet, and no wait
    release.set()
    assert fetched.wait(5)
    for _ in range(100):
        if switch.config is not None:
            break
        threading.Event().wait(0.01)
    assert switch.current() == ShadowConfig("9", 50.0, "m", "")

    def broken(_: str) -> str:
        raise RuntimeError("AccessDenied")

    switch.fetch = broken
    switch.refresh()
    assert switch.config is None


def test_validated_rows_become_the_requests_they_were(predictor: Predictor) -> None:
    records, _ = sample.generate(50, 3)
    matrix = predictor.parse({"instances": records})
    columns, rows = columns_and_rows(predictor.manifest, matrix)
    again = {"dataframe_split": {"columns": columns, "data": rows}}

    def plain(m: Any) -> list[list[Any]]:
        return [[None if v != v else v for v in row] for row in m.tolist()]  # NaN: None

    assert plain(predictor.parse(again)) == plain(matrix)
    assert any(v is None for row in rows for v in row)  # missing: null
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows


def test_live_mirrors_its_share_in_chunks_never_to_itself(predictor: Predictor) -> None:
    records, _ = sample.generate(ROWS_PER_RECORD + 10, 4)
    matrix = predictor.parse({"instances": records})
    result = predictor.predict(matrix)
    lines: list[str] = []
    draws = iter([0.2, 0.7])
    mirror = Mirror(FixedSwitch(ShadowConfig("9", 50.0)), lines.append, lambda: next(draws))
    mirror.function_version = "3"
    mirror(predictor.manifest, matrix, result, 1.5)  # drawn 0.2 < 0.5: mirrored
    mirror(predictor.manifest, matrix, result, 1.5)  # drawn 0.7: not
    parts = [json.loads(line) for line in lines]
    assert [(p["part"], p["parts"]) for p in parts] == [(0, 2), (1, 2)]
    assert {p["request"] for p in parts} == {parts[0]["request"]}
    assert (parts[0][MIRROR], parts[0]["shadow_version"]) == (1, "9")
    assert sum(len(p["rows"]) for p in parts) == len(records)
    assert parts[1]["predictions"] == result["predictions"][ROWS_PER_RECORD:]
    lines.clear()
    mirror.function_version = "9"  # the shadow version itself never mirrors
    mirror(predictor.manifest, matrix, result, 1.5)
    mirror.switch = FixedSwitch(None)
    mirror.function_version = "3"
    mirror(predictor.manifest, matrix, result, 1.5)
    assert lines == []


def test_the_shadow_scores_its_records_and_reports_refusals(predictor: Predictor) -> None:
    records, _ = sample.generate(30, 6)
    matrix = predictor.parse({"instances": records})
    result = predictor.predict(matrix)
    lines: list[str] = []
    mirror = Mirror(FixedSwitch(ShadowConfig("9", 100.0)), lines.append)
    mirror(predictor.manifest, matrix, result, 2.0)
    bad = json.loads(lines[0])
    bad["rows"][0][bad["columns"].index("recency_days")] = "soon"
    other = {**json.loads(lines[0]), "shadow_version": "8"}
    event = _event(["START RequestId: x", lines[0], json.dumps(bad), json.dumps(other), "{oops"])
    out: list[str] = []
    assert score_mirrored(predictor, event, "9", out.append) == {
        "records": 2, "rows": 60, "skipped": 1,
    }  # fmt: skip
    good, refused = (json.loads(line) for line in out)
    assert good[SHADOW] == 1
    assert good["shadow"]["predictions"] == result["predictions"]
    assert good["live"]["predictions"] == result["predictions"]
    assert refused["shadow"]["refused"]["status"] == 422
    assert list(mirrored({"awslogs": {"data": "not base64 gzip"}})) == []


def _record(
    live: list[int], shadow: list[int], ms: tuple[float, float] = (1.0, 2.0)
) -> dict[str, Any]:
    probs = [[1 - v, v] for v in live]
    return {
        SHADOW: 1, "request": str(id(live)), "parts": 1, "rows": len(live),
        "live": {"predictions": live, "probabilities": probs, "latency_ms": ms[0]},
        "shadow": {"predictions": shadow, "probabilities": [[1 - v, v] for v in shadow],
                   "latency_ms": ms[1]},
    }  # fmt: skip


def test_agreement_verdicts() -> None:
    same = [_record([0, 1] * 100, [0, 1] * 100) for _ in range(2)]
    result = shadow_report.compare(same)
    assert (result["verdict"], result["agreement"], result["rows"]) == ("agree", 1.0, 400)
    assert result["latency_ratio_p50"] == 2.0
    shifted = [_record([0, 1] * 100, [0, 0] * 100) for _ in range(2)]
    result = shadow_report.compare(shifted)
    assert (result["verdict"], result["agreement"]) == ("disagree", 0.5)
    assert result["class_mix"]["1"] == {"live": 0.5, "shadow": 0.0}
    assert result["probability_diff"]["max"] == 1.0
    assert shadow_report.compare(same[:1], min_rows=500)["verdict"] == "insufficient_data"
    refusal = {**same[0], "shadow": {"refused": {"status": 422, "detail": "x"}}}
    assert shadow_report.compare([*same, refusal])["verdict"] == "disagree"
    page = shadow_report.render({"shadow": {**RUNNING, "model_version": "2", "started": "t"},
                                 **shadow_report.compare(shifted)})  # fmt: skip
    assert "disagree" in page
    assert "Class mix" in page


def test_the_local_subscription_applies_lambdaservess_patterns() -> None:
    pattern = f"{{ $.{MIRROR} = 1 }}"
    assert matches(pattern, json.dumps({MIRROR: 1}, separators=(",", ":")))
    assert not matches(pattern, '{"lambdaserve_capture":1}')
    both = "{ ($.lambdaserve_capture = 1) || ($.lambdaserve_shadow = 1) }"
    assert matches(both, '{"lambdaserve_shadow":1,"x":2}')
    assert matches("", "anything")


def test_the_switchs_signed_request_is_botocores_sigv4(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from lambdaserve.serving.shadow_switch import CONTENT_TYPE, TARGET, signed_headers

    now = dt.datetime(2026, 11, 28, 3, 4, 5, tzinfo=dt.UTC)
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_SESSION_TOKEN": "token"}  # fmt: skip
    body = json.dumps({"Name": "/lambdaserve/prod/shadow"}).encode()
    ours = signed_headers("ssm.eu-west-1.amazonaws.com", "eu-west-1", body, env, now)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET}
    url = "https://ssm.eu-west-1.amazonaws.com/"
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    botocore.auth.SigV4Auth(Credentials("AKID", "secret", "token"), "ssm", "eu-west-1").add_auth(
        request
    )
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


def test_the_switch_reads_ssm_over_http_without_the_sdk() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    from lambdaserve.local.http import free_port
    from lambdaserve.serving.shadow_switch import SsmReadError, get_parameter

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # fmt: skip
        ssm = boto3.client("ssm", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
        ssm.put_parameter(Name="/p/shadow", Value=json.dumps(RUNNING), Type="String")
        assert ShadowConfig.parse(get_parameter("/p/shadow", env)) == ShadowConfig("9", 50.0, "m")
        assert get_parameter("/p/none", env) is None
    finally:
        server.stop()
    denied = _answering(403, b'{"__type":"AccessDeniedException","message":"no"}')
    try:
        with pytest.raises(SsmReadError, match="403 AccessDeniedException"):
            get_parameter("/p/shadow", {**env, "AWS_ENDPOINT_URL": denied.url})
    finally:
        denied.shutdown()


class _Answering:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _answering(status: int, body: bytes) -> _Answering:
    """An HTTP server that answers every POST with `status` and `body` (what IAM says no as)."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return _Answering(server)


def test_booleans_go_back_as_true_and_false() -> None:
    from types import SimpleNamespace

    import numpy as np

    manifest: Any = SimpleNamespace(
        features=[SimpleNamespace(name="member", type="boolean"),
                  SimpleNamespace(name="spend", type="number")]
    )  # fmt: skip
    matrix = np.array([[1.0, float("nan")], [0.0, 2.5], [float("nan"), 1.0]], dtype=object)
    assert columns_and_rows(manifest, matrix) == (
        ["member", "spend"], [[True, None], [False, 2.5], [None, 1.0]],
    )  # fmt: skip


def test_a_request_is_mirrored_as_it_came_on_one_line_and_replayed(predictor: Predictor) -> None:
    records, _ = sample.generate(15, 8)
    body = {"instances": records}
    text = json.dumps(body, indent=2)  # a client's pretty-printed body: newlines
    matrix = predictor.parse(body)
    result = predictor.predict(matrix)
    lines: list[str] = []
    Mirror(FixedSwitch(ShadowConfig("9", 100.0)), lines.append)(
        predictor.manifest, matrix, result, 0.5, text
    )
    (line,) = lines
    assert line.endswith("}\n")
    assert line.count("\n") == 1
    record = json.loads(line)
    assert record["body"] == body
    assert (record["parts"], record["predictions"]) == (1, result["predictions"])
    out: list[str] = []
    assert score_mirrored(predictor, _event([line.strip()]), "9", out.append)["rows"] == 15
    assert json.loads(out[0])["shadow"]["predictions"] == result["predictions"]
