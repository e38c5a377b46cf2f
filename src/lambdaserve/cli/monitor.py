"""`lambdaserve monitor`: run the drift monitor on demand (the stack's MonitorFunction, through
Lambda Invoke, so it is the same computation as the schedule's) and fetch its HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lambdaserve.cli.context import Refused, emit, json_option, run, services_of
from lambdaserve.monitor.run import ReportStore
from lambdaserve.monitor.window import MonitorError
from lambdaserve.shared.invoker import InvocationError, LambdaInvoker

MARK = {"ok": "ok", "warn": "warn", "drift": "DRIFT"}


def _text(results: list[dict[str, Any]]) -> str:
    if not results:
        return "no captured rows in the window (is capture on? see README, Monitoring)"
    lines = []
    for r in results:
        window = r["window"]
        lines.append(
            f"{r['model']} v{r['version']}: {r['status']} on {r['rows']:,} rows, "
            f"{window['start']} to {window['end']}"
        )
        rows = ([r["prediction"]] if r["prediction"] else []) + r["features"]
        lines += [
            f"  {f.get('name', 'prediction'):<24} {f['measure'].upper():<4} {f['value']:>8.3f}  "
            f"{MARK.get(f['status'], f['status'])}"
            for f in rows
        ]
        if r.get("report_uri"):
            lines.append(f"  report {r['report_uri']}")
    return "\n".join(lines)


@click.group("monitor")
def monitor() -> None:
    """Drift of captured traffic against each model version's baseline."""


@monitor.command("run")
@click.option("--model", "model_name", help="only this model (default: every one captured)")
@click.option("--version", "model_version", help="only this version (with --model)")
@click.option("--window", default=None, help="how far back: 30m, 1h, 7d  [default: 1h]")
@click.option("--since", help="from this ISO 8601 time instead of --window")
@click.option("--fail-on-drift", is_flag=True, help="exit 7 when any verdict is drift")
@json_option
@click.pass_context
def run_monitor(
    ctx: click.Context,
    model_name: str | None,
    model_version: str | None,
    window: str | None,
    since: str | None,
    fail_on_drift: bool,
    as_json: bool,
) -> None:
    """Measure drift now; `--json`: one result object (an array if the window holds several
    model versions, as during a canary)."""
    if model_version and not model_name:
        raise click.UsageError("--version needs --model")
    if window and since:
        raise click.UsageError("pass --window or --since, not both")
    services = services_of(ctx)
    event = {
        k: v
        for k, v in {
            "model": model_name,
            "version": model_version,
            "window": window,
            "since": since,
        }.items()
        if v
    }

    def invoke() -> Any:
        invoker = services.invoker or LambdaInvoker(services.client("lambda"))
        try:
            return invoker.invoke(services.need("monitor_function"), "$LATEST", event)
        except InvocationError as exc:
            raise Refused(f"the monitor failed: {exc}", 1) from None

    answer = run(invoke)
    if not isinstance(answer, dict) or "error" in answer:
        raise Refused(str(answer.get("error") if isinstance(answer, dict) else answer), 2)
    results = answer["results"]
    emit(
        results[0] if as_json and len(results) == 1 else results,
        as_json,
        lambda data: _text(data if isinstance(data, list) else [data]),
    )
    if fail_on_drift and any(r["status"] == "drift" for r in results):
        raise Refused("drift", 7)


@monitor.command("report")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--model", "model_name", help="this model's newest report")
@click.option("--version", "model_version", help="this version's (with --model)")
@click.pass_context
def report(
    ctx: click.Context, out: Path, model_name: str | None, model_version: str | None
) -> None:
    """Save the newest HTML drift report to OUT (one page, open it in a browser)."""
    services = services_of(ctx)
    store = ReportStore(services.client("s3"), services.need("monitoring_bucket"))
    try:
        body = store.latest_html(model_name, model_version)
    except MonitorError as exc:
        raise Refused(str(exc), 2) from None
    out.write_bytes(body)
    click.echo(f"wrote {out} ({len(body):,} bytes)")


COMMANDS = [monitor]
