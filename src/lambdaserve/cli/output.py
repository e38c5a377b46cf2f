"""What commands print: `--json` (one document, its shape stated in JSON_SHAPES, from which the
docs' reference page is generated) or text for people, such as where an alias sends traffic;
and the progress a long wait shows on stderr."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from lambdaserve.alias import AliasState


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text(data))


json_option = click.option(
    "--json", "as_json", is_flag=True, help="print JSON (docs: Reference, Exit codes and --json)"
)

_ALIAS = '`{"alias", "version", "weights": {"VERSION": share}}` (where the alias points now)'
_VERSION = (
    '`{"name", "version", "sha256", "created_at", "published_at", "published_by", '
    '"metrics": {..}, "layer_arn"}`'
)
_ROLLOUT = (
    '`{"model", "model_version", "stable", "canary", "state": "running"|"promoted"|'
    '"rolled_back", "steps", "step", "step_started", "interval_s", "last_verdict", "verdicts"}`'
)
_SHADOW = (
    '`{"state": "running"|"stopped", "function_version", "live_version", "model", '
    '"model_version", "percent", "started", "stopped", "by", "verification"}`'
)
_BATCH = (
    '`{"execution_arn", "status", "rows_in", "rows_scored", "rows_rejected", "parts", '
    '"outputs": [uri], "rejects": [uri], "manifest", "error", "cause"}`'
)
# What each command prints with --json: the one statement of the shapes (the docs' reference
# page is generated from it; a test holds every --json command to an entry).
_BUNDLED = (
    '`{"out", "name", "estimator", "task", "features", "sha256", "metrics": {..}, '
    '"golden_examples", "engine": "sklearn"|"onnx", "parity": {..} or null, '
    '"memory": {"model_bytes", "memory_size_mb"}}`'
)
JSON_SHAPES: dict[str, str] = {
    "bundle": _BUNDLED,
    "sample train": _BUNDLED,
    "publish": _VERSION,
    "versions": f"a list of {_VERSION}, oldest first",
    "show": "the version's manifest (docs: Bundling)",
    "deploy": f"{_ALIAS}; with --steps or --resume: {_ROLLOUT}",
    "promote": _ALIAS,
    "rollback": _ALIAS,
    "status": (
        '`{"function", "alias", "versions": [{"version", "weight", "model": {"name", "version", '
        '"sha256"}, "layers": [arn]}], "rollout": null or the rollout of deploy --steps, '
        '"drift": null or {"recorded", "actual", "summary"}}`: the primary version first; drift '
        "names a move of the alias made outside lambdaserve"
    ),
    "history": (
        '`[{"time", "caller", "function", "alias", "from": {"version", "weights"}, "to": '
        '{"version", "weights"}, "model_version", "reason", "verification": {"status", "key"}, '
        '"judge": {..}}]`, oldest first'
    ),
    "capacity": (
        '`{"function", "alias", "strategy", "reserved_concurrency", "provisioned": {..} or '
        'null, "autoscaling": {..} or null}`'
    ),
    "endpoint": '`{"url", "api_key"}`',
    "region": '`{"region", "source": "--region"|"AWS_REGION"|"AWS_DEFAULT_REGION"|"the profile"}`',
    "batch score": _BATCH,
    "batch status": _BATCH,
    "monitor run": (
        '`[{"model", "version", "window": {"start", "end"}, "rows", "status": "ok"|"drift"|'
        '"insufficient_data"|"no_baseline", "features": [{"name", "measure", "value", "status", '
        '"missing_rate", "baseline_missing_rate", "out_of_range_rate", "decided_by", "reason"}], '
        '"prediction": {as a feature} or null, "report_uri"}]`: always an array, one result per '
        "model version (two during a canary)"
    ),
    "shadow start": _SHADOW,
    "shadow status": _SHADOW,
    "shadow stop": _SHADOW,
    "shadow report": (
        '`{"shadow": {as shadow status}, "verdict": "agree"|"disagree"|"insufficient_data", '
        '"requests", "rows", "refused_rows", "agreement", "class_mix" or "scale", '
        '"probability_diff"|"prediction_diff": {"mean", "p99", "max"}, "latency_ms": {"live", '
        '"shadow": {"p50", "p99"}}, "latency_ratio_p50", "thresholds"}`'
    ),
    "shadow promote": f"{_ALIAS}; with --steps: {_ROLLOUT}",
    "release": (
        '`{"released": true|false, "reason" (when not), "ready" (--check), "alias", "version", '
        f'"weights"}}`; with steps (the options or the lock file\'s): {_ROLLOUT}'
    ),
    "lock": '`{"file", "model": {"name", "version", "sha256"}, "rollout": {"steps", "interval"}}`',
    "local deploy": "as `release` (the release after the change); nothing with --no-release",
    "sql redshift": (
        '`{"function", "arguments": [{"name", "type"}], "returns", "result": "probability"|'
        '"class"|"prediction", "statements": [sql]}`'
    ),
    "sql snowflake": (
        '`{"function", "arguments": [{"name", "type"}], "returns", "result", "role", '
        '"integration", "statements": [sql]}`: the three steps, in order'
    ),
}


def shares_text(state: AliasState) -> str:
    """Where an alias sends traffic, for people: `version 2 (90%), version 3 (10%, canary)`."""
    return state.describe()


def alias_text(alias: str, state: AliasState) -> str:
    """`live: version 2 (90%), version 3 (10%, canary)`."""
    return f"{alias}: {shares_text(state)}"


def alias_result(alias: str, state: AliasState) -> dict[str, Any]:
    """The `--json` shape of every command that moves an alias: `{alias, version, weights}`."""
    return {"alias": alias, **state.to_dict()}


@contextmanager
def ticking(what: str, every_s: float = 30.0) -> Iterator[None]:
    """While a long call runs, say on stderr every `every_s` that it still does."""
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(every_s):
            click.echo(f"{what}: still running after {time.monotonic() - started:.0f} s", err=True)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
