"""`lambdaserve local up`: the whole stack on this machine (local/stack.py), with the
template's parameters as `sam deploy` takes them."""

from __future__ import annotations

from pathlib import Path

import click

from lambdaserve.local.auth import AUTH_MODES, curl_auth, valid_api_key

build_dir_option = click.option(
    "--build-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".aws-sam/build"),
    show_default=True,
    help="the `sam build` output",
)


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _api_key(key: str | None) -> str | None:
    try:
        return None if key is None else valid_api_key(key)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--api-key") from exc


def _parameters(given: tuple[str, ...]) -> dict[str, str]:
    """NAME=VALUE pairs (local_up checks the names against the built template)."""
    out = {}
    for pair in given:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE")
        out[name] = value
    return out


@click.group()
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
@click.option(
    "--max-environments",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="execution environments per function at most (ReservedConcurrency, if lower, wins)",
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
    max_environments: int,
) -> None:
    """Serve the template's API on 127.0.0.1:PORT through the same path as production."""
    import time

    from lambdaserve.local.process import fresh_state_dir, wait_for_signal
    from lambdaserve.local.settings import MOTO_KEY, REGION, StackSettings
    from lambdaserve.local.stack import LocalCloud

    if not (build_dir / "template.yaml").exists():
        _fail(f"no build in {build_dir}: run `make build` (sam build) first")
    from lambdaserve.local.template import load_template

    unknown = set(parameters) - set(load_template(build_dir / "template.yaml")["Parameters"])
    if unknown:
        _fail(f"template.yaml has no parameter {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    fresh_state_dir(state_dir)
    settings = StackSettings(
        build_dir=build_dir,
        state_dir=state_dir.resolve(),
        port=port,
        aws_port=aws_port,
        bundle=bundle,
        seed=seed,
        auth_mode=auth_mode,
        api_key=api_key,
        parameters=parameters,
        max_environments=max_environments,
    )
    stack = LocalCloud(settings, log=lambda line: click.echo(line, err=True))
    try:
        url = stack.start()
        exports = "\n".join(f"  export {k}={v}" for k, v in stack.environment().items())
        auth = curl_auth(stack.auth_mode, REGION, MOTO_KEY)
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


COMMANDS = [local]
