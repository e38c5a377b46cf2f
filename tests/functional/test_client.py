"""The Python client against a small API on loopback that misbehaves on purpose: throttles,
fails, answers out of order. The real API is the e2e test's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from lambdaserve.client import Client, PredictionError

FEATURES = ["a", "b"]


class FakeApi(BaseHTTPRequestHandler):
    """POST /predict: prediction = a + b per row, probabilities [[b, a]]; scripted failures."""

    protocol_version = "HTTP/1.1"
    script: ClassVar[list[tuple[int, dict[str, str]]]] = []  # answers before the real ones
    bodies: ClassVar[list[int]] = []  # rows per request received
    sizes: ClassVar[list[int]] = []  # bytes per request received
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(200, {"features": [{"name": n} for n in FEATURES]})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        rows = json.loads(raw)["instances"]
        with self.lock:
            scripted = self.script.pop(0) if self.script else None
            self.bodies.append(len(rows))
            self.sizes.append(len(raw))
        if scripted:
            self._answer(scripted[0], {"detail": "scripted"}, scripted[1])
            return
        time.sleep(0.05 * (rows[0]["a"] % 3))  # later chunks may finish first
        bad = [i for i, r in enumerate(rows) if r["a"] is not None and r["a"] < 0]
        if bad:
            errors = [{"row": i, "field": "a", "message": "must be at least 0"} for i in bad]
            self._answer(422, {"status": 422, "detail": "bad", "errors": errors})
            return
        self._answer(
            200,
            {
                "predictions": [(r["a"] or 0) + r["b"] for r in rows],
                "probabilities": [[r["b"], r["a"]] for r in rows],
                "model": {"name": "m", "version": "1"},
            },
        )


@pytest.fixture
def api() -> Iterator[str]:
    FakeApi.script, FakeApi.bodies, FakeApi.sizes = [], [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _client(url: str, **kwargs: Any) -> Client:
    return Client(url, api_key="k", sleep=lambda _: None, **kwargs)


def test_rows_are_split_sent_concurrently_and_answered_in_input_order(api: str) -> None:
    rows = [{"a": i, "b": 1} for i in range(1_000)]
    result = _client(api, max_rows=64, concurrency=8).predict(rows)
    assert result.predictions == [i + 1 for i in range(1_000)]
    assert result.probabilities is not None
    assert result.probabilities[999] == [1, 999]
    assert max(FakeApi.bodies) == 64
    assert sum(FakeApi.bodies) == 1_000
    assert result.models == [{"name": "m", "version": "1"}]


def test_a_body_over_the_byte_limit_is_halved_until_it_fits(api: str) -> None:
    rows = [{"a": i, "b": 1} for i in range(400)]
    _client(api, max_bytes=2_000).predict(rows)
    assert max(FakeApi.sizes) <= 2_000
    assert len(FakeApi.sizes) >= 4
    assert sum(FakeApi.bodies) == 400


def test_throttles_and_5xx_are_retried_with_retry_after_honoured(api: str) -> None:
    FakeApi.script = [(429, {"Retry-After": "0.5"}), (503, {}), (502, {})]
    waits: list[float] = []
    client = Client(api, sleep=waits.append, max_rows=10, concurrency=1)
    assert client.predict([{"a": 1, "b": 2}]).predictions == [3]
    assert waits[0] == 0.5  # Retry-After, then jittered backoff under a growing cap
    assert 0 <= waits[1] <= 0.4
    assert 0 <= waits[2] <= 0.8


def test_retries_give_up_with_the_last_answer(api: str) -> None:
    FakeApi.script = [(503, {})] * 10
    with pytest.raises(PredictionError) as caught:
        _client(api, retries=2).predict([{"a": 1, "b": 2}])
    assert caught.value.status == 503


def test_refused_rows_come_back_in_one_error_with_the_callers_row_numbers(api: str) -> None:
    rows = [{"a": i, "b": 0} for i in range(100)]
    rows[5]["a"], rows[77]["a"] = -1, -2
    with pytest.raises(PredictionError) as caught:
        _client(api, max_rows=10).predict(rows)
    assert caught.value.status == 422
    assert [(e["row"], e["field"]) for e in caught.value.errors] == [(5, "a"), (77, "a")]
    assert len(caught.value.problems) == 2


def test_dataframes_and_arrays_are_sent_as_records_with_missing_values_as_null(api: str) -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": np.array([1, 2, 3], dtype=np.int64)})
    assert _client(api).predict(frame).predictions == [2.0, 2, 6.0]
    array = np.array([[1.0, 2.0], [np.nan, 5.0]])
    assert _client(api).predict(array).predictions == [3.0, 5.0]
    with pytest.raises(ValueError, match="3 columns"):
        _client(api).predict(np.zeros((2, 3)))
