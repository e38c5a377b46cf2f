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
) -> dict[str, Any]:
    """The event API Gateway's Lambda proxy integration would send for this request."""
    url = urlsplit(raw_path)
    query = parse_qs(url.query, keep_blank_values=True)
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": url.path,
        "path": url.path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": url.path,
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
