"""`lambdaserve monitor`: run the drift monitor on demand (the stack's MonitorFunction, through
Lambda Invoke, so it is the same computation as the schedule's) and fetch its HTML report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from lambdaserve.cli.context import services_of
from lambdaserve.cli.exit_codes import CommandError, DriftFoundError
from lambdaserve.cli.output import emit, json_option, ticking
from lambdaserve.monitor.run import ReportStore
from lambdaserve.monitor.window import MonitorError, parse_window
from lambdaserve.shared.invoker import InvocationError

MARK = {"ok": "ok", "warn": "warn", "drift": "DRIFT"}


def _text(results: list[dict[str, Any]]) -> str:
    if not results:
        return "no captured rows in the window (is capture on? docs: Monitoring)"
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
@click.argument("model_name", metavar="NAME", required=False)
@click.argument("model_version", metavar="VERSION", required=False)
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
    """Measure drift now, of every model version captured in the window or of NAME (VERSION);
    `--json`: an array of results, one per model version (two during a canary)."""
    if window and since:
        raise click.UsageError("pass --window or --since, not both")
    # Refused here, in one line, before the function is invoked for nothing.
    parse_window(window, since, dt.datetime.now(dt.UTC))
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
        function = services.need("monitor_function")
        click.echo(f"running the monitor ({function}) on the window's captured rows", err=True)
        try:
            with ticking("the monitor"):
                return services.invoker_of().invoke(function, "$LATEST", event)
        except InvocationError as exc:
            raise CommandError(f"the monitor failed: {exc}") from None

    answer = invoke()
    if not isinstance(answer, dict) or "error" in answer:
        raise MonitorError(str(answer.get("error") if isinstance(answer, dict) else answer))
    results = answer["results"]
    emit(results, as_json, _text)
    if fail_on_drift and any(r["status"] == "drift" for r in results):
        drifted = [f"{r['model']} v{r['version']}" for r in results if r["status"] == "drift"]
        raise DriftFoundError(f"drift in {', '.join(drifted)}")


@monitor.command("report")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.argument("model_name", metavar="NAME", required=False)
@click.argument("model_version", metavar="VERSION", required=False)
@click.pass_context
def report(
    ctx: click.Context, out: Path, model_name: str | None, model_version: str | None
) -> None:
    """Save the newest HTML drift report (of NAME, of its VERSION) to OUT: one page, open it
    in a browser."""
    services = services_of(ctx)
    store = ReportStore(services.client("s3"), services.need("monitoring_bucket"))
    body = store.latest_html(model_name, model_version)
    out.write_bytes(body)
    click.echo(f"wrote {out} ({len(body):,} bytes)")


COMMANDS = [monitor]
