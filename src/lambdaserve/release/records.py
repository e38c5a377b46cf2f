"""What the registry bucket remembers about an alias, kept in step with the alias itself.

The alias is the truth; two records follow it:
    deployments/<function>/<time>-<id>.json   the history: one immutable entry per change
    aliases/<function>/<alias>.json           the ledger: where the alias points, the version
                                              that served before it (rollback's target), and
                                              the change in flight, if any
A change is written as an intent in the ledger *before* the alias moves. Whoever reads the
ledger next and finds an intent finishes it (history entry, SSM, ledger) if the alias did
move, or drops it if it did not: so `status`, `history` and SSM converge on the alias even
when a process dies between the alias write and the records. Rollback reads the ledger: one
object, however long the history.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdaserve.alias import AliasState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class History:
    """Every alias change, one JSON object each, in the registry bucket."""

    def __init__(self, bucket: str, s3: S3Client, function: str) -> None:
        self.bucket, self.s3 = bucket, s3
        self.prefix = f"deployments/{function}/"

    def key(self, entry: dict[str, Any]) -> str:
        """Deterministic per change, so finishing an interrupted change never duplicates it."""
        return f"{self.prefix}{entry['time']}-{entry['id']}.json"

    def record(self, entry: dict[str, Any]) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self.key(entry),
            Body=json.dumps(entry).encode(),
            ContentType="application/json",
        )

    def entries(self) -> list[dict[str, Any]]:
        """Oldest first (keys start with an ISO time)."""
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return [
            json.loads(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read())
            for k in sorted(keys)
        ]


@dataclass
class Ledger:
    """The alias as last recorded, rollback's target, and a change in flight."""

    state: AliasState | None = None
    previous: str | None = None  # the version that served alone before `state.version`
    pending: dict[str, Any] | None = None  # a history entry whose alias write may not be done

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.to_dict() if self.state else None,
            "previous": self.previous,
            "pending": self.pending,
        }

    def after(self, entry: dict[str, Any]) -> Ledger:
        """The ledger once `entry`'s change is done: a version that takes over alone from
        another becomes the one to roll back to; a canary leaves that unchanged."""
        before, now = AliasState.from_dict(entry["from"]), AliasState.from_dict(entry["to"])
        previous = self.previous
        if not now.weights and now.version != before.version:
            previous = before.version
        return Ledger(now, previous, None)


class JsonObject:
    """One JSON object in the registry bucket, read (None if it is not there) and written whole."""

    def __init__(self, bucket: str, s3: S3Client, key: str) -> None:
        self.bucket, self.s3, self.key = bucket, s3, key

    def read(self) -> Any:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body)

    def write(self, data: Any) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self.key,
            Body=json.dumps(data).encode(),
            ContentType="application/json",
        )


class LedgerStore:
    """Reads and writes one alias's ledger object."""

    def __init__(self, bucket: str, s3: S3Client, function: str, alias: str) -> None:
        self.object = JsonObject(bucket, s3, f"aliases/{function}/{alias}.json")

    def read(self) -> Ledger | None:
        """None for an alias never moved by this version of lambdaserve."""
        data = self.object.read()
        if data is None:
            return None
        state = AliasState.from_dict(data["state"]) if data.get("state") else None
        return Ledger(state, data.get("previous"), data.get("pending"))

    def write(self, ledger: Ledger) -> None:
        self.object.write(ledger.to_dict())


def previous_version(now: AliasState, ledger: Ledger | None, history: History) -> str | None:
    """The version that served alone before the current one took over."""
    if ledger is not None and ledger.state is not None:
        if ledger.state == now:
            return ledger.previous
        # Moved outside lambdaserve (a `sam deploy`): back to what we last recorded.
        return ledger.state.version if ledger.state.version != now.version else None
    # An alias last moved before the ledger existed: one read per history entry.
    for entry in reversed(history.entries()):
        to, came_from = entry["to"], entry["from"]["version"]
        if to["version"] == now.version and not to["weights"] and came_from != now.version:
            return str(came_from)
    return None


def history_entry(
    caller: str,
    function: str,
    alias: str,
    before: AliasState,
    after: AliasState,
    reason: str,
    verification: dict[str, Any],
) -> dict[str, Any]:
    """One history entry: who moved which alias from where to where, why, how verified (the
    model version is set by the mover)."""
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "id": uuid.uuid4().hex[:8],
        "caller": caller,
        "function": function,
        "alias": alias,
        "from": before.to_dict(),
        "to": after.to_dict(),
        "model_version": None,
        "reason": reason,
        "verification": verification,
    }


def drift_of(alias: str, now: AliasState, ledger: Ledger | None) -> dict[str, Any] | None:
    """Where the alias points, if not where the ledger recorded it: a move made outside
    lambdaserve (`aws lambda update-alias`, CloudFormation, CodeDeploy)."""
    if ledger is None or ledger.state is None or ledger.pending is not None:
        return None  # never moved by lambdaserve, or a change of ours in flight
    if ledger.state == now:
        return None
    return {
        "recorded": ledger.state.to_dict(),
        "actual": now.to_dict(),
        "summary": (
            f"{alias} was moved outside lambdaserve: lambdaserve recorded "
            f"{ledger.state.describe()}, it now sends {now.describe()}"
        ),
    }
