"""What the local stack's two HTTP servers share: a loopback server that knows the object it
fronts, and a quiet HTTP/1.1 request handler that reads a body and writes a whole response."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Hop-by-hop headers a proxy must not pass on.
HOP_HEADERS = {
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


class FrontServer(ThreadingHTTPServer):
    """A threading HTTP server whose handlers reach the object they front as `server.owner`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[QuietHandler], owner: Any) -> None:
        super().__init__(address, handler)
        self.owner = owner
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; no access log (the stack prints the functions' logs)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_whole(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """One response; for HEAD, the headers only (an upstream Content-Length kept)."""
        self.send_response(status)
        head = self.command == "HEAD"
        for name, value in headers:
            lowered = name.lower()
            if lowered not in HOP_HEADERS and (head or lowered != "content-length"):
                self.send_header(name, value)
        if not (head and any(n.lower() == "content-length" for n, _ in headers)):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
