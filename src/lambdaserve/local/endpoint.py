"""The local AWS endpoint: moto's server behind a proxy that answers Lambda Invoke itself.

moto stores functions, versions and aliases but cannot run code without Docker, so
`POST /2015-03-31/functions/{name}/invocations` is answered here by running the requested
version in a worker; every other request is passed to moto unchanged. Point any AWS client at
it with AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from lambdaserve.local.http import HOP_HEADERS, FrontServer, QuietHandler, free_port
from lambdaserve.local.pool import ThrottledError

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
PROVISIONED_PATH = re.compile(r"^/2019-09-30/functions/(?P<name>[^/]+)/provisioned-concurrency$")
CONFIGURATION_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/configuration$")


# (function name or ARN, qualifier or None, payload) -> (body, function error or None, version)
InvokeHandler = Callable[[str, str | None, bytes], tuple[bytes, str | None, str]]


class AwsEndpoint:
    """moto on a private port, fronted on `port` by a proxy that runs Lambda Invoke."""

    def __init__(
        self,
        port: int,
        invoke: InvokeHandler,
        host: str = "127.0.0.1",
        provisioned: Any = None,  # local/provisioned.py: Lambda's API moto lacks
        # (function, layer ARNs) -> Lambda's refusal of a configuration over its unzipped
        # limit, which moto does not check (local/functions.py: LocalFunctions.oversize)
        oversize: Callable[[str, list[str]], str | None] | None = None,
    ) -> None:
        from moto.server import ThreadedMotoServer

        self.host, self.port = host, port
        self.moto_port = free_port()
        self._moto = ThreadedMotoServer(ip_address=host, port=self.moto_port, verbose=False)
        self.invoke = invoke
        self.provisioned = provisioned
        self.oversize = oversize
        self._server = FrontServer((host, port), _EndpointHandler, self)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
        self._moto.start()
        self._server.thread.start()

    def stop(self) -> None:
        self._server.stop()
        self._moto.stop()


class _EndpointHandler(QuietHandler):
    """Lambda Invoke answered by the endpoint's workers; everything else proxied to moto."""

    server: FrontServer

    def _dispatch(self) -> None:
        body = self.read_body()
        url = urlsplit(self.path)
        match = INVOKE_PATH.match(url.path)
        endpoint: AwsEndpoint = self.server.owner
        provisioned = PROVISIONED_PATH.match(url.path)
        if self.command == "POST" and match:
            self._invoke(unquote(match["name"]), parse_qs(url.query), body)
        elif provisioned and endpoint.provisioned is not None:
            name, _ = function_and_qualifier(unquote(provisioned["name"]), None)
            status, answer = endpoint.provisioned.handle(
                self.command, name, parse_qs(url.query), json.loads(body or b"{}")
            )
            headers = [("Content-Type", "application/json")]
            if answer is not None and "__type" in answer:
                headers.append(("x-amzn-ErrorType", answer["__type"]))
            self.send_whole(status, headers, json.dumps(answer).encode() if answer else b"")
        elif self._refused_as_oversize(url.path, body):
            return
        else:
            self._proxy(body)

    def _refused_as_oversize(self, path: str, body: bytes) -> bool:
        """UpdateFunctionConfiguration with layers whose sum, with the code, is over Lambda's
        unzipped limit: answered with Lambda's own error, and moto never sees it."""
        endpoint: AwsEndpoint = self.server.owner
        configuration = CONFIGURATION_PATH.match(path)
        if self.command != "PUT" or configuration is None or endpoint.oversize is None:
            return False
        try:
            layers = json.loads(body or b"{}").get("Layers")
        except (ValueError, AttributeError):
            return False
        if not isinstance(layers, list):
            return False
        refusal = endpoint.oversize(unquote(configuration["name"]), [str(x) for x in layers])
        if refusal is None:
            return False
        self._error(400, "InvalidParameterValueException", refusal)
        return True

    def _invoke(self, name: str, query: dict[str, list[str]], payload: bytes) -> None:
        endpoint: AwsEndpoint = self.server.owner
        qualifier = query.get("Qualifier", [None])[0]
        try:
            reply, error, version = endpoint.invoke(name, qualifier, payload)
        except LookupError as exc:
            self._error(404, "ResourceNotFoundException", str(exc))
            return
        except ThrottledError as exc:  # what Lambda answers at the concurrency limit
            self._error(429, "TooManyRequestsException", str(exc))
            return
        headers = [("Content-Type", "application/json"), ("X-Amz-Executed-Version", version)]
        if error:
            headers.append(("X-Amz-Function-Error", error))
        self.send_whole(200, headers, reply)

    def _error(self, status: int, kind: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        headers = [("x-amzn-ErrorType", kind), ("Content-Type", "application/json")]
        self.send_whole(status, headers, body)

    def _proxy(self, body: bytes) -> None:
        endpoint: AwsEndpoint = self.server.owner
        upstream = http.client.HTTPConnection(endpoint.host, endpoint.moto_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            self.send_whole(answer.status, answer.getheaders(), answer.read())
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch


def function_and_qualifier(name: str, qualifier: str | None) -> tuple[str, str | None]:
    """A function name, partial or full ARN (with its own qualifier, maybe) as Invoke takes it."""
    parts = name.split(":")
    if len(parts) >= 7:  # arn:aws:lambda:region:account:function:name[:qualifier]
        return parts[6], parts[7] if len(parts) > 7 else qualifier
    if len(parts) == 2:  # name:qualifier
        return parts[0], parts[1]
    return name, qualifier


class EndpointClients:
    """boto3 clients of an endpoint (`direct`: moto itself, skipping the proxy hop).

    Built once and shared: the gateway reads the alias on every request, and a new session
    and client cost far more CPU than the call (botocore clients are thread-safe; sessions
    are not, so they are only made under the lock)."""

    def __init__(self, endpoint: AwsEndpoint, region: str, credentials: dict[str, str]) -> None:
        self.endpoint, self.region, self.credentials = endpoint, region, credentials
        self._clients: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, direct: bool = False) -> Any:
        import boto3

        with self._lock:
            if (name, direct) not in self._clients:
                url = self.endpoint.moto_url if direct else self.endpoint.url
                session = boto3.session.Session(
                    region_name=self.region,
                    aws_access_key_id=self.credentials["aws_access_key_id"],
                    aws_secret_access_key=self.credentials["aws_secret_access_key"],
                )
                self._clients[name, direct] = session.client(  # type: ignore[call-overload]
                    name, endpoint_url=url
                )
            return self._clients[name, direct]
