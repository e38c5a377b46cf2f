"""The local gateway applies API Gateway's documented rules for path parameters and binary
bodies, so a client that works locally works on AWS (and one that would not, does not):

- a request body reaches the function base64-encoded only when its Content-Type is one of the
  API's binary media types; any other body is handed over as UTF-8 text;
- a base64 answer is decoded to bytes only for a request whose first Accept value is a binary
  media type; any other client receives the base64 text.

Source: "Binary media types for REST APIs in API Gateway",
docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html
("API Gateway uses the first Accept header from clients to determine if a response should
return binary media"), and "Content type conversions in API Gateway"
(api-gateway-payload-encodings-workflow.html)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from support import project_template

from lambdaserve.local.gateway import Gateway, Route, binary_media_types_of
from lambdaserve.local.http import free_port
from lambdaserve.local.worker import Reply

PAYLOAD = bytes(range(256))  # not UTF-8


class Echo:
    """A function that answers its body's bytes back, base64-encoded."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, version: str, event: dict[str, Any]) -> tuple[Reply, str, int]:
        self.events.append(event)
        response = {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(PAYLOAD).decode(),
            "isBase64Encoded": True,
        }
        return Reply(response, None, 0.0), "1", 1


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, Echo]]:
    echo = Echo()
    gateway = Gateway(
        free_port(),
        [
            Route("POST", "/v2/models/{name}/infer"),
            Route("POST", "/v2/models/{name}/versions/{version}/infer"),
            Route("GET", "/v2/models/{name}"),
            Route("GET", "/v2/models/special"),
        ],
        lambda: ("1", {}),
        echo,
        binary_media_types=binary_media_types_of(project_template()),
    )
    gateway.start()
    yield gateway, echo
    gateway.stop()


def send(url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
    method = "POST" if body is not None else "GET"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_template_declares_octet_stream_binary() -> None:
    assert binary_media_types_of(project_template()) == ["application/octet-stream"]


def test_path_parameters_reach_the_function_and_a_literal_path_wins(
    gateway: tuple[Gateway, Echo],
) -> None:
    front, echo = gateway
    status, _ = send(f"{front.url}/v2/models/retail%20x/versions/7/infer", b"{}", {})
    assert status == 200
    event = echo.events[-1]
    assert event["pathParameters"] == {"name": "retail x", "version": "7"}
    assert event["resource"] == "/v2/models/{name}/versions/{version}/infer"
    send(f"{front.url}/v2/models/special", None, {})
    assert echo.events[-1]["resource"] == "/v2/models/special"
    assert echo.events[-1]["pathParameters"] is None
    status, _ = send(f"{front.url}/v2/models/a/b/infer", b"{}", {})  # one segment per parameter
    assert status == 403


def test_a_binary_body_survives_only_as_a_binary_media_type(
    gateway: tuple[Gateway, Echo],
) -> None:
    front, echo = gateway
    url = f"{front.url}/v2/models/m/infer"
    send(url, PAYLOAD, {"Content-Type": "application/octet-stream"})
    event = echo.events[-1]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == PAYLOAD
    for content_type in ({}, {"Content-Type": "application/json"}):
        send(url, PAYLOAD, content_type)
        event = echo.events[-1]
        assert event["isBase64Encoded"] is False
        assert event["body"].encode("utf-8") != PAYLOAD  # the bytes did not survive as text


def test_a_binary_answer_is_bytes_only_for_a_client_that_accepts_them(
    gateway: tuple[Gateway, Echo],
) -> None:
    front, _ = gateway
    url = f"{front.url}/v2/models/m/infer"
    _, body = send(url, b"{}", {"Accept": "application/octet-stream"})
    assert body == PAYLOAD
    for accept in ({}, {"Accept": "application/json, application/octet-stream"}):
        _, body = send(url, b"{}", accept)
        assert body == base64.b64encode(PAYLOAD)
