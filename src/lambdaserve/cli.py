"""The `lambdaserve` command: a few lines over the library per command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lambdaserve import cli_batch, cli_context, cli_monitor, cli_release, cli_stack
from lambdaserve.bundle import BundleError
from lambdaserve.local.auth import AUTH_MODES, valid_api_key
from lambdaserve.manifest import ManifestError

_FAILURES = (BundleError, ManifestError, OSError)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _api_key(key: str | None) -> str | None:
    try:
        return None if key is None else valid_api_key(key)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--api-key") from exc


def _summary(manifest: Any, out: Path) -> str:
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in manifest.metrics.items())
    return (
        f"bundled {manifest.name} ({manifest.estimator}, {manifest.task}, "
        f"{len(manifest.features)} features) into {out}\n"
        f"sha256 {manifest.sha256}\n"
        + (f"metrics {metrics}\n" if metrics else "")
        + f"{len(manifest.golden_examples)} golden examples recorded"
    )


build_dir_option = click.option(
    "--build-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".aws-sam/build"),
    show_default=True,
    help="the `sam build` output",
)


@click.group()
@click.version_option(package_name="lambdaserve")
@cli_context.location_options
@click.pass_context
def main(ctx: click.Context, /, **locations: Any) -> None:
    """Ship scikit-learn models to AWS Lambda: bundle, run, deploy, roll back."""
    cli_context.configure(ctx, **locations)


@main.group()
def sample() -> None:
    """The synthetic retail purchase-propensity model."""


@sample.command("train")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="folder to write model.joblib and manifest.json into",
)
@click.option("--rows", type=click.IntRange(min=1000), default=20_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
def sample_train(out: Path, rows: int, seed: int) -> None:
    """Train the sample model on seeded synthetic data and write its bundle."""
    from lambdaserve import sample as sample_model

    manifest = sample_model.train(out, rows=rows, seed=seed)
    click.echo(_summary(manifest, out))


@sample.command("data")
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="CSV file to write"
)
@click.option("--rows", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=11, show_default=True)
def sample_data(out: Path, rows: int, seed: int) -> None:
    """Write synthetic customers as CSV (a --sample for `lambdaserve bundle`)."""
    from lambdaserve import sample as sample_model

    sample_model.write_csv(out, rows, seed)
    click.echo(f"wrote {rows} rows to {out}")


@main.command("bundle")
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="model name in the registry, e.g. churn")
@click.option(
    "--features",
    "spec_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="feature spec, JSON or YAML",
)
@click.option(
    "--sample",
    "sample_csv",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of representative rows: golden examples and drift baseline",
)
@click.option("--out", "out", type=click.Path(path_type=Path), required=True)
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME=VALUE",
    help="a training metric to record, repeatable",
)
def bundle_cmd(
    model_file: Path,
    name: str,
    spec_file: Path,
    sample_csv: Path,
    out: Path,
    metrics: tuple[str, ...],
) -> None:
    """Bundle your own fitted estimator (a joblib file) with its feature spec."""
    from lambdaserve.bundle import (
        load_estimator,
        load_feature_spec,
        make_bundle,
        read_sample_csv,
    )
    from lambdaserve.manifest import parse_features

    parsed: dict[str, float] = {}
    for item in metrics:
        key, _, value = item.partition("=")
        try:
            parsed[key] = float(value)
        except ValueError:
            _fail(f"--metric {item!r}: expected NAME=NUMBER")
    try:
        spec = load_feature_spec(spec_file)
        rows = read_sample_csv(sample_csv, parse_features(spec["features"]))
        estimator = load_estimator(model_file)
        manifest = make_bundle(
            estimator, name=name, spec=spec, sample_rows=rows, out_dir=out, metrics=parsed
        )
    except _FAILURES as exc:
        _fail(str(exc))
    click.echo(_summary(manifest, out))


@main.command("invoke")
@build_dir_option
@click.option(
    "--event",
    "event_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--function", "function", default="PredictFunction", show_default=True)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="serve this bundle instead of the built ModelLayer (pins its name, version, sha256)",
)
def invoke_cmd(build_dir: Path, event_file: Path, function: str, model_dir: Path | None) -> None:
    """Run the built handler on an event file in a clean process, as Lambda would (no Docker)."""
    from lambdaserve.local.runtime import BuiltFunction, invoke_isolated

    if not (build_dir / "template.yaml").exists():
        _fail(f"no build in {build_dir}: run `make build` (sam build) first")
    built = BuiltFunction.from_build(build_dir, function)
    model = model_dir or build_dir / "ModelLayer" / "model"
    env = {"MODEL_DIR": str(model.resolve())}
    if model_dir is not None:
        env |= _pins_of(model_dir)
    event = json.loads(event_file.read_text(encoding="utf-8"))
    result = invoke_isolated(built, event, env=env)
    sys.stderr.write(result.logs + ("\n" if result.logs else ""))
    click.echo(
        f"REPORT Init Duration: {result.init_seconds * 1000:.1f} ms  "
        f"Duration: {result.duration_seconds * 1000:.1f} ms",
        err=True,
    )
    click.echo(json.dumps(result.response, indent=2))


def _pins_of(bundle_dir: Path) -> dict[str, str]:
    """What a deploy would pin for this bundle: its name, version and sha256, so the built
    template's own (the sample's) do not refuse it. An unreadable manifest sets nothing: the
    handler then answers 503 with the reason, as it would in Lambda."""
    from lambdaserve import manifest as manifest_io
    from lambdaserve.serving import ExpectedModel

    try:
        return ExpectedModel.of(manifest_io.read(bundle_dir)).env()
    except (ManifestError, OSError):
        return {}


def _parameters(given: tuple[str, ...]) -> dict[str, str]:
    """NAME=VALUE pairs (local_up checks the names against the built template)."""
    out = {}
    for pair in given:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE")
        out[name] = value
    return out


@main.group()
def local() -> None:
    """The whole stack on this machine: no Docker, no AWS account."""


@local.command("up")
@click.option("--port", type=int, default=3000, show_default=True, help="API Gateway port")
@click.option("--aws-port", type=int, default=4566, show_default=True, help="AWS endpoint port")
@build_dir_option
@click.option(
    "--bundle",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="serve this bundle instead of the sample model",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".lambdaserve-local"),
    show_default=True,
)
@click.option("--seed", type=int, default=None, help="seed of the canary traffic split")
@click.option(
    "--auth-mode",
    type=click.Choice(AUTH_MODES),
    default=None,
    help="what the gateway checks: the template's AuthMode unless given; NONE checks nothing",
)
@click.option(
    "--api-key",
    default=None,
    envvar="LAMBDASERVE_API_KEY",
    callback=lambda _ctx, _param, key: _api_key(key),
    help="the key API_KEY mode accepts (at least 20 characters); default: a new random one",
)
@click.option(
    "--parameter",
    "parameters",
    multiple=True,
    metavar="NAME=VALUE",
    callback=lambda _ctx, _param, given: _parameters(given),
    help="a template parameter, as sam deploy --parameter-overrides (e.g. CaptureSampleRate=1)",
)
def local_up(
    port: int,
    aws_port: int,
    build_dir: Path,
    bundle: Path | None,
    state_dir: Path,
    seed: int | None,
    auth_mode: str | None,
    api_key: str | None,
    parameters: dict[str, str],
) -> None:
    """Serve the template's API on 127.0.0.1:PORT through the same path as production."""
    import time

    from lambdaserve.local.process import fresh_state_dir, wait_for_signal
    from lambdaserve.local.stack import LocalCloud, Settings

    if not (build_dir / "template.yaml").exists():
        _fail(f"no build in {build_dir}: run `make build` (sam build) first")
    from lambdaserve.local.template import load_template

    unknown = set(parameters) - set(load_template(build_dir / "template.yaml")["Parameters"])
    if unknown:
        _fail(f"template.yaml has no parameter {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    fresh_state_dir(state_dir)
    settings = Settings(
        build_dir=build_dir,
        state_dir=state_dir.resolve(),
        port=port,
        aws_port=aws_port,
        bundle=bundle,
        seed=seed,
        auth_mode=auth_mode,
        api_key=api_key,
        parameters=parameters,
    )
    stack = LocalCloud(settings, log=lambda line: click.echo(line, err=True))
    try:
        url = stack.start()
        exports = "\n".join(f"  export {k}={v}" for k, v in stack.environment().items())
        auth = stack.curl_auth()
        click.echo(
            f"lambdaserve local stack up in {time.perf_counter() - started:.1f} s\n"
            f"API: {url}   (AuthMode {stack.auth_mode})\n\n"
            f"Point the CLI (and curl) at it:\n{exports}\n\n"
            f"  curl -s{auth} {url}/health\n"
            f"  curl -s{auth} -X POST {url}/predict -H 'Content-Type: application/json' \\\n"
            f"    -d @examples/predict-body.json\n\nCtrl-C stops everything.",
        )
        wait_for_signal()
    finally:
        click.echo("stopping", err=True)
        stack.stop()


for command in (
    *cli_release.COMMANDS,
    *cli_stack.COMMANDS,
    *cli_batch.COMMANDS,
    *cli_monitor.COMMANDS,
):
    main.add_command(command)
