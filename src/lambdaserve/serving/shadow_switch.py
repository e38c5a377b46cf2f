"""One SSM GetParameter without botocore, for the predict function's shadow switch.

Importing boto3 costs a Lambda environment 0.3-0.7 s of CPU, and a background thread doing it
holds the GIL against the first requests a new environment answers (bench/shadow.py measured
a first request 300 ms slower). This is the one call the predict path makes, signed with
Signature Version 4 from the execution role's credentials in the environment, over
`http.client` (about 0.06 s to import). A process that already has boto3 uses boto3."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

TARGET = "AmazonSSM.GetParameter"
CONTENT_TYPE = "application/x-amz-json-1.1"


class SsmReadError(RuntimeError):
    """SSM answered something other than the parameter or its absence."""


def get_parameter(name: str, env: dict[str, str] | None = None, timeout: float = 3.0) -> str | None:
    """The parameter's value, or None if it does not exist (`env`: this environment, and no
    boto3 even if it is imported)."""
    if env is None and "boto3" in sys.modules:  # already paid for: the SDK, with its mocks
        return _with_boto3(name)
    env = dict(os.environ if env is None else env)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = (
        env.get("AWS_ENDPOINT_URL_SSM")
        or env.get("AWS_ENDPOINT_URL")
        or f"https://ssm.{region}.amazonaws.com"
    )
    body = json.dumps({"Name": name}).encode()
    url = urlsplit(endpoint)
    headers = signed_headers(url.netloc, region, body, env, dt.datetime.now(dt.UTC))
    status, answer = _post(url.scheme, url.netloc, body, headers, timeout)
    if status == 200:
        return str(json.loads(answer)["Parameter"]["Value"])
    kind = str(json.loads(answer or b"{}").get("__type", "")).rsplit("#", 1)[-1]
    if kind == "ParameterNotFound":
        return None
    raise SsmReadError(f"SSM answered {status} {kind or answer[:200].decode(errors='replace')}")


def signed_headers(
    host: str, region: str, body: bytes, env: dict[str, str], now: dt.datetime
) -> dict[str, str]:
    """The request's headers with its SigV4 Authorization (service ssm, POST /)."""
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {
        "content-type": CONTENT_TYPE,
        "host": host,
        "x-amz-date": stamp,
        "x-amz-target": TARGET,
    }
    if env.get("AWS_SESSION_TOKEN"):
        headers["x-amz-security-token"] = env["AWS_SESSION_TOKEN"]
    names = sorted(headers)
    canonical_headers = "".join(f"{k}:{headers[k].strip()}\n" for k in names)
    signed_headers = ";".join(names)
    payload = hashlib.sha256(body).hexdigest()
    canonical = "\n".join(["POST", "/", "", canonical_headers, signed_headers, payload])
    scope = f"{day}/{region}/ssm/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + env.get("AWS_SECRET_ACCESS_KEY", "")).encode()
    for part in (day, region, "ssm", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={env.get('AWS_ACCESS_KEY_ID', '')}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def _post(
    scheme: str, host: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    import http.client

    connection: Any = (
        http.client.HTTPSConnection(host, timeout=timeout)
        if scheme == "https"
        else http.client.HTTPConnection(host, timeout=timeout)
    )
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _with_boto3(name: str) -> str | None:
    import boto3

    client = boto3.client("ssm")
    try:
        return str(client.get_parameter(Name=name)["Parameter"]["Value"])
    except client.exceptions.ParameterNotFound:
        return None
