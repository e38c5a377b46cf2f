"""A Python client of a lambdaserve API for services and notebooks.

`Client(url, api_key=...)` (or `sigv4=True` for AuthMode AWS_IAM) and `predict(rows)`, where
rows are records (a list of dicts), a pandas DataFrame or a 2-D numpy array in the model's
feature order. The rows are split into requests under the API's row and payload limits, sent
concurrently (bounded), retried on 429/5xx and connection errors with exponential backoff and
full jitter (honouring Retry-After), and the answers are put back in input order. A refused
request raises one `PredictionError` carrying every refused row's problem details, with row
numbers counted in the caller's input. Never imported by Lambda code (pandas and numpy are
only touched if the caller passes them).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import urllib3

RETRYABLE = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BYTES = 5_000_000  # under Lambda's 6 MB synchronous payload, with headroom


class PredictionError(Exception):
    """Some rows were refused (or the API kept failing): `errors` lists each refused row's
    problems as `{"row", "field", "message"}`, rows counted from 0 in the caller's input;
    `problems` holds the API's problem+json bodies."""

    def __init__(
        self,
        message: str,
        status: int,
        problems: list[dict[str, Any]],
        errors: list[dict[str, Any]],
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems
        self.errors = errors


@dataclass
class Predictions:
    """The answers, in input order."""

    predictions: list[Any]
    probabilities: list[list[float]] | None
    models: list[dict[str, Any]]  # distinct models that answered (two while a canary runs)

    def __len__(self) -> int:
        return len(self.predictions)


@dataclass
class _Chunk:
    start: int
    rows: list[dict[str, Any]]


@dataclass
class Client:
    """One API: its base URL (…/v1) and how to authenticate."""

    url: str
    api_key: str | None = None
    sigv4: bool = False  # sign with the default AWS credentials (AuthMode AWS_IAM)
    region: str | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    concurrency: int = 4
    retries: int = 6
    backoff_seconds: float = 0.2
    timeout_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    _http: urllib3.PoolManager = field(init=False, repr=False)
    _signer: Any = field(init=False, repr=False, default=None)
    _features: list[str] | None = field(init=False, repr=False, default=None)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self._http = urllib3.PoolManager(maxsize=max(1, self.concurrency))
        if self.sigv4:
            import boto3
            from botocore.auth import SigV4Auth

            session = boto3.session.Session()
            credentials = session.get_credentials()
            if credentials is None:
                raise PredictionError("sigv4=True but no AWS credentials were found", 0, [], [])
            self._signer = SigV4Auth(
                credentials, "execute-api", self.region or session.region_name or "us-east-1"
            )

    # -- the public call ---------------------------------------------------------------
    def predict(self, data: Any) -> Predictions:
        """Predictions for every row of `data`, in order (see the module docstring)."""
        rows = self._records(data)
        chunks = self._chunks(rows)
        answers: dict[int, dict[str, Any]] = {}
        refusals: list[tuple[_Chunk, int, dict[str, Any]]] = []
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            for chunk, (status, body) in zip(chunks, pool.map(self._send, chunks), strict=True):
                if status == 200:
                    answers[chunk.start] = body
                else:
                    refusals.append((chunk, status, body))
        if refusals:
            raise self._error(refusals)
        out = Predictions([], None, [])
        for chunk in chunks:
            answer = answers[chunk.start]
            out.predictions += answer["predictions"]
            if "probabilities" in answer:
                out.probabilities = (out.probabilities or []) + answer["probabilities"]
            model = answer.get("model") or {}
            if model not in out.models:
                out.models.append(model)
        return out

    def features(self) -> list[str]:
        """The model's feature names in order (GET /model), for arrays without names."""
        with self._lock:
            if self._features is None:
                status, body = self._request("GET", "/model", None)
                if status != 200:
                    raise PredictionError(f"GET /model answered {status}", status, [body], [])
                self._features = [f["name"] for f in body["features"]]
            return self._features

    # -- shaping ------------------------------------------------------------------------
    def _records(self, data: Any) -> list[dict[str, Any]]:
        if type(data).__name__ == "DataFrame" and hasattr(data, "to_dict"):
            columns = [str(c) for c in data.columns]
            return [_record(columns, values) for values in data.itertuples(index=False, name=None)]
        if hasattr(data, "ndim") and hasattr(data, "tolist"):  # a numpy array
            if data.ndim != 2:
                raise ValueError(f"an array of rows must be 2-D, not {data.ndim}-D")
            names = self.features()
            if data.shape[1] != len(names):
                raise ValueError(
                    f"the array has {data.shape[1]} columns, the model {len(names)} features"
                )
            return [_record(names, values) for values in data.tolist()]
        if isinstance(data, Sequence) and all(isinstance(r, dict) for r in data):
            return [_record(list(r), list(r.values())) for r in data]
        raise TypeError("predict() takes records (a list of dicts), a DataFrame or a 2-D array")

    def _chunks(self, rows: list[dict[str, Any]]) -> list[_Chunk]:
        """Slices under the row limit, halved until each body is under the byte limit."""
        pending = [
            _Chunk(i, rows[i : i + self.max_rows]) for i in range(0, len(rows), self.max_rows)
        ]
        done: list[_Chunk] = []
        while pending:
            chunk = pending.pop(0)
            if len(chunk.rows) > 1 and len(_body(chunk.rows)) > self.max_bytes:
                half = len(chunk.rows) // 2
                pending[:0] = [
                    _Chunk(chunk.start, chunk.rows[:half]),
                    _Chunk(chunk.start + half, chunk.rows[half:]),
                ]
            else:
                done.append(chunk)
        return done

    def _error(self, refusals: list[tuple[_Chunk, int, dict[str, Any]]]) -> PredictionError:
        errors, problems = [], []
        for chunk, _status, problem in sorted(refusals, key=lambda r: r[0].start):
            problems.append(problem)
            for error in problem.get("errors") or []:
                row = error.get("row")
                errors.append({**error, "row": None if row is None else chunk.start + row})
        status = refusals[0][1]
        detail = refusals[0][2].get("detail", "")
        message = f"{len(refusals)} request(s) refused ({status}: {detail})"
        return PredictionError(message, status, problems, errors)

    # -- HTTP -------------------------------------------------------------------------------
    def _send(self, chunk: _Chunk) -> tuple[int, dict[str, Any]]:
        body = _body(chunk.rows)
        for attempt in range(self.retries + 1):
            try:
                status, answer, retry_after = self._request_raw("POST", "/predict", body)
            except urllib3.exceptions.HTTPError as exc:
                status, answer, retry_after = 0, {"detail": f"connection failed: {exc}"}, None
            if status not in RETRYABLE and status != 0:
                return status, answer
            if attempt == self.retries:
                return status, answer
            cap = self.backoff_seconds * 2**attempt
            self.sleep(retry_after if retry_after is not None else random.uniform(0, cap))  # nosec B311
        return status, answer

    def _request(self, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
        status, answer, _ = self._request_raw(method, path, body)
        return status, answer

    def _request_raw(
        self, method: str, path: str, body: bytes | None
    ) -> tuple[int, Any, float | None]:
        url = self.url + path
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        if self._signer is not None:
            from botocore.awsrequest import AWSRequest

            signed = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
            self._signer.add_auth(signed)
            headers = dict(signed.headers.items())
        response = self._http.request(
            method, url, body=body, headers=headers, timeout=self.timeout_seconds, retries=False
        )
        try:
            answer = json.loads(response.data) if response.data else {}
        except ValueError:
            answer = {"detail": response.data[:200].decode("utf-8", "replace")}
        retry_after = response.headers.get("Retry-After")
        return response.status, answer, _seconds(retry_after)


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _record(names: list[str], values: Sequence[Any]) -> dict[str, Any]:
    return {name: _json_value(v) for name, v in zip(names, values, strict=True)}


def _json_value(value: Any) -> Any:
    """numpy scalars as Python values; NaN/None/NaT/pd.NA as missing."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, TypeError):
            value = item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _body(rows: list[dict[str, Any]]) -> bytes:
    # Infinity stays Infinity: the API refuses it with the row's problem, as it should.
    return json.dumps({"instances": rows}).encode()
