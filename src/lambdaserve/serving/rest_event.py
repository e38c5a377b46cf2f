"""The API Gateway REST proxy event for one HTTP request: what the local gateway sends a
function, and what a release sends a new version with the golden examples.
Shipped in the serving layer (the hook needs it); builds no client."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit


def rest_event(
    method: str,
    raw_path: str,
    headers: dict[str, list[str]],
    body: bytes,
    *,
    stage: str,
    source_ip: str,
    request_id: str | None = None,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    binary: bool | None = None,
) -> dict[str, Any]:
    """The event API Gateway's Lambda proxy integration would send for this request.

    `binary`: whether the request's Content-Type is one of the API's binary media types, so
    the body reaches the function base64-encoded; otherwise API Gateway hands it over as UTF-8
    text (docs: Binary media types for REST APIs in API Gateway). None: base64 only where the
    body is not UTF-8 (callers that build their own JSON events)."""
    url = urlsplit(raw_path)
    query = parse_qs(url.query, keep_blank_values=True)
    text: str | None
    if binary is None:
        try:
            text, encoded = (body.decode("utf-8") if body else None), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
    elif binary:
        text, encoded = (base64.b64encode(body).decode() if body else None), bool(body)
    else:
        # A text payload: bytes that are not UTF-8 do not survive (how API Gateway mangles
        # them is not documented; here they become U+FFFD, so binary data is visibly lost).
        text, encoded = (body.decode("utf-8", "replace") if body else None), False
    now = time.time()
    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": resource or url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or url.path,
            "httpMethod": method,
            "path": f"/{stage}{url.path}",
            "stage": stage,
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(now * 1000),
            "protocol": "HTTP/1.1",
            "accountId": "123456789012",
            "apiId": "local",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", [""])[-1]},
            "domainName": "localhost",
        },
        "body": text,
        "isBase64Encoded": encoded,
    }
