"""The local gateway's AuthMode checks, fed requests signed by botocore's own SigV4 signer (what
boto3, the AWS SDKs' request signers and awscurl do)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdaserve.local.auth import (
    BAD_SIGNATURE,
    FORBIDDEN,
    NOT_AUTHENTICATED,
    UNKNOWN_ACCESS_KEY,
    ApiKeyCheck,
    SigV4Check,
    allow_all,
    make_check,
)

HOST = "127.0.0.1:3000"
KEY = "A" * 20 + "b" * 20
SECRETS = {"testing": "testing-secret"}


def signed(
    method: str = "POST",
    path: str = "/predict",
    body: bytes = b'{"instances": []}',
    *,
    access_key: str = "testing",
    secret: str = "testing-secret",
    region: str = "us-east-1",
    service: str = "execute-api",
    extra: dict[str, str] | None = None,
) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers by lower-case name, body) as the gateway sees a signed request."""
    request = AWSRequest(
        method=method,
        url=f"http://{HOST}{path}",
        data=body,
        headers={"Content-Type": "application/json", **(extra or {})},
    )
    SigV4Auth(Credentials(access_key, secret), service, region).add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = HOST
    return method, path, headers, body


def sigv4(**kwargs: Any) -> SigV4Check:
    return SigV4Check(SECRETS, "us-east-1", **kwargs)


def test_a_request_signed_by_botocore_passes() -> None:
    assert sigv4()(*signed()) is None
    assert sigv4()(*signed("GET", "/health?verbose=1&a=b%20c", b"")) is None


def test_a_session_token_signed_in_passes() -> None:
    request = AWSRequest(method="GET", url=f"http://{HOST}/model")
    SigV4Auth(Credentials("testing", "testing-secret", "tok"), "execute-api", "us-east-1").add_auth(
        request
    )
    headers = {k.lower(): v for k, v in request.headers.items()} | {"host": HOST}
    assert "x-amz-security-token" in headers["authorization"]
    assert sigv4()("GET", "/model", headers, b"") is None


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda m, p, h, b: (m, p, h, b + b" "), BAD_SIGNATURE),
        (lambda m, p, h, b: (m, "/model", h, b), BAD_SIGNATURE),
        (lambda m, p, h, b: ("PUT", p, h, b), BAD_SIGNATURE),
        (lambda m, p, h, b: (m, p, {**h, "host": "127.0.0.1:3001"}, b), BAD_SIGNATURE),
        (lambda m, p, h, b: (m, p, {**h, "content-type": "text/plain"}, b), BAD_SIGNATURE),
        (
            lambda m, p, h, b: (m, p, {k: v for k, v in h.items() if k != "authorization"}, b),
            NOT_AUTHENTICATED,
        ),
    ],
    ids=["body", "path", "method", "host", "signed-header", "no-signature"],
)
def test_anything_changed_after_signing_is_refused(tamper: Any, message: str) -> None:
    assert sigv4()(*tamper(*signed())) == message


def test_wrong_secret_unknown_key_region_and_service_are_refused() -> None:
    assert sigv4()(*signed(secret="not-the-secret")) == BAD_SIGNATURE
    assert sigv4()(*signed(access_key="AKIDSOMEONEELSE")) == UNKNOWN_ACCESS_KEY
    assert "region" in str(sigv4()(*signed(region="eu-west-1")))
    assert "service" in str(sigv4()(*signed(service="lambda")))


def test_a_signature_older_than_five_minutes_has_expired() -> None:
    request = signed()
    assert sigv4(clock=lambda: time.time() + 240)(*request) is None
    assert "expired" in str(sigv4(clock=lambda: time.time() + 360)(*request))
    assert "expired" in str(sigv4(clock=lambda: time.time() - 360)(*request))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/execute-api/aws4_request",
        "AWS4-HMAC-SHA256 Credential=testing, SignedHeaders=host, Signature=zz",
        "",
    ],
)
def test_a_malformed_authorization_header_is_refused(authorization: str) -> None:
    method, path, headers, body = signed()
    assert sigv4()(method, path, {**headers, "authorization": authorization}, body) is not None


def test_unsigned_host_or_date_is_refused() -> None:
    method, path, headers, body = signed()
    headers["authorization"] = headers["authorization"].replace("host;", "")
    assert "host" in str(sigv4()(method, path, headers, body))


def test_api_key_mode_wants_exactly_the_key() -> None:
    check = ApiKeyCheck({KEY})
    assert check("GET", "/health", {"x-api-key": KEY}, b"") is None
    assert check("GET", "/health", {}, b"") == FORBIDDEN
    assert check("GET", "/health", {"x-api-key": KEY[:-1]}, b"") == FORBIDDEN
    assert check("GET", "/health", {"x-api-key": KEY.lower()}, b"") == FORBIDDEN
    with pytest.raises(ValueError, match="20"):
        ApiKeyCheck({"short"})


def test_make_check_follows_the_mode() -> None:
    assert isinstance(make_check("API_KEY", {KEY}, SECRETS, "us-east-1"), ApiKeyCheck)
    assert isinstance(make_check("AWS_IAM", set(), SECRETS, "us-east-1"), SigV4Check)
    assert make_check("NONE", set(), SECRETS, "us-east-1") is allow_all
    with pytest.raises(ValueError, match="AuthMode"):
        make_check("COGNITO", set(), SECRETS, "us-east-1")
