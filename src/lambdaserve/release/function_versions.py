"""Function versions: pin a model (its layer last, MODEL_* in the environment) on $LATEST, wait
for Lambda to apply it, publish an immutable version."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdaserve.registry.trust import UNVERIFIED_MARK
from lambdaserve.release.errors import (
    FunctionUpdateError,
    InvalidReleaseError,
    ValidationFailedError,
)
from lambdaserve.serving.golden import golden_event, golden_mismatches
from lambdaserve.serving.predictor import ExpectedModel
from lambdaserve.shared.budget import LIMIT, megabytes
from lambdaserve.shared.invoker import InvocationError, Invoker

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

    from lambdaserve.alias import AliasState
    from lambdaserve.manifest import Manifest
    from lambdaserve.registry.store import ModelVersion, Registry
    from lambdaserve.registry.trust import Verification
    from lambdaserve.release.sizes import DeploymentSizes

MAX_LAYERS = 5
# The runtime layer of each engine, as the function's own environment names it (template.yaml).
RUNTIME_LAYER_ENV = {"sklearn": "SKLEARN_RUNTIME_LAYER", "onnx": "ONNX_RUNTIME_LAYER"}


def function_env(config: dict[str, Any]) -> dict[str, str]:
    """A function configuration's environment variables (as Lambda's API reports them)."""
    return dict(config.get("Environment", {}).get("Variables", {}))


def engine_of(config: dict[str, Any]) -> str:
    """The engine a configuration's runtime layer serves (sklearn unless it has the ONNX one)."""
    onnx = function_env(config).get(RUNTIME_LAYER_ENV["onnx"])
    return "onnx" if onnx and onnx in {x["Arn"] for x in config.get("Layers", [])} else "sklearn"


def with_runtime(layers: list[str], env: dict[str, str], engine: str) -> list[str]:
    """The layers with the engine's runtime layer in place of the other engine's."""
    wanted = env.get(RUNTIME_LAYER_ENV[engine], "")
    if not wanted:
        if engine == "sklearn":
            return layers  # a stack from before the ONNX engine: its one runtime layer
        raise InvalidReleaseError(
            "this stack has no ONNX runtime layer (ONNX_RUNTIME_LAYER): update it with "
            "`sam deploy` before deploying a bundle for the ONNX engine"
        )
    runtimes = {env.get(name) for name in RUNTIME_LAYER_ENV.values()} - {None, ""}
    out = [wanted if arn in runtimes else arn for arn in layers]
    return out if wanted in out else [wanted, *out]


def validate_golden(
    invoker: Invoker, function: str, version: str, manifest: Manifest, alias: str
) -> None:
    """Replay the bundle's golden examples to a new version; any difference refuses it."""
    try:
        answer = invoker.invoke(function, version, golden_event(manifest))
    except InvocationError as exc:
        raise ValidationFailedError(f"{exc}; {alias} untouched") from None
    problems = golden_mismatches(manifest, answer)
    if problems:
        raise ValidationFailedError(
            f"version {version} failed validation, {alias} untouched: " + "; ".join(problems[:5])
        )


def describe_versions(lam: LambdaClient, function: str, state: AliasState) -> list[dict[str, Any]]:
    """Each version an alias routes to: its weight, model and layers (`status --json`)."""
    primary_weight = 1 - sum(state.weights.values())
    versions = []
    for number, weight in [(state.version, primary_weight), *state.weights.items()]:
        config: dict[str, Any] = dict(
            lam.get_function_configuration(FunctionName=function, Qualifier=number)
        )
        env = function_env(config)
        model = {key: env.get(f"MODEL_{key.upper()}") for key in ("name", "version", "sha256")}
        layers = config.get("Layers", [])
        versions.append(
            {
                "version": number,
                "weight": round(weight, 4),
                "model": model,
                "layers": [layer["Arn"] for layer in layers],
            }
        )
    return versions


@dataclass
class VersionPublisher:
    """Publishes one function's versions; the sleep and the clock are injectable."""

    lam: LambdaClient
    registry: Registry
    function: str
    progress: Callable[[str], None] = lambda _: None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    wait_seconds: float = 300
    sizes: DeploymentSizes | None = None  # Lambda's unzipped limit, checked before asking

    def publish(
        self, model: ModelVersion, config: dict[str, Any], verification: Verification
    ) -> str:
        """Pin a registry model on $LATEST (read as `config`), wait, publish a version."""
        description = f"{model.name} v{model.version} sha256:{model.manifest.sha256[:16]}"
        if verification.status == "skipped":
            description += f" {UNVERIFIED_MARK}"
        memory = model.manifest.memory or {}
        needed, has = memory.get("memory_size_mb", 0), int(config.get("MemorySize", 0) or 0)
        if has and needed > has:
            raise InvalidReleaseError(
                f"{model.name} v{model.version} takes {memory['model_bytes'] / 2**20:,.1f} MB "
                f"loaded and needs MemorySize {needed} MB; {self.function} has {has} MB: "
                f"nothing released; raise it (sam deploy --parameter-overrides MemorySize="
                f"{needed}) and release again"
            )
        self.progress(f"updating {self.function} to {model.name} v{model.version}")
        env = ExpectedModel.of(model.manifest).env()
        return self.pin(model.layer_arn, env, config, description, model.manifest.engine)

    def pin(
        self,
        model_layer: str | None,
        model_env: dict[str, str],
        config: dict[str, Any],
        description: str,
        engine: str | None = None,
    ) -> str:
        """Set the model layer (None: the stack's own sample), the runtime layer of its
        `engine` (None: as it is) and the MODEL_* pins, publish."""
        layers = [layer["Arn"] for layer in config.get("Layers", [])]
        if engine is not None:
            layers = with_runtime(layers, function_env(config), engine)
        # A registry model layer is always last and overlays the sample's /opt/model:
        # replace it if there is one, else add it (template.yaml keeps the same shape).
        if layers and self.registry.is_model_layer(layers[-1]):
            layers = layers[:-1]
        if model_layer:
            layers.append(model_layer)
        if len(layers) > MAX_LAYERS:
            raise InvalidReleaseError(
                f"{self.function} would have {len(layers)} layers; Lambda allows 5"
            )
        env = function_env(config) | model_env
        current = [layer["Arn"] for layer in config.get("Layers", [])]
        if (layers, env) != (current, function_env(config)):  # else $LATEST already pins it
            self._check_size(layers)
            # RevisionId: refuse to overwrite a change someone made since we read the config.
            request: dict[str, Any] = (
                {"RevisionId": config["RevisionId"]} if config.get("RevisionId") else {}
            )
            try:
                self.lam.update_function_configuration(
                    FunctionName=self.function,
                    Layers=layers,
                    Environment={"Variables": env},
                    **request,
                )
            except ClientError as exc:
                error = exc.response["Error"]
                if error.get("Code") != "InvalidParameterValueException":
                    raise
                raise InvalidReleaseError(
                    f"Lambda refused {self.function}'s new configuration, nothing released: "
                    f"{error.get('Message')}"
                ) from None
            self.wait_updated()
        # Lambda publishes nothing new when $LATEST is unchanged since the last version: it
        # returns that version (a release with nothing new then finds live already serving).
        published = self.lam.publish_version(FunctionName=self.function, Description=description)
        self.wait_updated(published["Version"])
        self.progress(f"published {self.function} version {published['Version']}")
        return published["Version"]

    def _check_size(self, layers: list[str]) -> None:
        """Refuse a configuration over Lambda's unzipped limit before asking Lambda (where
        every part's size is known: on AWS itself; an emulation answers Lambda's own error)."""
        planned = self.sizes.budget(self.function, layers) if self.sizes else None
        if planned is not None and not planned.fits:
            raise InvalidReleaseError(
                f"{self.function} would hold {planned.describe()} unzipped, over Lambda's "
                f"limit of {LIMIT:,} bytes ({megabytes(-planned.headroom)} over): nothing "
                "released; serve the model with `--engine onnx` (a smaller runtime layer) or "
                "make it smaller"
            )

    def of(self, function: str) -> VersionPublisher:
        """The same publisher, for another function."""
        return replace(self, function=function)

    def wait_updated(self, version: str | None = None) -> None:
        """Until Lambda has applied the last configuration update (it does so asynchronously),
        or, for a `version`, until it is Active (a SnapStart version is Pending while its
        snapshot is taken, and cannot be invoked before)."""
        deadline = self.clock() + self.wait_seconds
        what = "the function update" if version is None else f"version {version}"
        while True:
            status: str
            if version is None:
                config = self.lam.get_function_configuration(FunctionName=self.function)
                status = config.get("LastUpdateStatus", "Successful")
                reason = config.get("LastUpdateStatusReason")
            else:
                config = self.lam.get_function_configuration(
                    FunctionName=self.function, Qualifier=version
                )
                state = config.get("State", "Active")
                status = {"Active": "Successful"}.get(state, state)
                reason = config.get("StateReason")
            if status == "Successful":
                return
            if status == "Failed":
                raise FunctionUpdateError(f"{what} failed: {reason}")
            if self.clock() > deadline:
                raise FunctionUpdateError(f"{what} did not finish in {self.wait_seconds:.0f} s")
            self.progress(f"waiting for {what} ({status})")
            self.sleep(2)


MODEL_PINS = tuple(ExpectedModel().env())
# The predict function names the function that follows its model (template.yaml).
FOLLOWER_ENV = "BATCH_FUNCTION"
# ...and the provisioned concurrency a release keeps on its alias (template.yaml; 0: none).
PROVISIONED_ENV = "PROVISIONED_CONCURRENCY"


def followers_named_by(served: dict[str, Any]) -> tuple[str, ...]:
    """The function a version's configuration names as its follower, if any."""
    return tuple(filter(None, [function_env(served).get(FOLLOWER_ENV)]))


@dataclass
class Follower:
    """A function that serves whatever model the leader's alias serves alone (batch scoring):
    its own alias moves to a version of it that pins the same model layer and MODEL_* values,
    so it never scores with a model that is not released (a canary's is not)."""

    publisher: VersionPublisher
    alias: str = "live"

    def follow(self, served: dict[str, Any]) -> str | None:
        """Match `served` (the configuration of the leader's version): its alias moves to a
        version that pins the same model, published only if none does yet (so a rollback
        reuses the old one). The version moved to, or None if it already pins that model."""
        lam, function = self.publisher.lam, self.publisher.function
        wanted = self._pins(served)
        current = dict(lam.get_function_configuration(FunctionName=function, Qualifier=self.alias))
        if self._pins(current) == wanted:
            return None
        version = self._existing(wanted)
        if version is None:
            latest = dict(lam.get_function_configuration(FunctionName=function))
            layer, env = wanted
            description = str(served.get("Description", ""))
            engine = engine_of(served)
            version = self.publisher.pin(layer, dict(env), latest, description, engine)
        lam.update_alias(FunctionName=function, Name=self.alias, FunctionVersion=version)
        self.publisher.progress(f"{function}:{self.alias} follows: version {version}")
        return version

    def _existing(self, wanted: tuple[str | None, tuple[tuple[str, str], ...]]) -> str | None:
        """The newest published version that already pins this model, if any."""
        lam, function = self.publisher.lam, self.publisher.function
        found: list[int] = []
        for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=function):
            found += [
                int(v["Version"])
                for v in page["Versions"]
                if v["Version"].isdigit() and self._pins(dict(v)) == wanted
            ]
        return str(max(found)) if found else None

    def _pins(self, config: dict[str, Any]) -> tuple[str | None, tuple[tuple[str, str], ...]]:
        layers = [layer["Arn"] for layer in config.get("Layers", [])]
        model = (
            layers[-1] if layers and self.publisher.registry.is_model_layer(layers[-1]) else None
        )
        env = function_env(config)
        return model, tuple((key, env.get(key, "")) for key in MODEL_PINS)
