"""The CLI's context: where it finds things (`Services`, the one factory every command builds
its clients and collaborators from), the location options, and how failures become exit
codes and one-line reasons (one table)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click
from botocore.exceptions import ClientError

from lambdaserve.cli.exit_codes import (
    NO_REGION,
    NoRegionGivenError,
    NoStackError,
)
from lambdaserve.registry.store import Registry
from lambdaserve.registry.trust import KEY_ENV, resolve_signing_key
from lambdaserve.release.deployer import Deployer, create_deployer
from lambdaserve.release.function_versions import function_env
from lambdaserve.release.live_parameters import stack_prefix
from lambdaserve.shared.invoker import Invoker, LambdaInvoker
from lambdaserve.shared.signing import ManifestSigner

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3


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
    batch_function: str | None = None
    batch_state_machine: str | None = None
    monitor_function: str | None = None
    monitoring_bucket: str | None = None
    log_group: str | None = None
    invoker: Any = None
    region: str | None = None  # --region; else AWS_REGION, AWS_DEFAULT_REGION, the profile
    session_factory: Callable[[], boto3.session.Session] | None = None
    # Every wait a command makes goes through these (tests inject a fake clock).
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @cached_property
    def session(self) -> boto3.session.Session:
        import boto3

        if self.session_factory:
            return self.session_factory()
        session = boto3.session.Session(region_name=resolve_region(self.region))
        if not session.region_name:
            raise NoRegionGivenError(NO_REGION)
        return session

    def client(self, name: str) -> Any:
        return self.session.client(name)  # type: ignore[call-overload]

    def invoke_client(self) -> Any:
        """Lambda for a synchronous Invoke: it waits longer than any function may run, and
        never retries by itself (an Invoke that timed out on our side may still be running,
        and a second one would run the work again)."""
        from botocore.config import Config

        config = Config(
            read_timeout=INVOKE_READ_TIMEOUT_S,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        return self.session.client("lambda", config=config)

    def invoker_of(self) -> Invoker:
        """The invoker commands call functions with (tests put a local one in `invoker`)."""
        return self.invoker or LambdaInvoker(self.invoke_client())

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

    def outputs(self) -> dict[str, str]:
        """The stack's outputs (empty without --stack); NoStackError if it does not exist."""
        return self._outputs

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
        value = self._name_of(what)
        if not value:
            flag = what.replace("_", "-")
            raise click.UsageError(
                f"no {flag}: pass --{flag}, set LAMBDASERVE_{what.upper()} or --stack NAME"
            )
        return value

    def _name_of(self, what: str) -> str | None:
        """Given (option or LAMBDASERVE_*), else the stack's output, else None."""
        value = getattr(self, what) or self._outputs.get(OUTPUT_OF[what])
        return str(value) if value else None

    def _publish_key(self) -> str | None:
        """The key publish signs with: the stack's (the function names it), else the caller's."""
        function = self._name_of("function")
        function_key = None
        if function:
            config = self.client("lambda").get_function_configuration(FunctionName=function)
            function_key = function_env(dict(config)).get(KEY_ENV)
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
        return create_deployer(
            registry=self.registry(),
            lambda_client=lam,
            invoker=self.invoker_of(),
            function=self.need("function"),
            alias=self.alias,
            caller=self.caller(),
            ssm=self.client("ssm") if prefix else None,
            ssm_prefix=prefix,
            progress=lambda line: click.echo(line, err=True),
            kms=self.client("kms"),
            signing_key=self.signing_key,
            stack_signing_key=self._outputs.get("SigningKeyArn"),
            followers=tuple(
                filter(None, [self.batch_function or self._outputs.get("BatchFunctionName")])
            ),
        )


OUTPUT_OF = {
    "monitor_function": "MonitorFunctionName",
    "monitoring_bucket": "MonitoringBucketName",
    "log_group": "PredictLogGroupName",
    "bucket": "RegistryBucket",
    "function": "PredictFunctionName",
    "batch_function": "BatchFunctionName",
    "batch_state_machine": "BatchStateMachineArn",
}
# Every stack output any command reads (the template test holds the template to it).
STACK_OUTPUTS = frozenset(
    {
        *OUTPUT_OF.values(),
        "ModelParameterPrefix",
        "SigningKeyArn",
        "ApiUrl",
        "ApiKeyId",
        "LiveAliasArn",
        "RedshiftUdfRoleArn",
    }
)


# Lambda runs a function for at most 900 s: a synchronous Invoke is answered before this.
INVOKE_READ_TIMEOUT_S = 910


def resolve_region(flag: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The AWS CLI's order: --region, then AWS_REGION, then (left to boto3, which reads them)
    AWS_DEFAULT_REGION and the profile's region. boto3 itself never reads AWS_REGION."""
    return flag or env.get("AWS_REGION") or None


def region_source(flag: str | None, env: Mapping[str, str] = os.environ) -> str:
    """Where the region came from, in resolve_region's order."""
    if flag:
        return "--region"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if env.get(name):
            return name
    return f"the profile ({env.get('AWS_PROFILE') or 'default'})"


def services_of(ctx: click.Context) -> Services:
    services = ctx.find_object(Services)
    if services is None:  # main() always puts one there
        raise click.UsageError("internal: no services in the click context")
    return services


insecure_option = click.option(
    "--insecure-skip-verify",
    is_flag=True,
    help="DANGER: serve without verifying the signature and layer (throwaway dev registries); "
    "warned and recorded in the history",
)
adopt_option = click.option(
    "--adopt",
    is_flag=True,
    help="the alias was moved outside lambdaserve: record that move as it is, then release "
    "from there (without it, such a release is refused)",
)


LOCATIONS = {  # --flag (and LAMBDASERVE_FLAG) -> what it names
    "bucket": "model registry bucket",
    "function": "predict function name or ARN",
    "alias": "the alias that serves",
    "ssm_prefix": "SSM path the template reads the live model from",
    "signing_key": "KMS key that signs manifests on publish and must have signed them on deploy",
    "batch_function": "batch scoring function (follows the model live serves)",
    "batch_state_machine": "BatchScoring state machine ARN (lambdaserve batch)",
    "monitor_function": "drift monitor function (lambdaserve monitor run)",
    "monitoring_bucket": "bucket of captured rows and drift reports (lambdaserve monitor report)",
    "log_group": "the predict function's log group (lambdaserve shadow)",
    "stack": "read bucket, function, SSM prefix and signing key from this stack's outputs",
}


def location_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One option per LOCATIONS entry, each also from LAMBDASERVE_<NAME>; --alias defaults to
    `live`."""
    for name, text in reversed(LOCATIONS.items()):
        default = {"default": "live", "show_default": True} if name == "alias" else {}
        fn = click.option(
            "--" + name.replace("_", "-"),
            name,
            envvar=f"LAMBDASERVE_{name.upper()}",
            help=text,
            **default,  # type: ignore[arg-type]
        )(fn)
    return fn


def configure(ctx: click.Context, **options: Any) -> None:
    """Put the factory in the click context (tests may have put one there with fakes)."""
    services = ctx.obj if isinstance(ctx.obj, Services) else Services()
    for key, value in options.items():
        if value is not None:
            setattr(services, key, value)
    ctx.obj = services
