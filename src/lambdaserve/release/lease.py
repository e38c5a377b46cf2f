"""One release at a time per alias: a lease object beside the alias's ledger, taken with S3's
conditional writes, so two releases (two CI jobs, a laptop and a pipeline) never interleave
their publish, golden check and alias write.

S3 documents the two conditions used: `If-None-Match: *` makes a PutObject fail with 412
PreconditionFailed when the key exists (taking a free lease), and `If-Match: <ETag>` makes it
fail when the object changed since it was read (taking over an expired lease, so only one of
two takers wins). A lease names its holder and expires, so a release killed mid-way blocks
the next one only until then (`expires`); deleting the object by hand frees it at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdaserve.release.errors import ReleaseInFlightError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Longer than any one release command can take: a publish and its wait (300 s), the golden
# check, a provisioned handover (900 s). A judged rollout's canary between steps is guarded by
# the alias's weights, not by the lease.
LEASE_SECONDS = 1800
_TAKEN = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


class ReleaseLease:
    """The lease of one function's alias; `held(operation)` around every alias change.
    Re-entrant within one process: an operation that calls another keeps the one lease."""

    def __init__(
        self,
        bucket: str,
        s3: S3Client,
        function: str,
        alias: str,
        caller: str,
        clock: Callable[[], float] = time.time,
        seconds: float = LEASE_SECONDS,
    ) -> None:
        self.bucket, self.s3, self.caller = bucket, s3, caller
        self.key = f"aliases/{function}/{alias}.lease.json"
        self.alias, self.clock, self.seconds = alias, clock, seconds
        self._depth = 0

    def holder(self) -> dict[str, Any] | None:
        """The lease as stored, with its ETag, or None when no release is in flight."""
        try:
            found = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return {**json.loads(found["Body"].read()), "etag": found["ETag"]}

    def check(self) -> None:
        """ReleaseInFlightError if another release holds an unexpired lease."""
        held = self.holder()
        if held is not None and held["expires_at"] > self.clock():
            raise ReleaseInFlightError(self._refusal(held))

    def break_lease(self) -> dict[str, Any] | None:
        """Free the lease whoever holds it (a release known to be dead): what it said, if any.
        For the way out of trouble (`rollback --break-lease`), not for racing a live release."""
        held = self.holder()
        if held is not None:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)
        return held

    @contextmanager
    def held(self, operation: str) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._take(operation)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self.s3.delete_object(Bucket=self.bucket, Key=self.key)

    def _take(self, operation: str) -> None:
        """One conditional PutObject when the lease is free (a release's only extra call
        before its work); a read and a second, guarded, put only when it is held or stale."""
        now = self.clock()
        body = json.dumps(
            {
                "holder": self.caller,
                "operation": operation,
                "since": _iso(now),
                "expires": _iso(now + self.seconds),
                "expires_at": now + self.seconds,
            }
        ).encode()
        if self._put(body, {"IfNoneMatch": "*"}):
            return
        held = self.holder()
        if held is not None and held["expires_at"] > now:
            raise ReleaseInFlightError(self._refusal(held))
        # Expired (a release killed mid-way), or freed meanwhile: take it over, once.
        condition = {"IfMatch": held["etag"]} if held else {"IfNoneMatch": "*"}
        if not self._put(body, condition):
            now_held = self.holder()
            raise ReleaseInFlightError(
                self._refusal(now_held) if now_held else "another release took the lease first"
            )

    def _put(self, body: bytes, condition: dict[str, str]) -> bool:
        """False when the condition did not hold (S3's 412, or 409 for a concurrent write)."""
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=body,
                ContentType="application/json",
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _TAKEN:
                return False
            raise
        return True

    def _refusal(self, held: dict[str, Any]) -> str:
        return (
            f"another release is in flight on {self.alias}: {held['operation']} by "
            f"{held['holder']} since {held['since']} (the lease expires {held['expires']}); "
            "nothing changed (if that release is dead: rollback --break-lease)"
        )
