"""Invoking one function version with an event: Lambda Invoke with a qualifier, behind a
small protocol so tests and the local stack can answer it themselves."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


class InvocationError(Exception):
    """The function version raised instead of answering."""


class Invoker(Protocol):
    """Invokes one function version with an event and returns the handler's answer."""

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> Any: ...


class LambdaInvoker:
    """The real thing: Lambda Invoke with a qualifier (a client is passed in, never built)."""

    def __init__(self, lambda_client: LambdaClient) -> None:
        self.client = lambda_client

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> Any:
        reply = self.client.invoke(
            FunctionName=function, Qualifier=qualifier, Payload=json.dumps(event).encode()
        )
        payload = json.loads(reply["Payload"].read() or b"null")
        if reply.get("FunctionError"):
            raise InvocationError(f"version {qualifier} failed: {str(payload)[:500]}")
        return payload
