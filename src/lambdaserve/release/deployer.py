"""Function versions and the alias: deploy (validated), canary, promote, rollback, history."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdaserve.alias import AliasState
from lambdaserve.registry.store import Registry
from lambdaserve.registry.trust import (
    ADOPTED,
    PREVIOUSLY_VERIFIED,
    UNVERIFIED_MARK,
    UnverifiedVersionError,
    Verification,
)
from lambdaserve.release import live_parameters
from lambdaserve.release.errors import (
    AliasDriftError,
    AlreadyServingError,
    CanaryInProgressError,
    InvalidReleaseError,
    NoCanaryError,
    NothingToRollBackError,
)
from lambdaserve.release.function_versions import (
    PROVISIONED_ENV,
    Follower,
    VersionPublisher,
    describe_versions,
    followers_named_by,
    function_env,
    validate_golden,
)
from lambdaserve.release.handover import Handover
from lambdaserve.release.lease import ReleaseLease
from lambdaserve.release.records import (
    History,
    Ledger,
    LedgerStore,
    drift_of,
    history_entry,
    previous_version,
)
from lambdaserve.release.sizes import DeploymentSizes
from lambdaserve.release.trust_gate import TrustGate
from lambdaserve.shared.invoker import Invoker

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_ssm import SSMClient


@dataclass(frozen=True)
class ReleaseTarget:
    """Which alias of which function a deployer moves, who moves it, and what follows it."""

    function: str
    alias: str = "live"
    caller: str = "unknown"
    ssm_prefix: str | None = None  # where the live model's parameters are written, if anywhere
    # Functions that serve the model `live` serves alone (the batch function): given, or named
    # by the function itself (BATCH_FUNCTION, set by template.yaml).
    followers: tuple[str, ...] = ()


def _leased[Change: Callable[..., Any]](change: Change) -> Change:
    """An alias change runs holding the alias's release lease (one release at a time)."""

    @functools.wraps(change)
    def run(self: Deployer, *args: Any, **kwargs: Any) -> Any:
        if self.lease is None:
            return change(self, *args, **kwargs)
        with self.lease.held(change.__name__):
            return change(self, *args, **kwargs)

    return run  # type: ignore[return-value]


class Deployer:
    """Moves one function's alias between versions, recording and validating as it goes.
    Built by `create_deployer`, which hands it its collaborators."""

    def __init__(
        self,
        *,
        target: ReleaseTarget,
        lambda_client: LambdaClient,
        registry: Registry,
        invoker: Invoker,
        gate: TrustGate,
        publisher: VersionPublisher,
        history: History,
        ledger: LedgerStore,
        handover: Handover,
        ssm: SSMClient | None = None,
        progress: Callable[[str], None] = lambda _: None,
        lease: ReleaseLease | None = None,
    ) -> None:
        self.target, self.lease = target, lease
        self.function, self.alias, self.caller = target.function, target.alias, target.caller
        self.ssm_prefix, self.follower_names = target.ssm_prefix, target.followers
        self.lam, self.registry, self.invoker = lambda_client, registry, invoker
        self.gate, self.publisher, self.handover = gate, publisher, handover
        self.history, self.ledger = history, ledger
        self.ssm, self.progress = ssm, progress

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

    def drift(self, now: AliasState, ledger: Ledger | None) -> dict[str, Any] | None:
        """Where the alias points, if not where lambdaserve last recorded it."""
        return drift_of(self.alias, now, ledger)

    def _unmoved(
        self, now: AliasState, ledger: Ledger | None, adopt: bool
    ) -> tuple[AliasState, Ledger | None]:
        """Refuse (AliasDriftError) to release over a move lambdaserve did not make, unless
        told to adopt it: then the move is recorded as it is (history and ledger) first."""
        drifted = self.drift(now, ledger)
        if drifted is None:
            return now, ledger
        if not adopt or ledger is None or ledger.state is None:
            raise AliasDriftError(
                f"{drifted['summary']}: `lambdaserve rollback` returns to the recorded "
                "version; pass --adopt to release from where it points now"
            )
        self.progress(f"adopting it: {drifted['summary']}")
        served = function_env(self.config_of(now.version)).get("MODEL_VERSION")
        entry = self._entry(ledger.state, now, "adopted a move made outside lambdaserve", ADOPTED)
        entry["model_version"] = served
        # No alias write: the alias is already there. The records follow it (history, SSM,
        # the batch function, the ledger), as for a change of our own.
        self._finish(entry, ledger, None)
        return self.current()

    def history_entries(self) -> list[dict[str, Any]]:
        """Every alias change, oldest first, after finishing any interrupted one."""
        self.current()
        return self.history.entries()

    @_leased
    def deploy(
        self,
        name: str,
        version: str,
        canary_percent: float | None = None,
        reason: str = "",
        *,
        insecure_skip_verify: bool = False,
        adopt: bool = False,
    ) -> AliasState:
        """Verify the model, pin it in a new function version, validate it, move the alias.
        A move made outside lambdaserve is refused (AliasDriftError) unless `adopt`."""
        if canary_percent is not None and not 0 < canary_percent < 100:
            raise InvalidReleaseError("--canary is a percentage between 0 and 100 (exclusive)")
        before, ledger = self.settled(adopt)  # refused before any verification work
        model, latest, verification = self.gate.registry_model(name, version, insecure_skip_verify)
        new_version = self.publisher.publish(model, latest, verification)
        if new_version == before.version:
            raise AlreadyServingError(
                f"{self.alias} already serves version {new_version} with this model"
            )
        self.progress(
            f"validating version {new_version} with "
            f"{len(model.manifest.golden_examples)} golden examples"
        )
        validate_golden(self.invoker, self.function, new_version, model.manifest, self.alias)
        if canary_percent is None:
            after = AliasState(new_version)
        else:
            after = AliasState.canary(before.version, new_version, canary_percent)
        reason = reason or f"deploy {name} v{version}"
        self._move(before, after, ledger, reason, verification, model_version=model.version)
        return after

    def settled(self, adopt: bool = False) -> tuple[AliasState, Ledger | None]:
        """The alias and its ledger; CanaryInProgressError while it has a canary,
        AliasDriftError where it was moved outside lambdaserve (unless `adopt`)."""
        now, ledger = self._unmoved(*self.current(), adopt)
        return self._without_canary(now), ledger

    def ready(self, adopt: bool = False) -> AliasState:
        """Whether a release may start now, changing nothing: ReleaseInFlightError while
        another holds the lease, then as `settled` (drift is not checked with `adopt`: the
        release will adopt it)."""
        if self.lease is not None:
            self.lease.check()
        now, ledger = self.current()
        if not adopt:
            now, ledger = self._unmoved(now, ledger, False)
        return self._without_canary(now)

    def _without_canary(self, now: AliasState) -> AliasState:
        if now.weights:
            raise CanaryInProgressError(
                f"a canary is in progress on {self.alias} ({now.describe()}): "
                "promote or rollback it first"
            )
        return now

    def _canary(self, action: str, adopt: bool = False) -> tuple[AliasState, Ledger | None, str]:
        """The alias, its ledger and its canary version (NoCanaryError if it has none;
        AliasDriftError where the alias was moved outside lambdaserve, unless `adopt`)."""
        before, ledger = self._unmoved(*self.current(), adopt)
        if not before.weights:
            raise NoCanaryError(f"no canary on {self.alias} to {action}")
        (canary,) = before.weights
        return before, ledger, canary

    @_leased
    def step(self, percent: float, reason: str, judged: dict[str, Any]) -> AliasState:
        """Move a canary's weight to `percent` (its model was verified when it was deployed)."""
        before, ledger, canary = self._canary("step")
        after = AliasState.canary(before.version, canary, percent)
        model = function_env(self.config_of(canary)).get("MODEL_VERSION")
        self._move(
            before, after, ledger, reason, PREVIOUSLY_VERIFIED, model_version=model, judged=judged
        )
        return after

    @_leased
    def promote(
        self,
        reason: str = "",
        *,
        insecure_skip_verify: bool = False,
        judged: dict[str, Any] | None = None,
        adopt: bool = False,
    ) -> AliasState:
        """Verify the canary version's model again, then send all traffic to it."""
        before, ledger, canary = self._canary("promote", adopt)
        config = self.config_of(canary)
        verification = self.gate.version(canary, config, insecure_skip_verify)
        after = AliasState(canary)
        reason = reason or "promote"
        self._move(before, after, ledger, reason, verification, config=config, judged=judged)
        return after

    @_leased
    def rollback(
        self,
        to: str | None = None,
        reason: str = "",
        *,
        insecure_skip_verify: bool = False,
        judged: dict[str, Any] | None = None,
    ) -> AliasState:
        """Point the alias back at the previously live version, in one UpdateAlias call.

        Function versions are immutable, so one verified when it went live is not verified
        again; one that went live with --insecure-skip-verify needs that flag again."""
        before, ledger = self.current()
        drifted = self.drift(before, ledger)
        if drifted is not None and to is None:  # "previous" is then what lambdaserve recorded
            self.progress(f"{drifted['summary']}: back to the recorded version")
        target = to or (
            before.version if before.weights else previous_version(before, ledger, self.history)
        )
        if target is None:
            raise NothingToRollBackError(
                f"no earlier version of {self.alias} in the deployment history: use --to VERSION"
            )
        after = AliasState(target)
        if after == before:
            raise AlreadyServingError(f"{self.alias} already serves version {target} alone")
        config = self.config_of(target)
        if UNVERIFIED_MARK in config.get("Description", "") and not insecure_skip_verify:
            raise UnverifiedVersionError(
                f"version {target} went live without verification: roll back to it with "
                "--insecure-skip-verify, or deploy a verified model"
            )
        verification = self.gate.skipped() if insecure_skip_verify else PREVIOUSLY_VERIFIED
        reason = reason or "rollback"
        self._move(
            before, after, ledger, reason, verification, config=config, judged=judged, warm=False
        )
        return after

    def status(self) -> dict[str, Any]:
        """The documented `status --json` shape: alias, weights, and each version's model."""
        state, ledger = self.current()
        versions = describe_versions(self.lam, self.function, state)
        return {
            "function": self.function,
            "alias": self.alias,
            "versions": versions,
            "drift": self.drift(state, ledger),
        }

    def _move(
        self,
        before: AliasState,
        after: AliasState,
        ledger: Ledger | None,
        reason: str,
        verification: Verification,
        *,
        model_version: str | None = None,
        config: dict[str, Any] | None = None,
        judged: dict[str, Any] | None = None,
        warm: bool = True,
    ) -> None:
        """Intent in the ledger, then the one alias write, then the records (see records.py).
        `config` is the version that will serve alone (its model version is read from it); a
        move the canary judge decided records its verdict and figures. Provisioned mode: the
        versions it gives traffic are warm first, unless not to `warm` (handover.py)."""
        if config is not None:
            model_version = function_env(config).get("MODEL_VERSION")
        entry = self._entry(before, after, reason, verification)
        entry["model_version"] = model_version
        if judged:
            entry["judge"] = judged
        if ledger is not None and ledger.state == before:
            known = ledger
        else:  # first change, or the alias was moved outside lambdaserve: start from the alias
            previous = (ledger.previous if ledger else None) if before.weights else None
            known = Ledger(before, previous or previous_version(before, ledger, self.history), None)
        warmed = self.handover.before(before, after) if warm else []
        self.ledger.write(Ledger(known.state, known.previous, entry))
        self.lam.update_alias(
            FunctionName=self.function,
            Name=self.alias,
            FunctionVersion=after.version,
            RoutingConfig={"AdditionalVersionWeights": after.weights},
        )
        self._finish(entry, known, config)
        self.handover.after(warmed)
        if not after.weights:  # the alias's own provisioned concurrency, as the stack asks
            floor = function_env(config or self.config_of(after.version)).get(PROVISIONED_ENV)
            self.handover.keep_floor(int(floor) if floor and floor.isdigit() else None)

    def _entry(
        self, before: AliasState, after: AliasState, reason: str, verification: Verification
    ) -> dict[str, Any]:
        """A history entry of one alias change (its model version set by the caller)."""
        where = (self.caller, self.function, self.alias)
        return history_entry(*where, before, after, reason, verification.record())

    def _finish(
        self, entry: dict[str, Any], ledger: Ledger, config: dict[str, Any] | None
    ) -> Ledger:
        """The records of a change whose alias write is done; each step is idempotent."""
        self.history.record(entry)
        after = AliasState.from_dict(entry["to"])
        if not after.weights:
            served = config or self.config_of(after.version)
            if self.ssm is not None and self.ssm_prefix:  # what `sam deploy` reads (template)
                live_parameters.write_live(self.ssm, self.ssm_prefix, served)
            for follower in self.followers(served):
                follower.follow(served)
        done = ledger.after(entry)
        self.ledger.write(done)
        return done

    def followers(self, served: dict[str, Any]) -> list[Follower]:
        """Who follows: the names given, else the one the serving version names."""
        names = self.follower_names or followers_named_by(served)
        return [Follower(self.publisher.of(name)) for name in names]

    def config_of(self, version: str | None) -> dict[str, Any]:
        """A version's configuration (None: the unpublished $LATEST)."""
        qualifier = {"Qualifier": version} if version is not None else {}
        return dict(self.lam.get_function_configuration(FunctionName=self.function, **qualifier))


def create_deployer(
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
    followers: tuple[str, ...] = (),
) -> Deployer:
    """The one place a Deployer is put together (the CLI, the local stack and the tests call
    it): each collaborator made from the clients and names, then handed over, as Chalice's
    `_create_deployer` hands its deployer the stages."""
    target = ReleaseTarget(function, alias, caller, ssm_prefix, followers)
    return Deployer(
        target=target,
        lambda_client=lambda_client,
        registry=registry,
        invoker=invoker,
        # The function's own SIGNING_KEY_ARN is the trust anchor; these must agree with it.
        gate=TrustGate(
            lambda_client, registry, function, kms, signing_key, stack_signing_key, progress
        ),
        publisher=VersionPublisher(
            lambda_client,
            registry,
            function,
            progress,
            sleep,
            clock,
            wait_seconds,
            sizes=DeploymentSizes(lambda_client, registry),
        ),
        history=History(registry.bucket, registry.s3, function),
        ledger=LedgerStore(registry.bucket, registry.s3, function, alias),
        handover=Handover(lambda_client, function, alias, progress, sleep, clock),
        ssm=ssm,
        progress=progress,
        lease=ReleaseLease(registry.bucket, registry.s3, function, alias, caller),
    )
