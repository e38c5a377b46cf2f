"""API Gateway (REST, Lambda proxy integration) on loopback, for the template's own routes.

Each HTTP request becomes a REST proxy event; the alias is resolved per request (its version
and RoutingConfig weights, which moto stores but does not apply); the chosen version's worker
answers; the handler's response becomes the HTTP response. Like API Gateway, an unknown route
is a 403, a request that fails the AuthMode's check (API key or SigV4) is a 403 before any
function runs, and a function that fails is a 502, each in the problem+json body the
template's GatewayResponses give them (`problem.GATEWAY_PROBLEMS`).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from lambdaserve.local.auth import (
    FORBIDDEN,
    NOT_AUTHENTICATED,
    AuthCheck,
    allow_all,
)
from lambdaserve.local.http import FrontServer, QuietHandler
from lambdaserve.local.pool import ThrottledError
from lambdaserve.local.worker import Reply, WorkerCrashedError
from lambdaserve.problem import CONTENT_TYPE, GATEWAY_PROBLEMS
from lambdaserve.serving.rest_event import rest_event

VERSION_HEADER = "X-Lambdaserve-Function-Version"
MODEL_HEADER = "X-Lambdaserve-Model-Version"
ENVIRONMENT_HEADER = "X-Lambdaserve-Environment"  # which of the version's environments served
# On a request that started its environment: "init 1234.5" or, SnapStart, "restore 12.3" (ms).
COLD_START_HEADER = "X-Lambdaserve-Cold-Start"


@dataclass(frozen=True)
class Route:
    """One operation of the API: method and path, which may hold `{parameters}` (one path
    segment each, as API Gateway matches them)."""

    method: str
    path: str

    def parameters(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route takes the request, else None."""
        if method != self.method:
            return None
        if "{" not in self.path:
            return {} if path == self.path else None
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path)
        return {k: unquote(v) for k, v in found.groupdict().items()} if found else None


def binary_media(content_type: str | None, binary_media_types: Sequence[str]) -> bool:
    """Whether a Content-Type (or Accept) value names one of the API's binary media types,
    `*` matching any type or subtype, as API Gateway matches them."""
    media = (content_type or "").split(",")[0].split(";")[0].strip().lower()
    return bool(media) and any(fnmatch.fnmatchcase(media, t.lower()) for t in binary_media_types)


def pick_version(primary: str, weights: dict[str, float], draw: float) -> str:
    """The version a request goes to, given a uniform draw in [0, 1)."""
    total = 0.0
    for version, weight in sorted(weights.items()):
        total += weight
        if draw < total:
            return version
    return primary


# (version) -> (reply, model version, environment); raises WorkerCrashedError, ThrottledError
Dispatch = Callable[[str, dict[str, Any]], tuple[Reply, str, int]]
# () -> (primary version, canary weights)
ResolveAlias = Callable[[], tuple[str, dict[str, float]]]


class Gateway:
    """The HTTP server in front of one function's alias."""

    def __init__(
        self,
        port: int,
        routes: list[Route],
        resolve: ResolveAlias,
        dispatch: Dispatch,
        stage: str = "v1",
        host: str = "127.0.0.1",
        seed: int | None = None,
        auth: AuthCheck = allow_all,
        binary_media_types: Sequence[str] = (),
    ) -> None:
        self.routes = [Route(r.method.upper(), r.path) for r in routes]
        self.binary_media_types = tuple(binary_media_types)
        self.resolve, self.dispatch, self.stage = resolve, dispatch, stage
        self.auth = auth
        # Splits canary traffic, not a secret; seedable so tests can repeat it (bandit B311).
        self._random = random.Random(seed)  # nosec B311
        self._random_lock = threading.Lock()
        self._server = FrontServer((host, port), _GatewayHandler, self)
        self.url = f"http://{host}:{port}"

    def start(self) -> None:
        self._server.thread.start()

    def stop(self) -> None:
        self._server.stop()

    def route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route that takes a request, with its path parameters; a literal path wins
        over a templated one, as in API Gateway."""
        for route in sorted(self.routes, key=lambda r: "{" in r.path):
            found = route.parameters(method, path)
            if found is not None:
                return route, found
        return None

    def choose(self) -> str:
        primary, weights = self.resolve()
        with self._random_lock:
            draw = self._random.random()
        return pick_version(primary, weights, draw)


class _GatewayHandler(QuietHandler):
    """One API request: route check, auth check, the alias's pick, the function's answer."""

    server: FrontServer

    def _refuse(
        self, response_type: str, message: str, extra: list[tuple[str, str]] | None = None
    ) -> None:
        """API Gateway's own answer, as template.yaml's GatewayResponses render it."""
        problem = GATEWAY_PROBLEMS[response_type]
        request_id = str(uuid.uuid4())
        body = json.dumps(problem.body(message, request_id)).encode()
        headers = [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", request_id)]
        if problem.retry_after is not None:
            headers.append(("Retry-After", str(problem.retry_after)))
        self.send_whole(problem.status or 502, [*headers, *(extra or [])], body)

    def _event(self, gateway: Gateway, body: bytes) -> dict[str, Any] | None:
        """The proxy event for this request, or None once it has been refused."""
        routed = gateway.route(self.command, urlsplit(self.path).path)
        if routed is None:
            self._refuse("MISSING_AUTHENTICATION_TOKEN", NOT_AUTHENTICATED)
            return None
        route, parameters = routed
        headers: dict[str, list[str]] = {}
        by_name: dict[str, list[str]] = {}  # what the auth check reads
        for name, value in self.headers.items():
            headers.setdefault(name, []).append(value)
            by_name.setdefault(name.lower(), []).append(value)
        flat = {k: ",".join(v) for k, v in by_name.items()}
        refused = gateway.auth(self.command, self.path, flat, body)
        if refused is not None:
            self._refuse(_refusal_type(refused), refused)
            return None
        return rest_event(
            self.command,
            self.path,
            headers,
            body,
            stage=gateway.stage,
            source_ip=self.client_address[0],
            resource=route.path,
            path_parameters=parameters,
            binary=binary_media(flat.get("content-type"), gateway.binary_media_types),
        )

    def _handle(self) -> None:
        gateway: Gateway = self.server.owner
        event = self._event(gateway, self.read_body())
        if event is None:
            return
        version = gateway.choose()
        served = [(VERSION_HEADER, version)]
        try:
            reply, model_version, environment = gateway.dispatch(version, event)
        except ThrottledError:  # Lambda's 429 reaches API Gateway as an integration failure
            self._refuse("INTEGRATION_FAILURE", "Rate Exceeded.", served)
            return
        except WorkerCrashedError:
            self._refuse("DEFAULT_5XX", "Internal server error", served)
            return
        served += [(MODEL_HEADER, model_version), (ENVIRONMENT_HEADER, str(environment))]
        if reply.init_seconds is not None:
            kind = "restore" if reply.restored else "init"
            served.append((COLD_START_HEADER, f"{kind} {reply.init_seconds * 1000:.1f}"))
        response = reply.response
        if reply.error or not isinstance(response, dict) or "statusCode" not in response:
            self._refuse("DEFAULT_5XX", "Internal server error", served)
            return
        # A base64 answer is decoded only for a request whose first Accept value is a binary
        # media type; any other client gets the base64 text (docs: Binary media types for
        # REST APIs in API Gateway, "API Gateway uses the first Accept header").
        decode = binary_media(self.headers.get("Accept"), gateway.binary_media_types)
        status, headers_out, payload = _http_response(response, decode)
        self.send_whole(status, [*headers_out, *served], payload)

    def __getattr__(self, name: str) -> Any:
        # Every method (TRACE, PROPFIND, ...) gets API Gateway's answer for a route or method
        # it does not define, never http.server's 501.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


def _refusal_type(message: str) -> str:
    """The gateway response type API Gateway uses for an auth check's refusal."""
    if message == NOT_AUTHENTICATED:
        return "MISSING_AUTHENTICATION_TOKEN"
    if message == FORBIDDEN:
        return "INVALID_API_KEY"
    return "INVALID_SIGNATURE"  # every other refusal comes from the SigV4 check


def _headers(response: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
    for name, values in (response.get("multiValueHeaders") or {}).items():
        out += [(name, str(v)) for v in values]
    return out


def _body(response: dict[str, Any], decode: bool) -> bytes:
    body = response.get("body") or ""
    if response.get("isBase64Encoded") and decode:
        return base64.b64decode(body)
    return str(body).encode("utf-8")


def _http_response(
    response: dict[str, Any], decode: bool = True
) -> tuple[int, list[tuple[str, str]], bytes]:
    return int(response["statusCode"]), _headers(response), _body(response, decode)


def binary_media_types_of(template: dict[str, Any]) -> list[str]:
    """The APIs' binary media types: their OpenAPI bodies' extension, and SAM's
    BinaryMediaTypes property (`~1` standing for `/`, as SAM writes it)."""
    found: list[str] = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        properties = resource.get("Properties", {})
        body = properties.get("DefinitionBody", {})
        found += body.get("x-amazon-apigateway-binary-media-types", [])
        found += [t.replace("~1", "/") for t in properties.get("BinaryMediaTypes", [])]
    return [t for t in found if isinstance(t, str)]


def routes_of(template: dict[str, Any], function_id: str) -> list[Route]:
    """The API routes that integrate with a function (its alias `live`): the paths of each
    API's OpenAPI body whose integration URI names it, and any Api events it has."""
    routes = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        paths = resource.get("Properties", {}).get("DefinitionBody", {}).get("paths", {})
        for path, methods in paths.items():
            for method, operation in methods.items():
                uri = operation.get("x-amazon-apigateway-integration", {}).get("uri", "")
                target = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)
                if "${" + function_id in target:
                    routes.append(Route(method.upper(), path))
    # A template from before round 3 routed with the function's Api events (SAM's own
    # integrations): a stack of it runs locally too (its migration is tested so).
    events = template["Resources"][function_id]["Properties"].get("Events", {}).values()
    routes += [
        Route(e["Properties"]["Method"].upper(), e["Properties"]["Path"])
        for e in events
        if e.get("Type") == "Api"
    ]
    return routes
