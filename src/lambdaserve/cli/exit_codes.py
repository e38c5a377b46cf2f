"""The one table of exit codes, and how any failure becomes one line and its code (`Commands`,
the group every command runs in).

Every command ends in one of these; nothing else sets an exit code (click's usage errors are
2, as click makes them). The reference page of the docs is generated from `TABLE`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from lambdaserve.batch.errors import BatchError, BatchRunFailedError
from lambdaserve.bundle.make import BundleError
from lambdaserve.local.cloudformation import StackUpdateError
from lambdaserve.manifest import ManifestError
from lambdaserve.monitor.window import MonitorError
from lambdaserve.registry.store import RegistryError
from lambdaserve.registry.trust import UntrustedModelError
from lambdaserve.release.errors import (
    AliasDriftError,
    AlreadyServingError,
    CanaryInProgressError,
    DeployError,
    NoCanaryError,
    NoShadowError,
    NothingToRollBackError,
    ReleaseInFlightError,
    ShadowRunningError,
    ValidationFailedError,
)
from lambdaserve.release.rollout import NoRolloutError
from lambdaserve.shared.invoker import InvocationError


class CommandError(Exception):
    """A command that did not do what was asked: the reason is its one line."""


class NoStackError(CommandError):
    """--stack names a stack that does not exist (here)."""


class NoRegionGivenError(CommandError):
    """No AWS region from --region, the environment or the profile."""


class DriftFoundError(CommandError):
    """`monitor run --fail-on-drift` measured drift."""


class ShadowDisagreesError(CommandError):
    """`shadow report`: the shadow does not agree with live."""


class RolledBackError(CommandError):
    """The canary judge rolled a judged rollout back."""


class CapacityNotReadyError(CommandError):
    """Provisioned concurrency did not become READY in time (or failed)."""


@dataclass(frozen=True)
class ExitCode:
    """One row of the table: the code, what it means, and the errors that end in it."""

    code: int
    meaning: str
    errors: tuple[type[BaseException], ...] = ()


SUCCESS = ExitCode(0, "done")
USAGE = ExitCode(2, "a usage error: a missing or malformed argument or option (click's)")
TABLE: tuple[ExitCode, ...] = (
    SUCCESS,
    ExitCode(
        1,
        "a failure: nothing found, AWS said no, no region or credentials, a bundle or "
        "manifest that cannot be used, a monitor that could not run",
    ),
    USAGE,
    ExitCode(3, "the model is not trusted (signature, key, layer)", (UntrustedModelError,)),
    ExitCode(4, "the new version failed its golden examples", (ValidationFailedError,)),
    ExitCode(
        5,
        "the alias is not in a state for this: another release in flight, a canary or "
        "rollout in progress (an infrastructure change waits for it), no canary "
        "to promote, nothing to roll back to, already serving it, no rollout to resume, a "
        "shadow already running or none to act on, or moved outside lambdaserve (--adopt)",
        (
            AliasDriftError,
            ReleaseInFlightError,
            CanaryInProgressError,
            NoCanaryError,
            NothingToRollBackError,
            AlreadyServingError,
            NoRolloutError,
            NoShadowError,
            ShadowRunningError,
        ),
    ),
    ExitCode(6, "a batch run that did not complete", (BatchRunFailedError,)),
    ExitCode(
        7,
        "drift (`monitor run --fail-on-drift`), or a shadow that disagrees (`shadow report`)",
        (DriftFoundError, ShadowDisagreesError),
    ),
    ExitCode(8, "the canary judge rolled the canary back", (RolledBackError,)),
)
FAILURE = TABLE[1]

# What a command may fail with and still owe the user only one line (anything else is a bug
# and keeps its traceback).
FAILURES: tuple[type[BaseException], ...] = (
    CommandError,
    DeployError,
    StackUpdateError,
    BatchError,
    RegistryError,
    ManifestError,
    UntrustedModelError,
    BundleError,
    MonitorError,
    InvocationError,
    ClientError,
    BotoCoreError,
    OSError,
)


def exit_code_of(exc: BaseException) -> int:
    """The table's code for a failure: the first row that names its type, else 1."""
    for row in TABLE:
        if isinstance(exc, row.errors):
            return row.code
    return FAILURE.code


def reason_of(exc: BaseException) -> str:
    """The one line a failure is reported with."""
    if isinstance(exc, NoRegionError):
        return NO_REGION
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: set a profile (AWS_PROFILE) or keys, or use the local stack"
    if isinstance(exc, ReadTimeoutError):
        return f"AWS did not answer in time: {exc}"
    if isinstance(exc, ClientError):
        error: dict[str, Any] = dict(exc.response.get("Error", {}))
        operation = getattr(exc, "operation_name", "the call")
        named = f" ({error['BucketName']})" if error.get("BucketName") else ""
        return (
            f"AWS refused {operation}: {error.get('Code', '?')}: {error.get('Message', exc)}{named}"
        )
    return str(exc).strip() or type(exc).__name__


NO_REGION = (
    "no AWS region: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or give your "
    "profile a region (aws configure)"
)


class Refused(click.ClickException):
    """A failure on its way out: one line on stderr and the table's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def refused(exc: BaseException) -> Refused:
    """The failure as click reports it: its one line and its code from the one table."""
    return Refused(reason_of(exc), exit_code_of(exc))


class Commands(click.Group):
    """The `lambdaserve` group: whatever a command raises that the exit-code table knows ends
    as one line and its code, never a traceback, wherever in the command it was raised."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FAILURES as exc:
            raise refused(exc) from None
