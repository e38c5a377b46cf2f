"""The predict API's routes over Powertools' REST resolver: parse, call the library, shape."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from functools import partial
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.json_encoder import Encoder

from lambdaserve import __version__
from lambdaserve.problem import (
    CONTENT_TYPE,
    InternalError,
    MalformedRequestError,
    ModelUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    RequestError,
    UnsupportedMediaTypeError,
)
from lambdaserve.serving import mlflow, oip, openapi, warehouse
from lambdaserve.serving.capture import DataCapture
from lambdaserve.serving.mirror import Mirror, ShadowSwitch
from lambdaserve.serving.predictor import ModelLoadError, Predictor
from lambdaserve.shared import jsonio

if TYPE_CHECKING:
    import numpy as np
    from aws_lambda_powertools import Logger, Metrics, Tracer

    from lambdaserve.serving.settings import Settings


def decode_json(body: str | None, max_bytes: int) -> Any:
    """The request body as JSON, or a 400/413 that says why not."""
    if body is None or not body.strip():
        raise MalformedRequestError("the body is empty: send a JSON object")
    if len(body) > max_bytes:
        raise PayloadTooLargeError(f"the body is larger than this endpoint's {max_bytes} bytes")
    raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"the body is larger than this endpoint's {max_bytes} bytes")
    try:
        return jsonio.loads(body, raw)
    except json.JSONDecodeError as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc.msg} at {exc.pos}") from None
    except jsonio.DuplicateKeyError as exc:
        # A duplicated key is ambiguous (which value did the client mean?): refuse, don't guess.
        raise MalformedRequestError(str(exc)) from None
    except RecursionError:
        raise MalformedRequestError("the body is nested too deeply") from None


# What Powertools writes answers with by default: the fallback for what orjson does not write.
_STANDARD_DUMPS = partial(json.dumps, separators=(",", ":"), cls=Encoder)


def answer_json(obj: Any) -> str:
    """A route's answer as compact JSON (orjson where the layer has it)."""
    return jsonio.dumps(obj, _STANDARD_DUMPS)


def _text_body(event: Any, max_bytes: int) -> str:
    """A request's body as text within the size limit, or the 400/413 that says why not."""
    try:
        text = event.decoded_body or ""
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequestError("the body is not valid base64-encoded UTF-8") from None
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise PayloadTooLargeError(f"the body is larger than this endpoint's {max_bytes} bytes")
    return text


def json_body(event: Any, max_bytes: int) -> Any:
    """A request event's JSON body, or the 415/400/413 that says why not."""
    content_type = event.headers.get("content-type") or "application/json"
    media = content_type.split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeError(f"send application/json, not {media[:80]!r}")
    try:
        text = event.decoded_body
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequestError("the body is not valid base64-encoded UTF-8") from None
    return decode_json(text, max_bytes)


class ModelSlot:
    """Loads the model once per container and remembers a failure, so /health can say why."""

    def __init__(self, load: Callable[[], Predictor], logger: Logger, metrics: Metrics) -> None:
        self._load = load
        self._logger = logger
        self._metrics = metrics
        self._state: Predictor | ModelLoadError | None = None

    def preload(self) -> None:
        """Load now (the init phase), remembering a refusal: provisioned concurrency and
        SnapStart then hold a loaded model, and a refused one still answers 503 with why."""
        with suppress(ModelUnavailableError):  # remembered: every request answers it
            self.get()

    def get(self) -> Predictor:
        """The loaded predictor, or a 503."""
        if self._state is None:
            try:
                self._state = self._load()
            except ModelLoadError as exc:
                self._state = exc
                self._logger.error("model refused", extra={"reason": str(exc)})
                self._metrics.add_metric("ModelLoadFailures", MetricUnit.Count, 1)
            else:
                m = self._state.manifest
                self._logger.append_keys(model_name=m.name, model_version=m.version)
                self._logger.info("model loaded", extra={"load_seconds": self._state.load_seconds})
                self._metrics.add_metric(
                    "ModelLoadTime", MetricUnit.Milliseconds, self._state.load_seconds * 1000
                )
        if isinstance(self._state, ModelLoadError):
            raise ModelUnavailableError(str(self._state))
        return self._state


class Subsegments:
    """Powertools Tracer subsegments when asked for, no-ops otherwise (the X-Ray SDK import is
    the single largest cold-start cost after scikit-learn itself)."""

    def __init__(self, tracer: Tracer | None = None) -> None:
        self.tracer = tracer

    @classmethod
    def when(cls, enabled: bool) -> Subsegments:
        """Real subsegments only when asked for (TRACE_SUBSEGMENTS=true)."""
        if not enabled:
            return cls()
        from aws_lambda_powertools import Tracer

        return cls(Tracer())

    def __call__(self, name: str) -> AbstractContextManager[Any]:
        return self.tracer.provider.in_subsegment(name) if self.tracer else nullcontext()

    def capture_lambda_handler(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        return self.tracer.capture_lambda_handler(handler) if self.tracer else handler


def problem_response(error: RequestError, path: str | None = None) -> Response[str]:
    """A problem+json response for a refused request."""
    return Response(
        status_code=error.status,
        content_type=CONTENT_TYPE,
        body=json.dumps(error.problem(instance=path)),
    )


def refused_by_type(metrics: Metrics, slug: str) -> None:
    """RefusedRequests with the problem type as a dimension: the dashboard's 4xx by type."""
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(
        name="RefusedRequests",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={"service": "lambdaserve", "ProblemType": slug},
    ):
        pass


def _answer_errors(app: APIGatewayRestResolver, logger: Logger, metrics: Metrics) -> None:
    """The one place errors become statuses: a refusal its 4xx/503, anything else a 500."""

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        metrics.add_metric("Requests", MetricUnit.Count, 1)
        error = NotFoundError(f"no route {app.current_event.http_method} {app.current_event.path}")
        return problem_response(error, app.current_event.path)

    @app.exception_handler(RequestError)
    def refused(error: RequestError) -> Response[str]:
        if error.status < 500:
            metrics.add_metric("InvalidRequests", MetricUnit.Count, 1)
            refused_by_type(metrics, error.slug)
        logger.info("request refused", extra={"status": error.status, "detail": error.detail})
        return problem_response(error, app.current_event.path)

    @app.exception_handler(Exception)
    def bug(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        metrics.add_metric("InternalErrors", MetricUnit.Count, 1)
        return problem_response(InternalError("an internal error occurred"), app.current_event.path)


class Scorer:
    """POST /predict once the body is read: validate, predict, measure, capture if asked and
    mirror to a shadow if one runs. Feature values reach the logs only through data capture
    (PII erased) and mirror records (never for a model with PII features)."""

    def __init__(
        self,
        metrics: Metrics,
        subsegment: Subsegments,
        capture_rate: float,
        mirror: Mirror | None = None,
    ) -> None:
        self.metrics, self.subsegment = metrics, subsegment
        self.capture_rate, self.mirror = capture_rate, mirror
        self._capture: DataCapture | None = None  # one per container, like its model

    def __call__(self, predictor: Predictor, body: Any, text: str | None = None) -> dict[str, Any]:
        """/predict's answer for a request body (`text`: its JSON, for a shadow's mirror)."""
        with self.subsegment("## validate"):
            matrix = predictor.parse(body)
        labels, probabilities, answer = self._score(predictor, matrix, text)
        return answer if answer is not None else predictor.answer(labels, probabilities)

    def arrays(
        self, predictor: Predictor, matrix: np.ndarray, text: str | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predict a validated matrix: the predictions and probabilities as arrays, measured,
        captured and mirrored as every route's are."""
        labels, probabilities, _ = self._score(predictor, matrix, text)
        return labels, probabilities

    def _score(
        self, predictor: Predictor, matrix: np.ndarray, text: str | None
    ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any] | None]:
        """The arrays, and /predict's answer where capture or a mirror needed it built (so
        /predict does not build it twice)."""
        started = time.perf_counter()
        with self.subsegment("## predict"):
            labels, probabilities = predictor.predict_arrays(matrix)
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.metrics.add_metric("PredictionLatency", MetricUnit.Milliseconds, elapsed_ms)
        self.metrics.add_metric("RowsPredicted", MetricUnit.Count, len(matrix))
        if self.capture_rate <= 0 and self.mirror is None:
            return labels, probabilities, None
        result = predictor.answer(labels, probabilities)
        if self.capture_rate > 0:
            if self._capture is None or self._capture.manifest is not predictor.manifest:
                self._capture = DataCapture(predictor.manifest, self.capture_rate)
            self._capture.record(matrix, result)
        if self.mirror is not None:  # answered, so a shadow may see it too
            self.mirror(predictor.manifest, matrix, result, elapsed_ms, text)
        return labels, probabilities, result


def create_scorer(metrics: Metrics, subsegment: Subsegments, settings: Settings) -> Scorer:
    """The one scorer of a container: every route and the Redshift UDF score through it, so
    metrics, capture and a shadow's mirror see them alike."""
    mirror = None
    if settings.shadow_parameter:
        switch = ShadowSwitch(settings.shadow_parameter, ttl=settings.shadow_refresh_seconds)
        mirror = Mirror(switch)
    return Scorer(metrics, subsegment, settings.capture_rate, mirror)


def _mlflow_routes(
    app: APIGatewayRestResolver,
    model: Callable[[], Predictor],
    score: Scorer,
    metrics: Metrics,
    settings: Settings,
) -> None:
    """MLflow's scoring protocol on the same model and scorer (serving/mlflow.py), in its own
    answers and error shape."""

    @app.post("/invocations")
    def invocations() -> Response[str]:
        """MLflow's scoring protocol, in its own answers and error shape (serving/mlflow.py)."""
        metrics.add_metric("MlflowRequests", MetricUnit.Count, 1)
        try:
            media = mlflow.check_content_type(app.current_event.headers.get("content-type"))
        except mlflow.UnsupportedContentError as exc:
            metrics.add_metric("InvalidRequests", MetricUnit.Count, 1)
            return Response(status_code=415, content_type="text/plain", body=str(exc))
        try:
            text = _text_body(app.current_event, settings.max_body_bytes)
            predictor = model()
            body = mlflow.predict_body(
                media, text, predictor.parser.max_rows, predictor.manifest.features
            )
            answer = score(predictor, body)
        except RequestError as exc:
            metrics.add_metric("InvalidRequests", MetricUnit.Count, 1)
            refused_by_type(metrics, exc.slug)
            status, payload = mlflow.error_answer(exc)
            return Response(status_code=status, content_type="application/json", body=payload)
        # MLflow's json.dump of {"predictions": ...}, to the byte (its default separators).
        predictions = json.dumps({"predictions": answer["predictions"]})
        return Response(status_code=200, content_type="application/json", body=predictions)

    @app.get("/ping")
    def ping() -> Response[str]:
        """MLflow's health check: a newline once the model is loaded."""
        model()
        # MLflow labels its newline application/json, which it is not: text/plain here.
        return Response(status_code=200, content_type="text/plain", body="\n")

    @app.get("/version")
    def version() -> Response[str]:
        """MLflow's /version answers the server's version, unquoted: here, lambdaserve's."""
        return Response(status_code=200, content_type="text/plain", body=__version__)


def raw_body(event: Any, max_bytes: int) -> bytes:
    """A request's body as bytes (base64-decoded where API Gateway encoded it), within the
    size limit, or the 400/413 that says why not."""
    body = event.body or ""
    if event.is_base64_encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedRequestError("the body is not valid base64") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"the body is larger than this endpoint's {max_bytes} bytes")
    return raw


def _accepts_binary(headers: Any) -> bool:
    """Whether API Gateway would hand this request a binary answer: it decides by the first
    Accept header's media type (docs: Binary media types for REST APIs in API Gateway)."""
    accept = (headers.get("accept") or "").split(",")[0].split(";")[0].strip().lower()
    return accept == oip.BINARY_TYPE


def _oip_routes(
    app: APIGatewayRestResolver,
    model: Callable[[], Predictor],
    score: Scorer,
    metrics: Metrics,
    settings: Settings,
) -> None:
    """The Open Inference Protocol (KServe v2) with the binary data extension, on the same
    model and scorer (serving/oip.py), refusals as `{"error": ...}`."""

    def refused(error: RequestError) -> Response[str]:
        if error.status < 500:
            metrics.add_metric("InvalidRequests", MetricUnit.Count, 1)
            refused_by_type(metrics, error.slug)
        status, body = oip.error_answer(error)
        return Response(status_code=status, content_type="application/json", body=body)

    def served(name: str, version: str | None) -> Predictor:
        predictor = model()
        oip.check_model(predictor.manifest, name, version)
        return predictor

    @app.get("/v2")
    def server_metadata() -> dict[str, Any]:
        return oip.server_metadata(__version__)

    @app.get("/v2/health/live")
    def live() -> Response[str]:
        return Response(status_code=200, content_type="application/json", body="")

    @app.get("/v2/health/ready")
    def ready() -> Response[str]:
        try:
            model()
        except RequestError as exc:
            return refused(exc)
        return Response(status_code=200, content_type="application/json", body="")

    def metadata(name: str, version: str | None = None) -> Response[str]:
        try:
            layout = oip.Layout(served(name, version).manifest)
        except RequestError as exc:
            return refused(exc)
        return Response(200, "application/json", answer_json(layout.metadata()))

    def model_ready(name: str, version: str | None = None) -> Response[str]:
        try:
            served(name, version)
        except RequestError as exc:
            return refused(exc)
        return Response(status_code=200, content_type="application/json", body="")

    def infer(name: str, version: str | None = None) -> Response[Any]:
        metrics.add_metric("OipRequests", MetricUnit.Count, 1)
        event = app.current_event
        try:
            oip.check_content_type(event.headers.get("content-type"))
            header_length = event.headers.get(oip.HEADER_LENGTH)
            if header_length is not None and not event.is_base64_encoded:
                raise MalformedRequestError(
                    "binary tensors need 'Content-Type: application/octet-stream': API "
                    "Gateway passes any other body to the function as text, which binary "
                    "data does not survive"
                )
            raw = raw_body(event, settings.max_body_bytes)
            predictor = served(name, version)
            layout = oip.Layout(predictor.manifest)
            request = oip.parse_request(
                *oip.split_body(raw, header_length), predictor.parser.max_rows
            )
            outputs = oip.requested(layout, request, _accepts_binary(event.headers))
            matrix = oip.matrix(layout, predictor.parser, request)
            labels, probabilities = score.arrays(predictor, matrix)
            body, json_size = oip.encode_response(layout, request, outputs, labels, probabilities)
        except RequestError as exc:
            return refused(exc)
        if json_size is None:
            return Response(200, "application/json", body.decode())
        return Response(
            200,
            oip.BINARY_TYPE,
            body,
            headers={"Inference-Header-Content-Length": str(json_size)},
        )

    for prefix in ("/v2/models/<name>", "/v2/models/<name>/versions/<version>"):
        app.get(prefix)(metadata)
        app.get(prefix + "/ready")(model_ready)
        app.post(prefix + "/infer")(infer)


def create_app(
    slot: ModelSlot,
    logger: Logger,
    metrics: Metrics,
    subsegment: Subsegments,
    settings: Settings,
    score: Scorer | None = None,
) -> APIGatewayRestResolver:
    """The resolver with its routes, a request counter and the error answers."""
    app = APIGatewayRestResolver(strip_prefixes=None, serializer=answer_json)

    def count(app: APIGatewayRestResolver, next_middleware: Any) -> Any:
        metrics.add_metric("Requests", MetricUnit.Count, 1)  # every routed API request
        return next_middleware(app)

    app.use(middlewares=[count])

    score = score or create_scorer(metrics, subsegment, settings)

    def model() -> Predictor:
        with subsegment("## load"):
            return slot.get()

    @app.post("/predict")
    def predict() -> dict[str, Any]:
        metrics.add_metric("PredictRequests", MetricUnit.Count, 1)
        body = json_body(app.current_event, settings.max_body_bytes)
        return score(model(), body, app.current_event.decoded_body)

    @app.post("/snowflake")
    def snowflake() -> dict[str, Any]:
        """A Snowflake external function's batch (serving/warehouse.py)."""
        metrics.add_metric("WarehouseRequests", MetricUnit.Count, 1)
        body = json_body(app.current_event, settings.max_body_bytes)
        return warehouse.snowflake_answer(body, model(), score)

    _mlflow_routes(app, model, score, metrics, settings)
    _oip_routes(app, model, score, metrics, settings)

    @app.get("/health")
    def health() -> dict[str, Any]:
        m = model().manifest
        version = app.lambda_context.function_version if app.lambda_context else None
        return {
            "status": "ok",
            "model": {"name": m.name, "version": m.version, "sha256": m.sha256},
            "function_version": version,
        }

    @app.get("/model")
    def describe() -> dict[str, Any]:
        return model().manifest.public()

    @app.get("/openapi.json")
    def document() -> dict[str, Any]:
        predictor = model()
        return openapi.document(predictor.manifest, predictor.parser.max_rows)

    _answer_errors(app, logger, metrics)
    return app
