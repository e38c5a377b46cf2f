"""Why a batch run did not happen or did not finish: the batch room's own errors, so the
shipped batch code needs nothing of the release room's."""

from __future__ import annotations


class BatchError(Exception):
    """A batch input, output or run that failed; the CLI maps it to an exit code."""


class BatchRunFailedError(BatchError):
    """The run ended without a complete output (the report says which parts)."""
