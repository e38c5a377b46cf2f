"""Client-facing errors and their RFC 9457 problem+json form, mapped to a status in one place."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://lambdaserve.dev/problems/"
# Per-field errors listed in one response; the rest are counted, so a 10,000-row batch of
# garbage cannot produce a response larger than the request.
MAX_LISTED_ERRORS = 100


@dataclass(frozen=True)
class FieldError:
    """One problem with one value: row index (None for the whole body), field name, message."""

    row: int | None
    field: str | None
    message: str


class RequestError(Exception):
    """A request the service refuses; each subclass is one status code."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str] = "bad-request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem+json body."""
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [asdict(e) for e in self.errors[:MAX_LISTED_ERRORS]]
            if len(self.errors) > MAX_LISTED_ERRORS:
                body["errors_omitted"] = len(self.errors) - MAX_LISTED_ERRORS
        return body


class MalformedRequestError(RequestError):
    """The body is not JSON, or not in either request shape."""

    status = 400
    title = "Malformed request"
    slug = "malformed-request"


class NotFoundError(RequestError):
    """No such route."""

    status = 404
    title = "Not found"
    slug = "not-found"


class PayloadTooLargeError(RequestError):
    """Too many rows, or too many bytes."""

    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class UnsupportedMediaTypeError(RequestError):
    """The body is declared as something other than JSON."""

    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class SchemaViolationError(RequestError):
    """Well-formed JSON whose values break the model's feature schema."""

    status = 422
    title = "Schema violation"
    slug = "schema-violation"


class ModelUnavailableError(RequestError):
    """The model could not be loaded (missing, tampered, or built for other frameworks)."""

    status = 503
    title = "Model not loaded"
    slug = "model-not-loaded"


class InternalError(RequestError):
    """A bug of ours; the body never carries the traceback."""

    status = 500
    title = "Internal error"
    slug = "internal-error"


@dataclass(frozen=True)
class GatewayProblem:
    """An answer API Gateway gives itself, before or instead of the function (its
    GatewayResponses), in the same problem+json shape as ours."""

    response_type: str  # API Gateway's gateway response type
    status: int | None  # None: the DEFAULT_* types cover several statuses
    slug: str
    title: str
    retry_after: int | None = None  # seconds, for answers a client should retry
    set_status: bool = False  # API Gateway's own status for this type is not the one we want

    def template(self) -> str:
        """The response template API Gateway renders (VTL): `messageString` is the message
        already quoted as a JSON string."""
        status = "" if self.status is None else f', "status": {self.status}'
        return (
            f'{{"type": "{TYPE_BASE}{self.slug}", "title": "{self.title}"{status}, '
            '"detail": $context.error.messageString, "request_id": "$context.requestId"}'
        )

    def body(self, message: str, request_id: str) -> dict[str, Any]:
        """What API Gateway's rendering of `template()` parses to (the local gateway's answer)."""
        rendered = self.template()
        rendered = rendered.replace("$context.error.messageString", json.dumps(message))
        rendered = rendered.replace("$context.requestId", request_id)
        parsed: dict[str, Any] = json.loads(rendered)
        return parsed


GATEWAY_PROBLEMS = {
    p.response_type: p
    for p in (
        GatewayProblem("MISSING_AUTHENTICATION_TOKEN", 403, "missing-authentication", "Forbidden"),
        GatewayProblem("INVALID_API_KEY", 403, "invalid-api-key", "Forbidden"),
        GatewayProblem("INVALID_SIGNATURE", 403, "invalid-signature", "Forbidden"),
        GatewayProblem("ACCESS_DENIED", 403, "access-denied", "Forbidden"),
        GatewayProblem("EXPIRED_TOKEN", 403, "expired-token", "Forbidden"),
        GatewayProblem("REQUEST_TOO_LARGE", 413, "payload-too-large", "Payload too large"),
        GatewayProblem("THROTTLED", 429, "throttled", "Too many requests", retry_after=1),
        # A function Lambda throttled (or could not run) would reach a proxy client as a bare
        # 500: it is a 503 to retry, in our shape.
        GatewayProblem(
            "INTEGRATION_FAILURE",
            503,
            "function-unavailable",
            "Service unavailable",
            retry_after=1,
            set_status=True,
        ),
        GatewayProblem("QUOTA_EXCEEDED", 429, "quota-exceeded", "Too many requests"),
        GatewayProblem("DEFAULT_4XX", None, "gateway-refused", "Refused by API Gateway"),
        GatewayProblem("DEFAULT_5XX", None, "gateway-error", "API Gateway error"),
    )
}


def gateway_responses() -> dict[str, Any]:
    """template.yaml's `GatewayResponses`, derived from the table above (a test compares)."""
    out: dict[str, Any] = {}
    for p in GATEWAY_PROBLEMS.values():
        headers = {"Content-Type": f"'{CONTENT_TYPE}'"}
        if p.retry_after is not None:
            headers["Retry-After"] = f"'{p.retry_after}'"
        answer: dict[str, Any] = {
            "ResponseParameters": {"Headers": headers},
            "ResponseTemplates": {"application/json": p.template()},
        }
        if p.set_status:
            answer["StatusCode"] = str(p.status)
        out[p.response_type] = answer
    return out
