"""Golden examples: the event that replays them to a function version, and the one
comparison of an answer with what the model gave when bundled.

Pure (no AWS): `lambdaserve deploy` and `release`, `publish` (through the
Predictor) and bundling all compare with `compare_golden`. Invoking a version is `invoker.py`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from lambdaserve.manifest import Manifest
from lambdaserve.serving.rest_event import rest_event

VALIDATION_PATH = "/predict"


def golden_event(manifest: Manifest) -> dict[str, Any]:
    """An API Gateway REST proxy event POSTing the golden inputs to /predict."""
    body = json.dumps({"instances": [g.inputs for g in manifest.golden_examples]})
    return rest_event(
        "POST",
        VALIDATION_PATH,
        {"Content-Type": ["application/json"], "User-Agent": ["lambdaserve-validate"]},
        body.encode(),
        stage="validate",
        source_ip="127.0.0.1",
        request_id=f"lambdaserve-validate-{uuid.uuid4()}",
    )


def golden_mismatches(manifest: Manifest, response: Any) -> list[str]:
    """Why a version's answer to `golden_event` is not exactly the bundled one (empty: it is)."""
    if not manifest.golden_examples:
        return ["the manifest has no golden examples to validate with"]
    if not isinstance(response, dict) or "statusCode" not in response:
        return [f"the function did not answer an API Gateway response: {str(response)[:300]}"]
    if response["statusCode"] != 200:
        return [f"status {response['statusCode']}: {str(response.get('body'))[:300]}"]
    try:
        body = json.loads(response.get("body") or "")
    except json.JSONDecodeError:
        return ["the response body is not JSON"]
    if not isinstance(body, dict):
        return ["the response body is not a JSON object"]
    return compare_golden(manifest, body)


def compare_golden(manifest: Manifest, body: dict[str, Any]) -> list[str]:
    """Differences between a predict response body and the manifest's golden outputs."""
    problems = []
    served = body.get("model") or {}
    if served.get("name") != manifest.name or served.get("version") != manifest.version:
        problems.append(
            f"served model {served.get('name')} v{served.get('version')}, "
            f"expected {manifest.name} v{manifest.version}"
        )
    predictions = body.get("predictions") or []
    probabilities = body.get("probabilities")
    if len(predictions) != len(manifest.golden_examples):
        count = len(manifest.golden_examples)
        return [*problems, f"{len(predictions)} predictions for {count} examples"]
    for i, golden in enumerate(manifest.golden_examples):
        if predictions[i] != golden.prediction:
            problems.append(
                f"example {i}: predicted {predictions[i]!r}, bundled {golden.prediction!r}"
            )
        elif golden.probabilities is not None and (
            probabilities is None or probabilities[i] != golden.probabilities
        ):
            problems.append(f"example {i}: probabilities differ from the bundled ones")
    return problems
