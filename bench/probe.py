"""One measurement in a fresh, isolated Python 3.12 process (run by bench/run.py).

argv[1] names a JSON file: {"mode", "paths", "handler", "model", "events", "repeat"} (mode
"gc": "rounds" and "requests" instead of "repeat"); prints JSON.
Imports nothing beyond the stdlib before the measured part starts.
"""

import json
import statistics
import sys
import time

with open(sys.argv[1]) as fh:
    spec = json.load(fh)
sys.path[:0] = spec["paths"]
clock = time.perf_counter


class Context:
    function_name = "bench"
    function_version = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench:1"
    memory_limit_in_mb = 1024
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 29_000


def load_handler():
    module, name = spec["handler"].rsplit(".", 1)
    return getattr(__import__(module), name)


def check(response):
    if response["statusCode"] != 200:
        raise SystemExit(f"handler answered {response['statusCode']}: {response['body'][:300]}")
    return response


result = {}
mode = spec["mode"]
if mode == "floor":
    start = clock()
    import joblib

    joblib.load(spec["model"])
    result["seconds"] = clock() - start
elif mode == "cold":
    start = clock()
    handler = load_handler()
    check(handler(spec["events"]["1"], Context()))
    result["seconds"] = clock() - start
elif mode == "gc":  # collector pauses: init frozen (gc.freeze) against thawed, interleaved
    import gc

    handler = load_handler()
    result["objects_tracked_after_init"] = len(gc.get_objects())
    paused = [0.0, 0.0]  # the collector's time so far, the start of its current pass

    def timer(phase, info):
        if phase == "start":
            paused[1] = clock()
        else:
            paused[0] += clock() - paused[1]

    gc.callbacks.append(timer)
    for size, event in spec["events"].items():
        for _ in range(20):
            check(handler(event, Context()))
        times = {"thawed": [], "frozen": []}
        pauses = {"thawed": 0.0, "frozen": 0.0}
        for r in range(spec["rounds"]):
            state = ("thawed", "frozen")[r % 2]
            gc.freeze() if state == "frozen" else gc.unfreeze()
            before = paused[0]
            for _ in range(spec["requests"]):
                start = clock()
                handler(event, Context())
                times[state].append(clock() - start)
            pauses[state] += paused[0] - before
        result[size] = {}
        for state, t in times.items():
            t.sort()
            result[size][state] = {
                "median_ms": round(statistics.median(t) * 1000, 3),
                "mean_ms": round(statistics.mean(t) * 1000, 3),
                "p99_ms": round(t[int(len(t) * 0.99)] * 1000, 3),
                "max_ms": round(t[-1] * 1000, 3),
                "collector_ms_per_request": round(pauses[state] / len(t) * 1000, 3),
            }
else:  # warm: per-request cost of the handler and of the bare model on the same rows
    handler = load_handler()
    if spec.get("engine") == "onnx":  # the bare model: the ONNX session on the model's input
        from lambdaserve.serving.engines import category_codes
        from lambdaserve.serving.predictor import Predictor

        onnx = Predictor.load(spec["model_dir"])

        class Bare:
            def predict_proba(self, matrix):
                return onnx.estimator.predict_arrays(category_codes(matrix, onnx.manifest.features))

            predict = predict_proba  # one session run answers both

        model = Bare()
    else:
        import joblib

        model = joblib.load(spec["model"])
    schema = None
    if spec.get("features"):
        from lambdaserve.manifest import parse_features
        from lambdaserve.serving.schema import RequestParser

        schema = RequestParser(parse_features(spec["features"]), max_rows=10**6)
    for size, event in spec["events"].items():
        repeat = spec["repeat"].get(size, 5)
        for _ in range(3):
            check(handler(event, Context()))
        calls = {"handler": lambda e=event: handler(e, Context())}
        if spec.get("stdlib_json"):  # the same handler with the standard library's JSON
            from lambdaserve.shared import jsonio

            def stdlib(e=event, fast=jsonio.orjson):
                jsonio.orjson = None
                try:
                    return handler(e, Context())
                finally:
                    jsonio.orjson = fast

            calls["handler_stdlib_json"] = stdlib
        if schema is not None:
            # The model's own rows: the event's body, or (another protocol's event) the same
            # rows as a predict body.
            rows_body = spec.get("model_bodies", {}).get(size) or json.loads(event["body"])
            matrix = schema.parse(rows_body)
            calls["predict"] = lambda m=matrix: model.predict(m)
            calls["predict_proba"] = lambda m=matrix: model.predict_proba(m)
        # Interleaved, so a slow spell of the machine weighs on every figure alike.
        times = {name: [] for name in calls}
        for _ in range(repeat):
            for name, call in calls.items():
                start = clock()
                call()
                times[name].append(clock() - start)
        entry = {name: statistics.median(values) for name, values in times.items()}
        if schema is not None:
            entry["rows"] = len(matrix)
        result[size] = entry
print(json.dumps(result))
