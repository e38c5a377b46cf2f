"""Provisioned concurrency on the local stack, which moto does not have: the endpoint answers
Lambda's Put/Get/Delete/ListProvisionedConcurrencyConfig(s) itself, and the pool keeps that
many environments initialised ahead of traffic for the alias's versions (split by the alias's
weights), re-split whenever the alias moves."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from lambdaserve.alias import AliasState
from lambdaserve.local.pool import WorkerPool

PATH = r"^/2019-09-30/functions/(?P<name>[^/]+)/provisioned-concurrency$"


class ProvisionedConcurrency:
    """Requested environments per (function, alias), and their allocation."""

    def __init__(
        self,
        pool: WorkerPool,
        read_alias: Callable[[str, str], AliasState],
        arn_of: Callable[[str], str],
        log: Callable[[str], None] = print,
    ) -> None:
        self.pool, self.read_alias, self.arn_of, self.log = pool, read_alias, arn_of, log
        self._configs: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -- Lambda's API ------------------------------------------------------------------
    def handle(
        self, method: str, function: str, query: dict[str, list[str]], body: dict[str, Any]
    ) -> tuple[int, dict[str, Any] | None]:
        """(HTTP status, JSON body) for one call, as Lambda answers it."""
        if method == "GET" and query.get("List"):
            found = [
                {"FunctionArn": f"{self.arn_of(f)}:{q}", **self._public(c)}
                for (f, q), c in self._configs.items()
                if f == function
            ]
            return 200, {"ProvisionedConcurrencyConfigs": found}
        qualifier = query.get("Qualifier", [""])[0]
        if not qualifier or qualifier == "$LATEST":
            return 400, _error("InvalidParameterValueException", "a Qualifier (an alias) is needed")
        key = (function, qualifier)
        if method == "PUT":
            wanted = int(body.get("ProvisionedConcurrentExecutions", 0))
            if wanted < 1:
                return 400, _error("InvalidParameterValueException", "at least 1")
            if not qualifier.isdigit() and self.read_alias(function, qualifier).weights:
                return 400, _error(  # as Lambda: the alias's split is fixed while it has weights
                    "InvalidParameterValueException",
                    "Alias with weights can not be used with Provisioned Concurrency",
                )
            self.put(function, qualifier, wanted)
            return 202, self._public(self._configs[key])
        if key not in self._configs:
            return 404, _error(
                "ProvisionedConcurrencyConfigNotFoundException",
                f"No Provisioned Concurrency Config found for this function: {function}",
            )
        if method == "GET":
            self._follow(function, qualifier)
        if method == "DELETE":
            with self._lock:
                del self._configs[key]
            return 204, None
        return 200, self._public(self._configs[key])

    def put(self, function: str, alias: str, wanted: int, background: bool = True) -> None:
        """Request `wanted` environments for the alias; they start in the background (or
        before this returns)."""
        with self._lock:
            self._configs[function, alias] = {
                "RequestedProvisionedConcurrentExecutions": wanted,
                "AvailableProvisionedConcurrentExecutions": wanted,
                "AllocatedProvisionedConcurrentExecutions": 0,
                "Status": "IN_PROGRESS",
                "LastModified": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        if background:
            threading.Thread(target=self.allocate, args=(function, alias), daemon=True).start()
        else:
            self.allocate(function, alias)

    def ready(self, function: str, alias: str, timeout: float = 300) -> bool:
        """Wait until the qualifier's config is READY (False: none, or not in time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                config = self._configs.get((function, alias))
                if config is None:
                    return False
                if config["Status"] == "READY":
                    return True
            time.sleep(0.1)
        return False

    def requested(self, function: str, alias: str) -> int:
        config = self._configs.get((function, alias))
        return int(config["RequestedProvisionedConcurrentExecutions"]) if config else 0

    # -- environments ------------------------------------------------------------------
    def _follow(self, function: str, alias: str) -> None:
        """As Lambda re-splits an alias's environments when it moves: IN_PROGRESS until the
        versions it now routes to have their share."""
        if alias.isdigit():
            return
        with self._lock:
            config = self._configs[function, alias]
            moved = config.get("split") != self.read_alias(function, alias).to_dict()
            if moved and config["Status"] == "READY":
                config["Status"] = "IN_PROGRESS"
                threading.Thread(target=self.allocate, args=(function, alias), daemon=True).start()

    def allocate(self, function: str, alias: str) -> None:
        """Initialise the qualifier's environments: a version's own, or an alias's share per
        version (its weights split them)."""
        wanted = self.requested(function, alias)
        if not wanted:
            return
        state = AliasState(alias) if alias.isdigit() else self.read_alias(function, alias)
        shares = state.shares()
        allocated = 0
        for version, share in shares.items():
            count = max(1, round(wanted * share)) if share > 0 else 0
            allocated += self.pool.prewarm(function, version, count)
        with self._lock:
            config = self._configs.get((function, alias))
            if config is not None:
                config["AllocatedProvisionedConcurrentExecutions"] = min(allocated, wanted)
                config["Status"] = "READY"
                config["split"] = state.to_dict()
        self.log(f"[{function}:{alias}] provisioned concurrency: {allocated} of {wanted} ready")

    @staticmethod
    def _public(config: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in config.items() if k != "split"}


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"__type": kind, "Type": "User", "message": message}
