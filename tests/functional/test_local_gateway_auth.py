"""The local gateway enforces the template's AuthMode over real HTTP before any function runs:
API keys with urllib, SigV4 with curl's own signer and with botocore's."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdaserve.local.auth import make_check
from lambdaserve.local.gateway import Gateway, Route
from lambdaserve.local.http import free_port
from lambdaserve.local.pool import ThrottledError
from lambdaserve.local.worker import Reply
from lambdaserve.problem import TYPE_BASE

KEY = "k3yK3yk3yK3yk3yK3yk3yK3yk3yK3yk3yK3yk3yK"
SECRETS = {"testing": "testing"}


class Served:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, version: str, event: dict[str, Any]) -> tuple[Reply, str, int]:
        self.events.append(event)
        response = {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": "{}",
        }
        return Reply(response, None, 0.0), "1", 1


def _gateway(mode: str) -> Iterator[tuple[Gateway, Served]]:
    served = Served()
    gateway = Gateway(
        free_port(),
        [Route("POST", "/predict"), Route("GET", "/health")],
        lambda: ("1", {}),
        served,
        auth=make_check(mode, {KEY}, SECRETS, "us-east-1"),
    )
    gateway.start()
    yield gateway, served
    gateway.stop()


@pytest.fixture
def keyed() -> Iterator[tuple[Gateway, Served]]:
    yield from _gateway("API_KEY")


@pytest.fixture
def iam() -> Iterator[tuple[Gateway, Served]]:
    yield from _gateway("AWS_IAM")


def call(
    url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=body, method="POST" if body is not None else "GET", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def gist(answer: tuple[int, Any]) -> tuple[int, str, str]:
    """Status, problem type (last part) and detail of an API Gateway refusal."""
    status, body = answer
    assert body["type"].startswith(TYPE_BASE)
    if status != 200:
        assert set(body) == {"type", "title", "status", "detail", "request_id"}
    return status, body["type"][len(TYPE_BASE) :], body["detail"]


def test_api_key_mode_answers_403_forbidden_without_the_key(
    keyed: tuple[Gateway, Served],
) -> None:
    gateway, served = keyed
    assert gist(call(f"{gateway.url}/health")) == (403, "invalid-api-key", "Forbidden")
    assert gist(call(f"{gateway.url}/health", {"x-api-key": KEY[::-1]})) == (
        403,
        "invalid-api-key",
        "Forbidden",
    )
    assert served.events == [], "no function runs for a refused request"
    assert call(f"{gateway.url}/health", {"X-API-Key": KEY}) == (200, {})
    assert call(f"{gateway.url}/predict", {"x-api-key": KEY}, b"{}") == (200, {})
    assert len(served.events) == 2
    # Route first, then auth, as in API Gateway.
    assert gist(call(f"{gateway.url}/admin", {"x-api-key": KEY})) == (
        403,
        "missing-authentication",
        "Missing Authentication Token",
    )


def test_iam_mode_accepts_what_curl_signs_and_nothing_unsigned(
    iam: tuple[Gateway, Served],
) -> None:
    gateway, served = iam
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")

    def curl_call(*args: str) -> tuple[int, Any]:
        out = subprocess.run(
            [curl, "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True
        ).stdout
        body, _, status = out.rpartition("\n")
        return int(status), json.loads(body)

    sign = ["--aws-sigv4", "aws:amz:us-east-1:execute-api"]
    assert curl_call(*sign, "-u", "testing:testing", f"{gateway.url}/health") == (200, {})
    assert curl_call(
        *sign,
        "-u",
        "testing:testing",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"instances": [{"a": 1}]}',
        f"{gateway.url}/predict",
    ) == (200, {})
    assert served.events[-1]["body"] == '{"instances": [{"a": 1}]}'
    status, body = curl_call(*sign, "-u", "testing:wrong", f"{gateway.url}/health")
    assert (status, body["detail"].split(" ")[:4]) == (403, ["The", "request", "signature", "we"])
    assert gist(curl_call(f"{gateway.url}/health")) == (
        403,
        "missing-authentication",
        "Missing Authentication Token",
    )
    assert curl_call("-H", f"x-api-key: {KEY}", f"{gateway.url}/health")[0] == 403
    assert len(served.events) == 2


def test_iam_mode_accepts_a_botocore_signed_post(iam: tuple[Gateway, Served]) -> None:
    gateway, served = iam
    body = b'{"instances": []}'
    request = AWSRequest(
        method="POST",
        url=f"{gateway.url}/predict",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(request)
    assert call(f"{gateway.url}/predict", dict(request.headers.items()), body) == (200, {})
    assert call(f"{gateway.url}/predict", dict(request.headers.items()), body + b" ")[0] == 403
    assert len(served.events) == 1


def test_the_python_client_signs_its_requests_in_aws_iam_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lambdaserve.client import Client, PredictionError

    def answer(version: str, event: dict[str, Any]) -> tuple[Reply, str, int]:
        rows = json.loads(event["body"])["instances"]
        body = {"predictions": [r["x"] for r in rows], "model": {"name": "m", "version": "1"}}
        return Reply({"statusCode": 200, "body": json.dumps(body)}, None, 0.0), "1", 1

    gateway = Gateway(
        free_port(),
        [Route("POST", "/predict")],
        lambda: ("1", {}),
        answer,
        auth=make_check("AWS_IAM", set(), SECRETS, "us-east-1"),
    )
    gateway.start()
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        signed = Client(gateway.url, sigv4=True, region="us-east-1", max_rows=2)
        assert signed.predict([{"x": 1}, {"x": 2}, {"x": 3}]).predictions == [1, 2, 3]
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        with pytest.raises(PredictionError) as caught:
            Client(gateway.url, sigv4=True, region="us-east-1").predict([{"x": 1}])
        assert caught.value.status == 403
        with pytest.raises(PredictionError):
            Client(gateway.url).predict([{"x": 1}])  # unsigned
    finally:
        gateway.stop()


def test_a_throttled_function_answers_503_with_retry_after_as_the_template_maps_it() -> None:
    def throttled(version: str, event: dict[str, Any]) -> tuple[Reply, str, int]:
        raise ThrottledError("Rate Exceeded.")

    gateway = Gateway(
        free_port(), [Route("POST", "/predict")], lambda: ("1", {}), throttled,
        auth=make_check("NONE", set(), {}, "us-east-1"),
    )  # fmt: skip
    gateway.start()
    try:
        request = urllib.request.Request(
            f"{gateway.url}/predict", data=b"{}", method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code == 503
        assert caught.value.headers["Retry-After"] == "1"
        body = json.loads(caught.value.read())
        assert body["type"] == TYPE_BASE + "function-unavailable"
    finally:
        gateway.stop()
