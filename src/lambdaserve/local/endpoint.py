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
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
# Hop-by-hop headers a proxy must not pass on.
_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
}


def free_port() -> int:
    """A port nobody listens on right now, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# (function name or ARN, qualifier or None, payload) -> (body, function error or None, version)
InvokeHandler = Callable[[str, str | None, bytes], tuple[bytes, str | None, str]]


class AwsEndpoint:
    """moto on a private port, fronted on `port` by a proxy that runs Lambda Invoke."""

    def __init__(self, port: int, invoke: InvokeHandler, host: str = "127.0.0.1") -> None:
        from moto.server import ThreadedMotoServer

        self.host, self.port = host, port
        self.moto_port = free_port()
        self._moto = ThreadedMotoServer(ip_address=host, port=self.moto_port, verbose=False)
        self._invoke = invoke
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def moto_url(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
        self._moto.start()
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._moto.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # the stack prints function logs, not access logs

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                head = self.command == "HEAD"  # keeps upstream's Content-Length, sends no body
                for name, value in headers:
                    lowered = name.lower()
                    if lowered not in _HOP and (head or lowered != "content-length"):
                        self.send_header(name, value)
                if not head:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _dispatch(self) -> None:
                body = self._body()
                url = urlsplit(self.path)
                match = INVOKE_PATH.match(url.path)
                if self.command == "POST" and match:
                    self._invoke(unquote(match["name"]), parse_qs(url.query), body)
                else:
                    self._proxy(body)

            def _invoke(self, name: str, query: dict[str, list[str]], payload: bytes) -> None:
                qualifier = query.get("Qualifier", [None])[0]
                try:
                    reply, error, version = endpoint._invoke(name, qualifier, payload)
                except LookupError as exc:
                    message = {"Type": "User", "message": str(exc)}
                    self._send(
                        404,
                        [
                            ("x-amzn-ErrorType", "ResourceNotFoundException"),
                            ("Content-Type", "application/json"),
                        ],
                        json.dumps(message).encode(),
                    )
                    return
                headers = [
                    ("Content-Type", "application/json"),
                    ("X-Amz-Executed-Version", version),
                ]
                if error:
                    headers.append(("X-Amz-Function-Error", error))
                self._send(200, headers, reply)

            def _proxy(self, body: bytes) -> None:
                upstream = http.client.HTTPConnection(endpoint.host, endpoint.moto_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    self._send(answer.status, answer.getheaders(), answer.read())
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _dispatch

        return Handler
