"""Why a deploy, promote or rollback did not happen (the alias is as it was), one type each;
the CLI maps them to exit codes in one place (lambdaserve.cli.exit_codes.TABLE)."""

from __future__ import annotations


class DeployError(Exception):
    """A deploy, promote or rollback that did not happen; the alias is as it was."""


class InvalidReleaseError(DeployError):
    """What was asked cannot be done as asked (a bad percentage, a version with no layer)."""


class CanaryInProgressError(DeployError):
    """A deploy while a canary runs: promote or roll back first."""


class NoCanaryError(DeployError):
    """A promote with no canary to promote."""


class NothingToRollBackError(DeployError):
    """No earlier version in the records to roll back to."""


class AlreadyServingError(DeployError):
    """The alias already serves what was asked for."""


class AliasDriftError(DeployError):
    """The alias was moved outside lambdaserve (by hand, by CloudFormation or CodeDeploy): a
    release does not overwrite a move it did not make unless told to adopt it."""


class ValidationFailedError(DeployError):
    """The new version did not reproduce its golden examples, or failed to answer."""


class FunctionUpdateError(DeployError):
    """Lambda did not apply the function update (failed, or too slow)."""


class NoShadowError(InvalidReleaseError):
    """A shadow stop, report or promote with no shadow to act on."""


class ShadowRunningError(InvalidReleaseError):
    """A shadow start while another shadow runs."""


class ReleaseInFlightError(DeployError):
    """Another release holds the alias's lease (release/lease.py): one at a time."""


class NothingToReleaseError(DeployError):
    """`lambdaserve release` found nothing new: live already serves that model on $LATEST's
    configuration (or serves the template's sample, which is not in the registry)."""
