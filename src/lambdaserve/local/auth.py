"""What API Gateway checks before it invokes anything, for the local gateway: the template's
AuthMode, an API key (`x-api-key`) or a SigV4 signature (service `execute-api`).

A check returns None to let the request through, or API Gateway's 403 message. SigV4 is
verified with botocore's own signer against the local stack's credentials; IAM policies are
not evaluated (locally, every principal holding those credentials may invoke).
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

# (method, path with query, headers by lower-case name, body) -> None or a 403 message
AuthCheck = Callable[[str, str, Mapping[str, str], bytes], str | None]

AUTH_MODES = ("API_KEY", "AWS_IAM", "NONE")

NOT_AUTHENTICATED = "Missing Authentication Token"
FORBIDDEN = "Forbidden"
UNKNOWN_ACCESS_KEY = "The security token included in the request is invalid."
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)
_ALGORITHM = "AWS4-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


def allow_all(method: str, path: str, headers: Mapping[str, str], body: bytes) -> str | None:
    """AuthMode NONE: a local convenience (the template has no such mode)."""
    return None


def valid_api_key(key: str) -> str:
    """The key, if API Gateway would accept it as an API key's value."""
    if len(key) < 20:
        raise ValueError("API Gateway keys are at least 20 characters")
    return key


class ApiKeyCheck:
    """AuthMode API_KEY: the `x-api-key` header must hold one of the keys."""

    def __init__(self, keys: set[str]) -> None:
        if not keys:
            raise ValueError("API_KEY mode needs a key")
        self.keys = {valid_api_key(k) for k in keys}

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> str | None:
        given = headers.get("x-api-key", "")
        if any(hmac.compare_digest(given.encode(), key.encode()) for key in self.keys):
            return None
        return FORBIDDEN


class SigV4Check:
    """AuthMode AWS_IAM: a valid SigV4 signature for service execute-api in `region`, made
    with one of `secrets` (access key id -> secret key), at most 5 minutes from now."""

    MAX_SKEW_S = 300

    def __init__(
        self,
        secrets: Mapping[str, str],
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secrets, self.region, self.clock = dict(secrets), region, clock

    def __call__(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> str | None:
        header = headers.get("authorization")
        if not header:
            return NOT_AUTHENTICATED
        parsed = _AUTHORIZATION.match(header)
        if parsed is None:
            return (
                f"Authorization header requires the {_ALGORITHM} algorithm with 'Credential', "
                "'SignedHeaders' and 'Signature' parameters."
            )
        access_key, _, scope = parsed["credential"].partition("/")
        secret = self.secrets.get(access_key)
        if secret is None:
            return UNKNOWN_ACCESS_KEY
        date, _, rest = scope.partition("/")
        region, _, rest = rest.partition("/")
        service, _, terminator = rest.partition("/")
        if region != self.region:
            return f"Credential should be scoped to a valid region, not '{region}'."
        if service != "execute-api" or terminator != "aws4_request":
            return "Credential should be scoped to correct service: 'execute-api'."
        signed = parsed["signed"].split(";")
        amz_date = headers.get("x-amz-date", "")
        if "host" not in signed or "x-amz-date" not in signed or not amz_date:
            return "Authorization header requires signed 'host' and 'x-amz-date' headers."
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return f"Invalid X-Amz-Date '{amz_date}'."
        if date != amz_date[:8]:
            return "Credential should be scoped to the date of X-Amz-Date."
        if abs(self.clock() - when.timestamp()) > self.MAX_SKEW_S:
            return f"Signature expired: {amz_date} is more than 5 minutes from now."
        if any(name not in headers for name in signed):
            return BAD_SIGNATURE
        expected = _signature(
            method,
            path,
            {name: headers[name] for name in signed},
            body,
            access_key,
            secret,
            self.region,
            amz_date,
        )
        if not hmac.compare_digest(expected, parsed["signature"]):
            return BAD_SIGNATURE
        return None


def _signature(
    method: str,
    path: str,
    signed_headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret: str,
    region: str,
    amz_date: str,
) -> str:
    """The signature botocore's SigV4 signer makes of exactly these signed headers."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method=method,
        url=f"http://{signed_headers['host']}{path}",
        headers=signed_headers,
        data=body,
    )
    request.context["timestamp"] = amz_date
    # A session token is one more signed header (x-amz-security-token), already in the
    # canonical request; the signer never reads it from the credentials here.
    signer = SigV4Auth(Credentials(access_key, secret), "execute-api", region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def make_check(mode: str, api_keys: set[str], secrets: Mapping[str, str], region: str) -> AuthCheck:
    """The check for one AuthMode."""
    if mode == "API_KEY":
        return ApiKeyCheck(api_keys)
    if mode == "AWS_IAM":
        return SigV4Check(secrets, region)
    if mode == "NONE":
        return allow_all
    raise ValueError(f"AuthMode {mode!r} is not one of {', '.join(AUTH_MODES)}")


def curl_auth(mode: str, region: str, key: str) -> str:
    """What curl needs to pass a local stack's auth check (after its exports), per AuthMode."""
    return {
        "API_KEY": ' -H "x-api-key: $LAMBDASERVE_API_KEY"',
        "AWS_IAM": f" --aws-sigv4 aws:amz:{region}:execute-api -u {key}:{key}",
        "NONE": "",
    }[mode]
