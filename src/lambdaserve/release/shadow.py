"""`lambdaserve shadow start/stop/status`: a function version that receives a mirrored share of
live's requests and answers no client. The alias never moves; the state lives in AWS:

- the shadow version itself, published and validated as a deploy would (verified model,
  golden examples), but routed no traffic;
- the SSM parameter `<prefix>/shadow` (the switch the live version reads, and the record of
  the last shadow: who, when, which version, what share);
- the predict log group's subscription filter `lambdaserve-shadow`, which hands mirror records
  to the shadow version, and the resource policy statement that lets CloudWatch Logs invoke it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdaserve.release.errors import (
    AlreadyServingError,
    InvalidReleaseError,
    NoShadowError,
    ShadowRunningError,
)
from lambdaserve.release.function_versions import validate_golden
from lambdaserve.serving.mirror import FILTER_NAME, MIRROR

if TYPE_CHECKING:
    from lambdaserve.release.deployer import Deployer

STATEMENT = "lambdaserve-shadow"


def shadow_parameter(prefix: str) -> str:
    return f"{prefix.rstrip('/')}/shadow"


def _missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in {"ResourceNotFoundException", "ParameterNotFound"}


def read_shadow(ssm: Any, parameter: str) -> dict[str, Any] | None:
    """The current or last shadow as its switch records it, or None: one SSM read."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except Exception as exc:
        if _missing(exc):
            return None
        raise
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Shadows:
    """Start, read and stop the shadow of one predict function."""

    deployer: Deployer
    logs: Any
    ssm: Any
    log_group: str
    parameter: str
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def read(self) -> dict[str, Any] | None:
        """The current or last shadow as recorded, or None."""
        return read_shadow(self.ssm, self.parameter)

    def start(
        self, name: str, version: str, percent: float, *, insecure_skip_verify: bool = False
    ) -> dict[str, Any]:
        """Publish and validate `name` `version` as a function version, then mirror `percent`
        of the requests live answers to it. The alias does not move."""
        if not 0 < percent <= 100:
            raise InvalidReleaseError("--percent is a share of requests above 0, at most 100")
        current = self.read()
        if current and current.get("state") == "running":
            raise ShadowRunningError(
                f"version {current['function_version']} is already a shadow: stop it first"
            )
        d = self.deployer
        model, latest, verification = d.gate.registry_model(name, version, insecure_skip_verify)
        if any(f.pii for f in model.manifest.features):
            raise InvalidReleaseError(
                f"{name} v{version} has pii features: mirroring would write them to the logs"
            )
        state, _ = d.settled()
        self._check_live(state.version)
        shadow_version = d.publisher.publish(model, latest, verification)
        if shadow_version == state.version:
            raise AlreadyServingError(f"{d.alias} already serves version {shadow_version}")
        d.progress(f"validating shadow version {shadow_version} with its golden examples")
        validate_golden(d.invoker, d.function, shadow_version, model.manifest, d.alias)
        self._subscribe(shadow_version)
        record = {
            "state": "running",
            "function_version": shadow_version,
            "live_version": state.version,
            "model": model.name,
            "model_version": model.version,
            "percent": percent,
            "started": self.clock().isoformat(timespec="seconds"),
            "by": d.caller,
            "verification": verification.status,
        }
        self._write(record)  # the switch: live mirrors from its next read (30 s at most)
        d.progress(f"version {shadow_version} shadows {d.alias} on {percent:g}% of its requests")
        return record

    def _check_live(self, live_version: str) -> None:
        """Live reads this switch, and its model has no pii features to mirror."""
        env = self.deployer.config_of(live_version).get("Environment", {}).get("Variables", {})
        if env.get("SHADOW_PARAMETER") != self.parameter:
            raise InvalidReleaseError(
                f"live version {live_version} reads no shadow switch at {self.parameter} "
                f"(its SHADOW_PARAMETER is {env.get('SHADOW_PARAMETER')!r}): update the "
                "stack with this release's template.yaml first"
            )
        name, version = env.get("MODEL_NAME"), env.get("MODEL_VERSION")
        if not (name and version):
            return  # the stack's sample model: no pii features
        if any(f.pii for f in self.deployer.registry.get(name, version).manifest.features):
            raise InvalidReleaseError(
                f"live serves {name} v{version}, which has pii features: mirroring its "
                "requests would write them to the logs"
            )

    def _subscribe(self, version: str) -> None:
        lam = self.deployer.lam
        arn = str(self.deployer.config_of(version)["FunctionArn"])
        target = arn if arn.endswith(f":{version}") else f"{arn}:{version}"
        partition, _, region, account = target.split(":")[1:5]
        # Already there if this version was a shadow before.
        with contextlib.suppress(lam.exceptions.ResourceConflictException):
            lam.add_permission(
                FunctionName=self.deployer.function,
                Qualifier=version,
                StatementId=STATEMENT,
                Action="lambda:InvokeFunction",
                Principal="logs.amazonaws.com",
                SourceArn=f"arn:{partition}:logs:{region}:{account}:log-group:{self.log_group}:*",
                SourceAccount=account,
            )
        self.logs.put_subscription_filter(
            logGroupName=self.log_group,
            filterName=FILTER_NAME,
            filterPattern=f"{{ $.{MIRROR} = 1 }}",
            destinationArn=target,
        )

    def stop(self, reason: str = "stopped") -> dict[str, Any]:
        """Live stops mirroring (from its next read), the subscription and permission go."""
        current = self.read()
        if not current or current.get("state") != "running":
            raise NoShadowError("no shadow is running")
        record = {
            **current,
            "state": "stopped",
            "stopped": self.clock().isoformat(timespec="seconds"),
            "stop_reason": reason,
        }
        self._write(record)
        try:
            self.logs.delete_subscription_filter(
                logGroupName=self.log_group, filterName=FILTER_NAME
            )
        except Exception as exc:
            if not _missing(exc):
                raise
        try:
            self.deployer.lam.remove_permission(
                FunctionName=self.deployer.function,
                Qualifier=str(current["function_version"]),
                StatementId=STATEMENT,
            )
        except Exception as exc:
            if not _missing(exc):
                raise
        self.deployer.progress(f"shadow version {current['function_version']} stopped")
        return record

    def _write(self, record: dict[str, Any]) -> None:
        self.ssm.put_parameter(
            Name=self.parameter, Value=json.dumps(record), Type="String", Overwrite=True
        )
