"""`lambdaserve local up`: the whole stack on this machine (local/stack.py), with the
template's parameters as `sam deploy` takes them; and `lambdaserve invoke`: one built handler
on one event, as `sam local invoke` without Docker."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from lambdaserve.local.auth import AUTH_MODES, curl_auth, valid_api_key
from lambdaserve.manifest import ManifestError

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


def state_dir_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(".lambdaserve-local"),
        show_default=True,
        help=help_text,
    )


parameters_option = click.option(
    "--parameter",
    "parameters",
    multiple=True,
    metavar="NAME=VALUE",
    callback=lambda _ctx, _param, given: _parameters(given),
    help="a template parameter, as `sam deploy --parameter-overrides` (repeatable; e.g. "
    "CaptureSampleRate=1)",
)


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
@state_dir_option("where the stack keeps its state (wiped at start)")
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
@parameters_option
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
        body = example_body(bundle, state_dir) if bundle else Path("examples/predict-body.json")
        click.echo(
            f"lambdaserve local stack up in {time.perf_counter() - started:.1f} s\n"
            f"API: {url}   (AuthMode {stack.auth_mode})\n\n"
            f"Point the CLI (and curl) at it:\n{exports}\n\n"
            f"  curl -s{auth} {url}/health\n"
            f"  curl -s{auth} -X POST {url}/predict -H 'Content-Type: application/json' \\\n"
            f"    -d @{body}\n\n"
            f"State lives in {state_dir} and is not kept across restarts: what you publish is\n"
            "gone when the stack stops.\nCtrl-C stops everything.",
        )
        wait_for_signal()
    finally:
        click.echo("stopping", err=True)
        stack.stop()


@local.command("deploy")
@parameters_option
@click.option(
    "--template",
    "template_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="apply this template instead of the one applied last (code and layers stay the build's)",
)
@state_dir_option("the running stack's (as given to `local up`)")
@click.option(
    "--no-release",
    is_flag=True,
    help="`sam deploy` alone: change the stack, leave `live` (a later `release` carries it)",
)
@click.option(
    "--adopt",
    is_flag=True,
    help="record a move of live made outside lambdaserve, then release (once, after migrating)",
)
@click.option("--json", "as_json", is_flag=True, help="print the release's JSON")
@click.pass_context
def local_deploy(
    ctx: click.Context,
    parameters: dict[str, str],
    template_file: Path | None,
    state_dir: Path,
    no_release: bool,
    adopt: bool,
    as_json: bool,
) -> None:
    """What `make deploy` does, on the running local stack: asks whether a release may start,
    applies the change as `sam deploy` would (CloudFormation's rules: local/cloudformation.py),
    then releases live's model on the new configuration through the judged path."""
    from lambdaserve.cli.context import services_of
    from lambdaserve.cli.gitops import release_model
    from lambdaserve.cli.rollout import RolloutOptions
    from lambdaserve.local.cloudformation import CloudFormation, DeployedStack
    from lambdaserve.local.settings import stack_record
    from lambdaserve.local.template import load_template

    record_file = stack_record(state_dir)
    if not record_file.exists():
        _fail(f"no local stack in {state_dir}: start one with `lambdaserve local up`")
    record = DeployedStack.load(record_file)
    template = load_template(template_file) if template_file else record.template
    unknown = set(parameters) - set(template.get("Parameters", {}))
    if unknown:
        _fail(f"the template has no parameter {', '.join(sorted(unknown))}")
    services = services_of(ctx)
    services.deployer().ready(adopt)  # a canary, a release in flight: refused, unchanged
    cloudformation = CloudFormation(
        services.client("lambda"), services.client("ssm"), services.session.region_name
    )
    record, done = cloudformation.update(record, template, {**record.parameters, **parameters})
    record.save(record_file)
    for line in done or ["no change to the functions or the alias"]:
        click.echo(f"sam deploy: {line}", err=True)
    if not no_release:
        change = " ".join(f"{k}={v}" for k, v in parameters.items()) or "template"
        release_model(
            services, None, f"local deploy {change}", adopt, RolloutOptions.none(), as_json
        )


def example_body(bundle: Path, folder: Path) -> Path:
    """A request body for the served bundle, from its own golden rows (the sample's example
    body would be refused by another model's feature spec)."""
    from lambdaserve import manifest as manifest_io

    golden = manifest_io.read(bundle).golden_examples[:2]
    out = folder / "predict-body.json"
    out.write_text(json.dumps({"instances": [g.inputs for g in golden]}, indent=2) + "\n")
    return out


@click.command("invoke")
@build_dir_option
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="the Lambda event, as `sam local invoke -e` takes it (events/ has some)",
)
@click.option(
    "--body",
    "body_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a request body (JSON): the API Gateway event of POST --path with it is built for you",
)
@click.option("--path", "path", default="/predict", show_default=True, help="with --body")
@click.option(
    "--function-id",
    default="PredictFunction",
    show_default=True,
    help="the function's logical ID in template.yaml",
)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="serve this bundle instead of the built ModelLayer (pins its name, version, sha256)",
)
def invoke_cmd(
    build_dir: Path,
    event_file: Path | None,
    body_file: Path | None,
    path: str,
    function_id: str,
    model_dir: Path | None,
) -> None:
    """Run the built handler on an event (or on a request body) in a clean process, as Lambda
    would (no Docker)."""
    from lambdaserve.local.runtime import BuiltFunction, invoke_isolated

    if (event_file is None) == (body_file is None):
        raise click.UsageError("give --event FILE (a Lambda event) or --body FILE (a request body)")
    if not (build_dir / "template.yaml").exists():
        _fail(f"no build in {build_dir}: run `make build` (sam build) first")
    # The runtime layer the bundle's engine needs, as deploy attaches it (the template's
    # ServeOnnx condition reads the live model's engine).
    engine = _engine_of(model_dir) if model_dir is not None else None
    overrides = {"LiveModelEngine": engine} if engine else None
    built = BuiltFunction.from_build(build_dir, function_id, overrides)
    model = model_dir or build_dir / "ModelLayer" / "model"
    env = {"MODEL_DIR": str(model.resolve())}
    if model_dir is not None:
        env |= _pins_of(model_dir)
    event = _event_of(event_file, body_file, path)
    result = invoke_isolated(built, event, env=env)
    sys.stderr.write(result.logs + ("\n" if result.logs else ""))
    click.echo(
        f"REPORT Init Duration: {result.init_seconds * 1000:.1f} ms  "
        f"Duration: {result.duration_seconds * 1000:.1f} ms",
        err=True,
    )
    click.echo(json.dumps(result.response, indent=2))


def _event_of(event_file: Path | None, body_file: Path | None, path: str) -> dict[str, Any]:
    """The event file as it is, or the REST proxy event of POST `path` with the body."""
    from lambdaserve.serving.rest_event import rest_event

    if body_file is None:
        if event_file is None:
            raise click.UsageError("give --event FILE or --body FILE")
        event: dict[str, Any] = json.loads(event_file.read_text(encoding="utf-8"))
        return event
    headers = {"Content-Type": ["application/json"], "Accept": ["application/json"]}
    return rest_event(
        "POST", path, headers, body_file.read_bytes(), stage="Prod", source_ip="127.0.0.1"
    )


def _engine_of(bundle_dir: Path) -> str | None:
    """The engine a bundle is served with (None: unreadable; the handler says why)."""
    from lambdaserve import manifest as manifest_io

    try:
        return manifest_io.read(bundle_dir).engine
    except (ManifestError, OSError):
        return None


def _pins_of(bundle_dir: Path) -> dict[str, str]:
    """What a deploy would pin for this bundle: its name, version and sha256, so the built
    template's own (the sample's) do not refuse it. An unreadable manifest sets nothing: the
    handler then answers 503 with the reason, as it would in Lambda."""
    from lambdaserve import manifest as manifest_io
    from lambdaserve.serving.predictor import ExpectedModel

    try:
        return ExpectedModel.of(manifest_io.read(bundle_dir)).env()
    except (ManifestError, OSError):
        return {}


COMMANDS = [local, invoke_cmd]
