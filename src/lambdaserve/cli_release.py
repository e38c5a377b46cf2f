"""CLI commands that publish models and move the alias: publish, versions, show, deploy,
promote, rollback, status, history. Each builds what it needs from one factory (`Services`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from botocore.exceptions import ClientError

from lambdaserve.deploy import Deployer
from lambdaserve.errors import (
    AlreadyServingError,
    CanaryInProgressError,
    DeployError,
    NoCanaryError,
    NothingToRollBackError,
    ValidationFailedError,
)
from lambdaserve.invoker import LambdaInvoker
from lambdaserve.live_parameters import init_parameters, stack_prefix, template_overrides
from lambdaserve.manifest import ManifestError
from lambdaserve.registry import Registry, RegistryError
from lambdaserve.signing import ManifestSigner
from lambdaserve.teardown import purge
from lambdaserve.trust import KEY_ENV, UntrustedModelError, resolve_signing_key

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3


class NoStackError(Exception):
    """--stack names a stack that does not exist (here)."""


FAILURES = (
    DeployError,
    RegistryError,
    ManifestError,
    UntrustedModelError,
    NoStackError,
    OSError,
)


@dataclass
class Services:
    """Where things are (bucket, function, alias) and the AWS clients, built on first use.

    Clients honour AWS_ENDPOINT_URL (boto3 does), so the same commands drive AWS, the local
    stack or moto. Tests replace `invoker` with one that runs the handler locally."""

    bucket: str | None = None
    function: str | None = None
    alias: str = "live"
    ssm_prefix: str | None = None
    signing_key: str | None = None
    stack: str | None = None
    invoker: Any = None
    session_factory: Callable[[], boto3.session.Session] | None = None

    @cached_property
    def session(self) -> boto3.session.Session:
        import boto3

        return self.session_factory() if self.session_factory else boto3.session.Session()

    def client(self, name: str) -> Any:
        return self.session.client(name)  # type: ignore[call-overload]

    @cached_property
    def _outputs(self) -> dict[str, str]:
        if not self.stack:
            return {}
        try:
            stacks = self.client("cloudformation").describe_stacks(StackName=self.stack)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationError":
                raise NoStackError(f"no stack {self.stack} in this account and region") from None
            raise
        return {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}

    def parameter_prefix(self) -> str:
        """The SSM path of the live model: given, the stack's output, or (before the stack
        exists) the stack's default path."""
        if self.ssm_prefix:
            return self.ssm_prefix
        if not self.stack:
            raise click.UsageError(
                "no SSM prefix: pass --stack NAME (it need not exist yet) or --ssm-prefix PATH"
            )
        try:
            return self._outputs.get("ModelParameterPrefix") or stack_prefix(self.stack)
        except NoStackError:
            return stack_prefix(self.stack)

    def need(self, what: str) -> str:
        value = getattr(self, what) or self._outputs.get(_OUTPUT_OF[what])
        if not value:
            flag = what.replace("_", "-")
            raise click.UsageError(
                f"no {flag}: pass --{flag}, set LAMBDASERVE_{what.upper()} or --stack NAME"
            )
        return str(value)

    def _function_name(self) -> str | None:
        return self.function or self._outputs.get(_OUTPUT_OF["function"])

    def _publish_key(self) -> str | None:
        """The key publish signs with: the stack's (the function names it), else the caller's."""
        function = self._function_name()
        function_key = None
        if function:
            config = self.client("lambda").get_function_configuration(FunctionName=function)
            function_key = config.get("Environment", {}).get("Variables", {}).get(KEY_ENV)
        stack_key = self._outputs.get("SigningKeyArn")
        if not (function_key or stack_key or self.signing_key):
            return None
        return resolve_signing_key(
            function or "this registry",
            function_key=function_key,
            stack_key=stack_key,
            explicit=self.signing_key,
        )

    def registry(self, *, for_publish: bool = False) -> Registry:
        signer = None
        if for_publish:
            key = self._publish_key()
            if key is None:
                click.echo(
                    "WARNING: no signing key known: publishing UNSIGNED; deploys will refuse "
                    "this version (pass --stack or --signing-key to sign)",
                    err=True,
                )
            signer = ManifestSigner(self.client("kms"), key) if key else None
        return Registry(
            self.need("bucket"), self.client("s3"), self.client("lambda"), signer=signer
        )

    def caller(self) -> str:
        try:
            return str(self.client("sts").get_caller_identity()["Arn"])
        except Exception:  # identity is for the record; never block a rollback on it
            return "unknown"

    def deployer(self) -> Deployer:
        lam = self.client("lambda")
        prefix = self.ssm_prefix or self._outputs.get("ModelParameterPrefix")
        return Deployer(
            registry=self.registry(),
            lambda_client=lam,
            invoker=self.invoker or LambdaInvoker(lam),
            function=self.need("function"),
            alias=self.alias,
            caller=self.caller(),
            ssm=self.client("ssm") if prefix else None,
            ssm_prefix=prefix,
            progress=lambda line: click.echo(line, err=True),
            kms=self.client("kms"),
            signing_key=self.signing_key,
            stack_signing_key=self._outputs.get("SigningKeyArn"),
        )


_OUTPUT_OF = {"bucket": "RegistryBucket", "function": "PredictFunctionName"}


def _emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text(data))


def _services(ctx: click.Context) -> Services:
    services = ctx.find_object(Services)
    if services is None:  # main() always puts one there
        raise click.UsageError("internal: no services in the click context")
    return services


class Refused(click.ClickException):
    """A failure with its exit code (README: Exit codes)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# The one place failures become exit codes; the rest exit 1 (click's usage errors exit 2).
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (UntrustedModelError, 3),
    (ValidationFailedError, 4),
    (CanaryInProgressError, 5),
    (NoCanaryError, 5),
    (NothingToRollBackError, 5),
    (AlreadyServingError, 5),
)


def _run(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except FAILURES as exc:
        code = next((c for kind, c in EXIT_CODES if isinstance(exc, kind)), 1)
        raise Refused(str(exc), code) from None


json_option = click.option("--json", "as_json", is_flag=True, help="print JSON (shape in README)")
insecure_option = click.option(
    "--insecure-skip-verify",
    is_flag=True,
    help="DANGER: serve without verifying the signature and layer (throwaway dev registries); "
    "warned and recorded in the history",
)


def register(main: click.Group) -> None:
    """Add the release commands and their shared location options to the main group."""

    @main.command("publish")
    @click.argument("bundle_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option(
        "--version",
        "version",
        type=click.IntRange(min=1),
        default=None,
        help="claim exactly this version number (default: the next one)",
    )
    @json_option
    @click.pass_context
    def publish(ctx: click.Context, bundle_dir: Path, version: int | None, as_json: bool) -> None:
        """Verify a bundle, give it the next version in the registry, publish its layer."""
        services = _services(ctx)
        published = _run(
            lambda: services.registry(for_publish=True).publish(
                bundle_dir, services.caller(), version
            )
        )
        _emit(
            published.summary(),
            as_json,
            lambda s: (
                f"published {s['name']} v{s['version']} (sha256 {s['sha256'][:12]})\n"
                f"layer {s['layer_arn']}"
            ),
        )

    @main.command("versions")
    @click.argument("name")
    @json_option
    @click.pass_context
    def versions(ctx: click.Context, name: str, as_json: bool) -> None:
        """List the published versions of a model."""
        found = _run(lambda: [v.summary() for v in _services(ctx).registry().versions(name)])
        _emit(
            found,
            as_json,
            lambda rows: (
                "\n".join(
                    f"v{r['version']:<4} {r['published_at']}  sha256 {r['sha256'][:12]}  "
                    + " ".join(f"{k}={v:.4g}" for k, v in r["metrics"].items())
                    + f"\n      {r['layer_arn']}"
                    for r in rows
                )
                or f"no versions of {name}"
            ),
        )

    @main.command("show")
    @click.argument("name")
    @click.argument("version")
    @json_option
    @click.pass_context
    def show(ctx: click.Context, name: str, version: str, as_json: bool) -> None:
        """One version: a summary, or with --json its whole manifest."""
        found = _run(lambda: _services(ctx).registry().get(name, version))
        _emit(found.manifest.to_dict(), as_json, lambda m: _manifest_text(found.summary(), m))

    @main.command("deploy")
    @click.argument("name")
    @click.argument("version")
    @click.option(
        "--canary",
        "canary",
        type=click.FloatRange(0, 100, min_open=True, max_open=True),
        default=None,
        help="route this percentage to the new version; the rest stays",
    )
    @click.option("--reason", default="", help="why, for the deployment history")
    @insecure_option
    @click.pass_context
    def deploy(
        ctx: click.Context,
        name: str,
        version: str,
        canary: float | None,
        reason: str,
        insecure_skip_verify: bool,
    ) -> None:
        """Verify a published model, pin it in a new function version, validate it, move the
        alias."""
        state = _run(
            lambda: (
                _services(ctx)
                .deployer()
                .deploy(name, version, canary, reason, insecure_skip_verify=insecure_skip_verify)
            )
        )
        click.echo(
            f"{_services(ctx).alias} -> version {state.version}"
            + (f" with canary {state.weights}" if state.weights else "")
        )

    @main.command("promote")
    @click.option("--reason", default="")
    @insecure_option
    @click.pass_context
    def promote(ctx: click.Context, reason: str, insecure_skip_verify: bool) -> None:
        """Verify the canary version's model again, then send all traffic to it."""
        state = _run(
            lambda: (
                _services(ctx).deployer().promote(reason, insecure_skip_verify=insecure_skip_verify)
            )
        )
        click.echo(f"{_services(ctx).alias} -> version {state.version}")

    @main.command("rollback")
    @click.option("--to", "to", default=None, help="function version (default: the previous one)")
    @click.option("--reason", default="")
    @insecure_option
    @click.pass_context
    def rollback(
        ctx: click.Context, to: str | None, reason: str, insecure_skip_verify: bool
    ) -> None:
        """Point the alias back at the previously live version, in one call."""
        state = _run(
            lambda: (
                _services(ctx)
                .deployer()
                .rollback(to, reason, insecure_skip_verify=insecure_skip_verify)
            )
        )
        click.echo(f"{_services(ctx).alias} -> version {state.version}")

    @main.command("status")
    @json_option
    @click.pass_context
    def status(ctx: click.Context, as_json: bool) -> None:
        """Show the alias, its version(s) and weights, and each version's model."""
        data = _run(lambda: _services(ctx).deployer().status())
        _emit(data, as_json, _status_text)

    @main.command("init-parameters")
    @click.pass_context
    def init_parameters_command(ctx: click.Context) -> None:
        """Create this stack's live-model SSM parameters (as "sample") before its first deploy,
        and print the `sam deploy --parameter-overrides` that name them."""
        services = _services(ctx)
        prefix = services.parameter_prefix()
        created = _run(lambda: init_parameters(services.client("ssm"), prefix))
        for name in created:
            click.echo(f"created {name}", err=True)
        if not created:
            click.echo(f"the parameters under {prefix} exist already", err=True)
        click.echo(" ".join(f"{k}={v}" for k, v in template_overrides(prefix).items()))

    @main.command("endpoint")
    @json_option
    @click.pass_context
    def endpoint(ctx: click.Context, as_json: bool) -> None:
        """The stack's API URL and its API key (AuthMode API_KEY), as export lines."""
        services = _services(ctx)
        if not services.stack:
            raise click.UsageError("endpoint reads the stack's outputs: pass --stack NAME")
        outputs = _run(lambda: services._outputs)
        found = {"url": outputs.get("ApiUrl", ""), "api_key": ""}
        if outputs.get("ApiKeyId"):
            key = services.client("apigateway").get_api_key(
                apiKey=outputs["ApiKeyId"], includeValue=True
            )
            found["api_key"] = key.get("value", "")
        _emit(
            found,
            as_json,
            lambda f: (
                f"export API={f['url']}"
                + (
                    f"\nexport KEY={f['api_key']}"
                    if f["api_key"]
                    else "  # AuthMode AWS_IAM: no key"
                )
            ),
        )

    @main.command("purge")
    @click.option("--yes", is_flag=True, help="really delete: there is no undo for the bucket")
    @click.pass_context
    def purge_command(ctx: click.Context, yes: bool) -> None:
        """Delete what `sam delete` retains for this stack: the registry bucket, its model
        layers, the live-model parameters; schedule the signing key's deletion (7 days)."""
        services = _services(ctx)
        if not services.stack:
            raise click.UsageError("purge reads the stack's outputs: pass --stack NAME")
        outputs = _run(lambda: services._outputs)
        bucket, key = outputs.get("RegistryBucket"), outputs.get("SigningKeyArn")
        if not bucket or not key:
            raise click.ClickException(f"stack {services.stack} has no registry or key outputs")
        if not yes:
            raise click.ClickException(
                f"this deletes s3://{bucket} with every model version in it and schedules "
                f"key {key} for deletion: run again with --yes"
            )
        done = _run(
            lambda: purge(
                s3=services.client("s3"),
                lambda_client=services.client("lambda"),
                ssm=services.client("ssm"),
                kms=services.client("kms"),
                bucket=bucket,
                signing_key=key,
                parameter_prefix=services.parameter_prefix(),
            )
        )
        click.echo(
            f"deleted s3://{done.bucket} ({done.objects} object versions), "
            f"{len(done.layer_versions)} model layer versions, {len(done.parameters)} "
            f"parameters; key deletion scheduled for {done.key_deletion}"
        )

    @main.command("gitops-params")
    @click.argument("name")
    @click.argument("version")
    @click.pass_context
    def gitops_params(ctx: click.Context, name: str, version: str) -> None:
        """Print `sam deploy --parameter-overrides` for a published model (CodeDeploy canaries)."""
        model = _run(lambda: _services(ctx).registry().get(name, version))
        click.echo(
            f"ModelLayerArn={model.layer_arn} ModelName={model.name} "
            f"ModelVersion={model.version} ModelSha256={model.manifest.sha256} "
            f"ModelRevision={model.manifest.sha256}"
        )

    @main.command("history")
    @json_option
    @click.pass_context
    def history(ctx: click.Context, as_json: bool) -> None:
        """Every alias change: when, who, from, to, model version, why."""
        entries = _run(lambda: _services(ctx).deployer().history_entries())
        _emit(
            entries,
            as_json,
            lambda rows: (
                "\n".join(
                    f"{e['time']}  {e['from']['version']}{e['from']['weights'] or ''} -> "
                    f"{e['to']['version']}{e['to']['weights'] or ''}  model v{e['model_version']}  "
                    f"{e['reason']}  ({e['caller']})"
                    for e in rows
                )
                or "no deployments yet"
            ),
        )


def _manifest_text(summary: dict[str, Any], manifest: dict[str, Any]) -> str:
    features = ", ".join(f"{f['name']}:{f['type']}" for f in manifest["features"])
    metrics = " ".join(f"{k}={v:.4g}" for k, v in manifest["metrics"].items())
    return "\n".join(
        [
            f"{manifest['name']} v{manifest['version']}  {manifest['estimator']} "
            f"({manifest['task']})",
            f"  sha256     {manifest['sha256']}",
            f"  published  {summary['published_at']} by {summary['published_by']}",
            f"  layer      {summary['layer_arn']}",
            f"  features   {features}",
            *([f"  classes    {manifest['classes']}"] if manifest.get("classes") else []),
            *([f"  metrics    {metrics}"] if metrics else []),
            f"  golden     {len(manifest['golden_examples'])} examples",
        ]
    )


def _status_text(status: dict[str, Any]) -> str:
    lines = [f"{status['function']}:{status['alias']}"]
    for v in status["versions"]:
        model = v["model"]
        lines.append(
            f"  version {v['version']:<4} {v['weight']:>7.2%}  {model['name']} "
            f"v{model['version'] or '-'}  sha256 {(model['sha256'] or '-')[:12]}"
        )
        lines += [f"      layer {arn}" for arn in v["layers"]]
    return "\n".join(lines)


def location_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--bucket/--function/--alias/--ssm-prefix/--signing-key/--stack, each also from
    LAMBDASERVE_*."""
    for option in reversed(
        [
            click.option("--bucket", envvar="LAMBDASERVE_BUCKET", help="model registry bucket"),
            click.option(
                "--function",
                "function",
                envvar="LAMBDASERVE_FUNCTION",
                help="predict function name or ARN",
            ),
            click.option("--alias", envvar="LAMBDASERVE_ALIAS", default="live", show_default=True),
            click.option(
                "--ssm-prefix",
                envvar="LAMBDASERVE_SSM_PREFIX",
                help="SSM path the template reads the live model from",
            ),
            click.option(
                "--signing-key",
                envvar="LAMBDASERVE_SIGNING_KEY",
                help="KMS key that signs manifests on publish and must have signed them on deploy",
            ),
            click.option(
                "--stack",
                envvar="LAMBDASERVE_STACK",
                help="read bucket, function, SSM prefix and signing key from this stack's outputs",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def configure(ctx: click.Context, **options: Any) -> None:
    """Put the factory in the click context (tests may have put one there with fakes)."""
    services = ctx.obj if isinstance(ctx.obj, Services) else Services()
    for key, value in options.items():
        if value is not None:
            setattr(services, key, value)
    ctx.obj = services
