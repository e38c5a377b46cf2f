"""Function versions and the alias: deploy (validated), canary, promote, rollback, history."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lambdaserve import live_parameters
from lambdaserve.golden import golden_event, golden_mismatches
from lambdaserve.invoker import InvocationError, Invoker
from lambdaserve.records import AliasState, History, Ledger, LedgerStore
from lambdaserve.registry import ModelVersion, Registry
from lambdaserve.trust import (
    KEY_ENV,
    PREVIOUSLY_VERIFIED,
    SKIPPED,
    STACK_SAMPLE,
    UNVERIFIED_MARK,
    ForeignLayerError,
    ModelVerifier,
    NoSigningKeyError,
    UnverifiedVersionError,
    Verification,
    resolve_signing_key,
)

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_ssm import SSMClient

MAX_LAYERS = 5


class DeployError(Exception):
    """A deploy, promote or rollback that did not happen; the alias is as it was."""


class InvalidRequestError(DeployError):
    """What was asked cannot be done as asked (a bad percentage, a version with no layer)."""


class CanaryInProgressError(DeployError):
    """A deploy while a canary runs: promote or roll back first."""


class NoCanaryError(DeployError):
    """A promote with no canary to promote."""


class NothingToRollBackError(DeployError):
    """No earlier version in the records to roll back to."""


class AlreadyServingError(DeployError):
    """The alias already serves what was asked for."""


class ValidationFailedError(DeployError):
    """The new version did not reproduce its golden examples, or failed to answer."""


class FunctionUpdateError(DeployError):
    """Lambda did not apply the function update (failed, or too slow)."""


class Deployer:
    """Moves one function's alias between versions, recording and validating as it goes."""

    def __init__(
        self,
        *,
        registry: Registry,
        lambda_client: LambdaClient,
        invoker: Invoker,
        function: str,
        alias: str = "live",
        caller: str = "unknown",
        ssm: SSMClient | None = None,
        ssm_prefix: str | None = None,
        progress: Callable[[str], None] = lambda _: None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wait_seconds: float = 300,
        kms: KMSClient | None = None,
        signing_key: str | None = None,
        stack_signing_key: str | None = None,
    ) -> None:
        self.registry, self.lam, self.invoker = registry, lambda_client, invoker
        # The function's own SIGNING_KEY_ARN is the trust anchor; these must agree with it.
        self.kms, self.signing_key, self.stack_signing_key = kms, signing_key, stack_signing_key
        self.function, self.alias, self.caller = function, alias, caller
        self.ssm, self.ssm_prefix = ssm, ssm_prefix
        self.progress, self.sleep, self.wait_seconds = progress, sleep, wait_seconds
        self.clock = clock
        self.history = History(registry.bucket, registry.s3, function)
        self.ledger = LedgerStore(registry.bucket, registry.s3, function, alias)

    def state(self) -> AliasState:
        return AliasState.from_alias(
            dict(self.lam.get_alias(FunctionName=self.function, Name=self.alias))
        )

    def current(self) -> tuple[AliasState, Ledger | None]:
        """The alias, and its ledger with any interrupted change finished or dropped."""
        now = self.state()
        ledger = self.ledger.read()
        if ledger is None or ledger.pending is None:
            return now, ledger
        entry = ledger.pending
        if AliasState.from_dict(entry["to"]) == now:
            self.progress(f"finishing the records of an interrupted change ({entry['reason']})")
            ledger = self._finish({**entry, "reconciled": True}, ledger, None)
        else:  # the alias never moved: the change did not happen
            ledger = Ledger(ledger.state, ledger.previous, None)
            self.ledger.write(ledger)
        return now, ledger

    def history_entries(self) -> list[dict[str, Any]]:
        """Every alias change, oldest first, after finishing any interrupted one."""
        self.current()
        return self.history.entries()

    def deploy(
        self,
        name: str,
        version: str,
        canary_percent: float | None = None,
        reason: str = "",
        *,
        insecure_skip_verify: bool = False,
    ) -> AliasState:
        """Verify the model, pin it in a new function version, validate it, move the alias."""
        if canary_percent is not None and not 0 < canary_percent < 100:
            raise InvalidRequestError("--canary is a percentage between 0 and 100 (exclusive)")
        model = self.registry.get(name, version)
        if not model.layer_arn:
            raise InvalidRequestError(f"{name} v{version} has no layer in the registry")
        latest = self._config(None)
        verification = self._verify(model, latest, insecure_skip_verify)
        before, ledger = self.current()
        if before.weights:
            raise CanaryInProgressError(
                f"a canary is in progress on {self.alias} ({before.weights}): "
                "promote or rollback it first"
            )
        new_version = self._publish(model, latest, verification)
        if new_version == before.version:
            raise AlreadyServingError(
                f"{self.alias} already serves version {new_version} with this model"
            )
        self.progress(
            f"validating version {new_version} with "
            f"{len(model.manifest.golden_examples)} golden examples"
        )
        try:
            answer = self.invoker.invoke(self.function, new_version, golden_event(model.manifest))
        except InvocationError as exc:
            raise ValidationFailedError(f"{exc}; {self.alias} untouched") from None
        problems = golden_mismatches(model.manifest, answer)
        if problems:
            raise ValidationFailedError(
                f"version {new_version} failed validation, {self.alias} untouched: "
                + "; ".join(problems[:5])
            )
        if canary_percent is None:
            after = AliasState(new_version)
        else:
            after = AliasState(before.version, {new_version: round(canary_percent / 100, 4)})
        self._move(
            before,
            after,
            ledger,
            reason or f"deploy {name} v{version}",
            model.version,
            verification,
        )
        return after

    def promote(self, reason: str = "", *, insecure_skip_verify: bool = False) -> AliasState:
        """Verify the canary version's model again, then send all traffic to it."""
        before, ledger = self.current()
        if not before.weights:
            raise NoCanaryError(f"no canary on {self.alias} to promote")
        (canary,) = before.weights
        config = self._config(canary)
        verification = self._verify_version(canary, config, insecure_skip_verify)
        after = AliasState(canary)
        self._move(
            before,
            after,
            ledger,
            reason or "promote",
            _env(config).get("MODEL_VERSION"),
            verification,
            config,
        )
        return after

    def rollback(
        self, to: str | None = None, reason: str = "", *, insecure_skip_verify: bool = False
    ) -> AliasState:
        """Point the alias back at the previously live version, in one UpdateAlias call.

        Function versions are immutable, so one verified when it went live is not verified
        again; one that went live with --insecure-skip-verify needs that flag again."""
        before, ledger = self.current()
        target = to or (before.version if before.weights else self._previous(before, ledger))
        if target is None:
            raise NothingToRollBackError(
                f"no earlier version of {self.alias} in the deployment history: use --to VERSION"
            )
        after = AliasState(target)
        if after == before:
            raise AlreadyServingError(f"{self.alias} already serves version {target} alone")
        config = self._config(target)
        if UNVERIFIED_MARK in config.get("Description", "") and not insecure_skip_verify:
            raise UnverifiedVersionError(
                f"version {target} went live without verification: roll back to it with "
                "--insecure-skip-verify, or deploy a verified model"
            )
        verification = self._skipped() if insecure_skip_verify else PREVIOUSLY_VERIFIED
        self._move(
            before,
            after,
            ledger,
            reason or "rollback",
            _env(config).get("MODEL_VERSION"),
            verification,
            config,
        )
        return after

    def status(self) -> dict[str, Any]:
        """The documented `status --json` shape: alias, weights, and each version's model."""
        state, _ = self.current()
        primary_weight = 1 - sum(state.weights.values())
        versions = []
        for number, weight in [(state.version, primary_weight), *state.weights.items()]:
            config = self.lam.get_function_configuration(
                FunctionName=self.function, Qualifier=number
            )
            env = _env(dict(config))
            versions.append(
                {
                    "version": number,
                    "weight": round(weight, 4),
                    "model": {
                        "name": env.get("MODEL_NAME"),
                        "version": env.get("MODEL_VERSION"),
                        "sha256": env.get("MODEL_SHA256"),
                    },
                    "layers": [layer["Arn"] for layer in config.get("Layers", [])],
                }
            )
        return {"function": self.function, "alias": self.alias, "versions": versions}

    def _verify(
        self, model: ModelVersion, latest: dict[str, Any], insecure_skip_verify: bool
    ) -> Verification:
        """The stack's key signed this manifest; the layer is the registry's, byte for byte."""
        if insecure_skip_verify:
            return self._skipped()
        key = resolve_signing_key(
            self.function,
            function_key=_env(latest).get(KEY_ENV),
            stack_key=self.stack_signing_key,
            explicit=self.signing_key,
        )
        if self.kms is None:
            raise NoSigningKeyError("no KMS client to verify the manifest signature with")
        self.progress(f"verifying {model.name} v{model.version} against key {key}")
        verifier = ModelVerifier(self.kms, self.lam, self.registry, key)
        return verifier.verify(model, latest["FunctionArn"])

    def _verify_version(
        self, version: str, config: dict[str, Any], insecure_skip_verify: bool
    ) -> Verification:
        """The model a published function version serves, verified as a deploy would."""
        if insecure_skip_verify:
            return self._skipped()
        env = _env(config)
        if not env.get("MODEL_VERSION"):
            return STACK_SAMPLE  # the template's own ModelLayer, built with the stack
        model = self.registry.get(env.get("MODEL_NAME", ""), env["MODEL_VERSION"])
        attached = [layer["Arn"] for layer in config.get("Layers", [])]
        if not attached or attached[-1] != model.layer_arn:
            raise ForeignLayerError(
                f"version {version} does not serve the registry's layer of "
                f"{model.name} v{model.version}"
            )
        if env.get("MODEL_SHA256") != model.manifest.sha256:
            raise ForeignLayerError(
                f"version {version} pins sha256 {env.get('MODEL_SHA256', '')[:12]}, "
                f"not the signed manifest's {model.manifest.sha256[:12]}"
            )
        return self._verify(model, self._config(None), insecure_skip_verify=False)

    def _skipped(self) -> Verification:
        self.progress(
            "WARNING: --insecure-skip-verify: the model's signature and layer are NOT "
            "verified; this is recorded in the deployment history"
        )
        return SKIPPED

    def _publish(
        self, model: ModelVersion, config: dict[str, Any], verification: Verification
    ) -> str:
        layers = [layer["Arn"] for layer in config.get("Layers", [])]
        # A registry model layer is always last and overlays the sample's /opt/model:
        # replace it if there is one, else add it (template.yaml keeps the same shape).
        if layers and self.registry.is_model_layer(layers[-1]):
            layers = layers[:-1]
        layers.append(model.layer_arn)
        if len(layers) > MAX_LAYERS:
            raise InvalidRequestError(
                f"{self.function} would have {len(layers)} layers; Lambda allows 5"
            )
        env = dict(config.get("Environment", {}).get("Variables", {}))
        env.update(
            MODEL_NAME=model.name, MODEL_VERSION=model.version, MODEL_SHA256=model.manifest.sha256
        )
        self.progress(f"updating {self.function} to {model.name} v{model.version}")
        # RevisionId: refuse to overwrite a change someone made since we read the config.
        request: dict[str, Any] = (
            {"RevisionId": config["RevisionId"]} if config.get("RevisionId") else {}
        )
        self.lam.update_function_configuration(
            FunctionName=self.function, Layers=layers, Environment={"Variables": env}, **request
        )
        self._wait_updated()
        description = f"{model.name} v{model.version} sha256:{model.manifest.sha256[:16]}"
        if verification.status == "skipped":
            description += f" {UNVERIFIED_MARK}"
        published = self.lam.publish_version(FunctionName=self.function, Description=description)
        self.progress(f"published version {published['Version']}")
        return published["Version"]

    def _wait_updated(self) -> None:
        deadline = self.clock() + self.wait_seconds
        while True:
            config = self.lam.get_function_configuration(FunctionName=self.function)
            status = config.get("LastUpdateStatus", "Successful")
            if status == "Successful":
                return
            if status == "Failed":
                raise FunctionUpdateError(
                    f"the function update failed: {config.get('LastUpdateStatusReason')}"
                )
            if self.clock() > deadline:
                raise FunctionUpdateError(
                    f"the function update did not finish in {self.wait_seconds:.0f} s"
                )
            self.progress(f"waiting for the function update ({status})")
            self.sleep(2)

    def _move(
        self,
        before: AliasState,
        after: AliasState,
        ledger: Ledger | None,
        reason: str,
        model_version: str | None,
        verification: Verification,
        config: dict[str, Any] | None = None,
    ) -> None:
        """Intent in the ledger, then the one alias write, then the records (see records.py)."""
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "id": uuid.uuid4().hex[:8],
            "caller": self.caller,
            "function": self.function,
            "alias": self.alias,
            "from": before.to_dict(),
            "to": after.to_dict(),
            "model_version": model_version,
            "reason": reason,
            "verification": verification.record(),
        }
        if ledger is not None and ledger.state == before:
            known = ledger
        else:  # first change, or the alias was moved outside lambdaserve: start from the alias
            previous = (ledger.previous if ledger else None) if before.weights else None
            known = Ledger(before, previous or self._previous(before, ledger), None)
        self.ledger.write(Ledger(known.state, known.previous, entry))
        self.lam.update_alias(
            FunctionName=self.function,
            Name=self.alias,
            FunctionVersion=after.version,
            RoutingConfig={"AdditionalVersionWeights": after.weights},
        )
        self._finish(entry, known, config)

    def _finish(
        self, entry: dict[str, Any], ledger: Ledger, config: dict[str, Any] | None
    ) -> Ledger:
        """The records of a change whose alias write is done; each step is idempotent."""
        self.history.record(entry)
        after = AliasState.from_dict(entry["to"])
        if not after.weights:
            self._write_ssm(config or self._config(after.version))
        done = ledger.after(entry)
        self.ledger.write(done)
        return done

    def _config(self, version: str | None) -> dict[str, Any]:
        """A version's configuration (None: the unpublished $LATEST)."""
        if version is None:
            return dict(self.lam.get_function_configuration(FunctionName=self.function))
        config = self.lam.get_function_configuration(FunctionName=self.function, Qualifier=version)
        return dict(config)

    def _previous(self, now: AliasState, ledger: Ledger | None) -> str | None:
        """The version that served alone before the current one took over."""
        if ledger is not None and ledger.state is not None:
            if ledger.state == now:
                return ledger.previous
            # Moved outside lambdaserve (a `sam deploy`): back to what we last recorded.
            return ledger.state.version if ledger.state.version != now.version else None
        return self._previous_from_history(now.version)

    def _previous_from_history(self, current: str) -> str | None:
        """For an alias last moved before the ledger existed: one read per history entry."""
        for entry in reversed(self.history.entries()):
            to, came_from = entry["to"], entry["from"]["version"]
            if to["version"] == current and not to["weights"] and came_from != current:
                return str(came_from)
        return None

    def _write_ssm(self, config: dict[str, Any]) -> None:
        """Record what now serves where `sam deploy` reads it (template.yaml)."""
        if self.ssm is not None and self.ssm_prefix:
            live_parameters.write_live(self.ssm, self.ssm_prefix, config)


def _env(config: dict[str, Any]) -> dict[str, str]:
    return dict(config.get("Environment", {}).get("Variables", {}))
