"""`lambdaserve local up`: the whole stack on loopback, configured from template.yaml itself.
An AWS endpoint (moto + Lambda Invoke), the registry bucket, the predict function (handler,
runtime, memory, timeout, environment and layers read from the built template), its `live`
alias, the sample model (or `--bundle`) published and deployed with the real CLI code path,
and API Gateway for the template's routes."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lambdaserve.local.auth import make_check
from lambdaserve.local.cloudformation import CloudFormation
from lambdaserve.local.endpoint import AwsEndpoint, EndpointClients
from lambdaserve.local.functions import LocalFunctions, create_function
from lambdaserve.local.gateway import Gateway, binary_media_types_of, routes_of
from lambdaserve.local.layers import LayerFolders
from lambdaserve.local.logs import LocalLogs, LocalMetrics, create_capture_path
from lambdaserve.local.provisioned import ProvisionedConcurrency
from lambdaserve.local.runtime import BuiltFunction
from lambdaserve.local.settings import (
    BATCH_BUCKET,
    BATCH_FUNCTION,
    BUCKET,
    CREDENTIALS,
    FUNCTION,
    MONITOR_FUNCTION,
    MONITORING_BUCKET,
    PREDICT_LOG_GROUP,
    REGION,
    SSM_PREFIX,
    STATE_MACHINE,
    StackSettings,
    stack_record,
)
from lambdaserve.local.snapshot import Snapshots
from lambdaserve.local.step_functions import create_state_machine, state_machine_definition
from lambdaserve.local.subscriptions import LambdaSubscriptions
from lambdaserve.local.template import TemplateResolver, load_template
from lambdaserve.registry.store import Registry
from lambdaserve.registry.trust import KEY_ENV
from lambdaserve.release.deployer import Deployer, create_deployer
from lambdaserve.release.function_versions import FOLLOWER_ENV
from lambdaserve.release.live_parameters import init_parameters, template_overrides
from lambdaserve.shared.invoker import LambdaInvoker
from lambdaserve.shared.signing import ManifestSigner


class LocalCloud:
    """Start, serve, stop. Thread-safe enough for a laptop: environments per version as
    concurrent requests need them (local/pool.py)."""

    def __init__(self, settings: StackSettings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.log = log
        overrides = {"ModelParameterPrefix": SSM_PREFIX, **settings.parameters}
        self.built = BuiltFunction.from_build(settings.build_dir, settings.function_id, overrides)
        self.batch = BuiltFunction.from_build(settings.build_dir, "BatchFunction", overrides)
        self.monitor = BuiltFunction.from_build(settings.build_dir, "MonitorFunction", overrides)
        self.state_machine_arn = ""
        self.template = load_template(Path(settings.build_dir) / "template.yaml")
        self.layers = LayerFolders(settings.state_dir / "layers", lambda: self.registry)
        # As Lambda does: what the predict function writes reaches its log group, whose
        # subscription takes capture records through Firehose to the monitoring bucket.
        self.logs = LocalLogs(
            lambda: self.client("logs", direct=True), {FUNCTION: PREDICT_LOG_GROUP}, log
        )
        self.metrics = LocalMetrics(lambda: self.client("cloudwatch", direct=True), log)
        # ColdStartStrategy snapstart: the predict function's environments are restored.
        self.snapshots = Snapshots(lambda name: name == FUNCTION and self.strategy == "snapstart")
        self.functions = LocalFunctions(
            {
                FUNCTION: self.built.code_dir,
                BATCH_FUNCTION: self.batch.code_dir,
                MONITOR_FUNCTION: self.monitor.code_dir,
            },
            lambda: self.client("lambda", direct=True),
            self.layers,
            lambda: {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{settings.aws_port}",
                "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
                "SHADOW_REFRESH_SECONDS": "2",  # a laptop's shadow starts at once (AWS: 30 s)
            },
            settings.state_dir,
            log,
            self.logs,
            self.metrics,
            lambda name: settings.concurrency_limit(name, self.parameters),
            self.snapshots.worker,
        )
        self.pool = self.functions.pool
        self.provisioned = ProvisionedConcurrency(
            self.pool,
            self.functions.read_alias,
            lambda name: f"arn:aws:lambda:{REGION}:123456789012:function:{name}",
            log,
        )
        self.functions.on_alias_change = self._alias_moved
        self.endpoint = AwsEndpoint(
            settings.aws_port,
            self.functions.invoke,
            provisioned=self.provisioned,
            oversize=self.functions.oversize,
        )
        self.subscriptions = LambdaSubscriptions(self.functions.invoke, log)  # shadows' mirrors
        self.clients = EndpointClients(self.endpoint, REGION, CREDENTIALS)
        self.gateway: Gateway | None = None
        self.signing_key = ""
        self.parameters = TemplateResolver(self.template, settings.parameters).values
        self.auth_mode = settings.auth_mode or self.parameters.get("AuthMode", "NONE")
        self.api_key = ""
        if self.auth_mode == "API_KEY":
            alphabet = string.ascii_letters + string.digits
            self.api_key = settings.api_key or "".join(secrets.choice(alphabet) for _ in range(40))

    @property
    def strategy(self) -> str:
        """The template's ColdStartStrategy: none, snapstart or provisioned."""
        return self.parameters.get("ColdStartStrategy", "none")

    def _alias_moved(self, function: str, background: bool = True) -> None:
        """Provisioned environments follow the alias; a SnapStart version's snapshot is taken
        before it serves (on Lambda, when it is published)."""
        self.provisioned.allocate(function, "live")
        if function == FUNCTION and self.strategy == "snapstart":
            state = self.functions.read_alias(function)
            self.snapshots.take(self.pool, function, [state.version, *state.weights], background)

    def client(self, name: str, direct: bool = False) -> Any:
        """A client of the local endpoint (`direct`: moto itself), built once and shared."""
        return self.clients(name, direct)

    @property
    def registry(self) -> Registry:
        signer = ManifestSigner(self.client("kms"), self.signing_key) if self.signing_key else None
        return Registry(BUCKET, self.client("s3"), self.client("lambda"), signer=signer)

    def deployer(self) -> Deployer:
        lam = self.client("lambda")
        return create_deployer(
            registry=self.registry,
            lambda_client=lam,
            invoker=LambdaInvoker(lam),
            function=FUNCTION,
            caller="local",
            ssm=self.client("ssm"),
            ssm_prefix=SSM_PREFIX,
            progress=self.log,
            kms=self.client("kms"),
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> str:
        """Bring everything up and deploy the model; returns the API URL."""
        self.endpoint.start()
        self.subscriptions.install()
        self._create_function()
        self._create_batch()
        self._create_monitoring()
        self.metrics.start()
        init_parameters(self.client("ssm"), SSM_PREFIX)
        self._record_stack()  # before any release: `live` on the bootstrap version
        bundle = self.settings.bundle or self._train_sample()
        published = self.registry.publish(bundle, "local")
        self.log(f"published {published.name} v{published.version}")
        self.deployer().deploy(published.name, published.version, reason="local up")
        if self.strategy == "provisioned":
            # The release above put the stack's floor on `live` (PROVISIONED_CONCURRENCY, as
            # on AWS): its environments are initialised before any traffic.
            self.provisioned.ready(FUNCTION, "live")
        self._alias_moved(FUNCTION, background=False)  # SnapStart: published, snapshot taken
        self.gateway = Gateway(
            self.settings.port,
            routes_of(self.template, self.settings.function_id),
            lambda: self.functions.alias(FUNCTION),
            lambda version, event: self.functions.dispatch(FUNCTION, version, event),
            stage=self.parameters.get("StageName", "v1"),
            seed=self.settings.seed,
            binary_media_types=binary_media_types_of(self.template),
            # AWS_IAM: requests signed with this stack's own credentials (printed by `up`).
            auth=make_check(
                self.auth_mode,
                {self.api_key},
                {CREDENTIALS["aws_access_key_id"]: CREDENTIALS["aws_secret_access_key"]},
                REGION,
            ),
        )
        self.gateway.start()
        return self.gateway.url

    def stop(self) -> None:
        """Stop the gateway, every container and the endpoint."""
        if self.gateway is not None:
            self.gateway.stop()
        self.pool.stop_all()
        self.snapshots.stop_all()
        self.logs.stop()
        self.metrics.stop()
        self.endpoint.stop()
        self.subscriptions.uninstall()

    def environment(self) -> dict[str, str]:
        """What points the CLI (or any AWS client) at this stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint.url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": REGION,
            # The CLI honours AWS_REGION first, as the AWS CLI does: a shell that has one set
            # for real AWS must not send the local stack's commands to another region.
            "AWS_REGION": REGION,
            "LAMBDASERVE_BUCKET": BUCKET,
            "LAMBDASERVE_FUNCTION": FUNCTION,
            "LAMBDASERVE_SSM_PREFIX": SSM_PREFIX,
            "LAMBDASERVE_SIGNING_KEY": self.signing_key,
            "LAMBDASERVE_BATCH_FUNCTION": BATCH_FUNCTION,
            "LAMBDASERVE_BATCH_STATE_MACHINE": self.state_machine_arn,
            "LAMBDASERVE_BATCH_BUCKET": BATCH_BUCKET,
            "LAMBDASERVE_MONITOR_FUNCTION": MONITOR_FUNCTION,
            "LAMBDASERVE_MONITORING_BUCKET": MONITORING_BUCKET,
            "LAMBDASERVE_LOG_GROUP": PREDICT_LOG_GROUP,
            **({"LAMBDASERVE_API_KEY": self.api_key} if self.api_key else {}),
        }

    def _record_stack(self) -> None:
        """What CloudFormation would remember of this stack (local/cloudformation.py), for
        `lambdaserve local deploy` to update it as `sam deploy` would."""
        layers = {folder.name: arn for arn, folder in self.layers.known.items()}
        parameters = {**template_overrides(SSM_PREFIX), **self.settings.parameters}
        cloudformation = CloudFormation(
            self.client("lambda", direct=True), self.client("ssm", direct=True), REGION
        )
        record = cloudformation.adopt(
            self.template,
            parameters,
            {"PredictFunction": FUNCTION, "BatchFunction": BATCH_FUNCTION, **layers},
        )
        record.save(stack_record(self.settings.state_dir))

    def _train_sample(self) -> Path:
        from lambdaserve.bundle import sample

        out = self.settings.state_dir / "sample-bundle"
        if not (out / "manifest.json").exists():
            self.log("training the sample model")
            sample.train(out)
        return out

    def _create_function(self) -> None:
        lam, s3 = self.client("lambda", direct=True), self.client("s3", direct=True)
        s3.create_bucket(Bucket=BUCKET)
        # As in the template: every manifest is signed, and deploys refuse unsigned ones.
        self.signing_key = self.client("kms", direct=True).create_key(
            KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="lambdaserve local"
        )["KeyMetadata"]["Arn"]
        self._role = self.client("iam", direct=True).create_role(
            RoleName="lambdaserve-local", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        self._layers = self.layers.publish(lam, self.built.layer_dirs)
        # Absolute, as every other layer folder: a worker runs in its own working directory.
        onnx = Path(self.settings.build_dir).resolve() / "OnnxRuntimeLayer"  # deploy attaches it
        self.layers.publish(lam, [onnx] if onnx.is_dir() else [])
        self._publish(FUNCTION, self.built, {FOLLOWER_ENV: BATCH_FUNCTION})
        reserved = int(self.parameters.get("ReservedConcurrency", "-1"))
        if reserved >= 0:  # as the template's ReservedConcurrentExecutions
            lam.put_function_concurrency(
                FunctionName=FUNCTION, ReservedConcurrentExecutions=reserved
            )

    def _publish(
        self,
        name: str,
        built: BuiltFunction,
        extra: dict[str, str] | None = None,
        alias: bool = True,
    ) -> None:
        """The function as `sam deploy` leaves it (with the layers the template gives it)."""
        layers = [arn for arn in self._layers if self.layers.known[arn] in built.layer_dirs]
        # As template.yaml does: the function names the key deploys must verify with, and
        # the runtime layer of each engine.
        env = {**built.environment, KEY_ENV: self.signing_key, **(extra or {})}
        env |= self.layers.runtime_environment()
        create_function(
            self.client("lambda", direct=True), name, built, self._role, layers, env, alias
        )

    def _create_batch(self) -> None:
        """The batch function, its bucket and the BatchScoring state machine, which moto's own
        Step Functions executor runs; its Lambda tasks reach this endpoint's Invoke (MOTO_PORT
        names where the executor sends its calls), so they run in the same workers."""
        self._publish(BATCH_FUNCTION, self.batch)
        self.client("s3", direct=True).create_bucket(Bucket=BATCH_BUCKET)
        alias = self.client("lambda", direct=True).get_alias(
            FunctionName=BATCH_FUNCTION, Name="live"
        )["AliasArn"]
        self.state_machine_arn = create_state_machine(
            self.client("stepfunctions", direct=True),
            STATE_MACHINE,
            state_machine_definition(
                self.settings.build_dir, self.template, self.parameters, alias
            ),
            self._role,
            self.endpoint.moto_url,
            self.endpoint.port,
        )

    def _create_monitoring(self) -> None:
        """As template.yaml: the capture path into the monitoring bucket, the monitor."""
        create_capture_path(
            lambda name: self.client(name, direct=True),
            self.logs,
            MONITORING_BUCKET,
            PREDICT_LOG_GROUP,
            self._role,
        )
        self._publish(
            MONITOR_FUNCTION,
            self.monitor,
            {"MONITORING_BUCKET": MONITORING_BUCKET, "REGISTRY_BUCKET": BUCKET},
            alias=False,
        )
