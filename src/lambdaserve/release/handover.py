"""Provisioned concurrency across alias moves (ColdStartStrategy `provisioned`).

Lambda splits an alias's provisioned concurrency between its versions by weight, and takes a
while to initialise a version's new share; meanwhile that version answers from on-demand, cold,
environments. It also refuses to change an alias's provisioned concurrency while the alias has
weights ("Alias with weights can not be used with Provisioned Concurrency"). So, before a move
gives a version more traffic (a canary, a step, a promote, a deploy), the version is
provisioned directly, with a config of its own sized to its new share of the alias's, and the
move waits until that is READY; the alias then moves (one UpdateAlias, as always); once the
alias's own config is READY again the version-level configs are removed. A deploy whose
version cannot be made ready in time does not move the alias. A rollback does none of this: it is
the way out of trouble and moves at once; the version it returns to kept its share of the
alias's environments while a canary ran, and gets the rest as Lambda re-allocates them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from lambdaserve.alias import AliasState
from lambdaserve.release.errors import FunctionUpdateError

NOT_FOUND = "ProvisionedConcurrencyConfigNotFoundException"


def provisioned_config(lam: Any, function: str, qualifier: str) -> dict[str, Any] | None:
    """A qualifier's provisioned-concurrency config, or None (none; or an API the endpoint
    does not have, as moto)."""
    try:
        return dict(
            lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier=qualifier)
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] in (NOT_FOUND, "404"):
            return None
        raise


class Handover:
    """Warm versions before an alias move gives them traffic (no-op without provisioned
    concurrency on the alias)."""

    def __init__(
        self,
        lam: Any,
        function: str,
        alias: str,
        progress: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wait_seconds: float = 900,
    ) -> None:
        self.lam, self.function, self.alias, self.progress = lam, function, alias, progress
        self.sleep, self.clock, self.wait_seconds = sleep, clock, wait_seconds

    def config(self, qualifier: str) -> dict[str, Any] | None:
        return provisioned_config(self.lam, self.function, qualifier)

    def before(self, before: AliasState, after: AliasState) -> list[str]:
        """Provision each version the move gives more traffic; returns the versions given a
        config of their own. FunctionUpdateError (the alias untouched) if one is not READY in
        time (its config then removed)."""
        alias = self.config(self.alias)
        if alias is None:
            return []
        wanted = int(alias["RequestedProvisionedConcurrentExecutions"])
        had, will = before.shares(), after.shares()
        warmed = []
        for version, share in will.items():
            if share <= had.get(version, 0.0):
                continue
            count = max(1, math.ceil(wanted * share))
            self.progress(
                f"provisioning {count} environments of version {version} before it serves"
            )
            self.lam.put_provisioned_concurrency_config(
                FunctionName=self.function, Qualifier=version, ProvisionedConcurrentExecutions=count
            )
            warmed.append(version)
        try:
            for version in warmed:
                self._ready(version)
        except FunctionUpdateError:
            self._drop(warmed)
            raise
        return warmed

    def after(self, warmed: list[str]) -> None:
        """Once the alias's own provisioned concurrency is READY for its new split, drop the
        version-level configs (kept, with a warning, if that takes too long)."""
        if not warmed:
            return
        try:
            self._ready(self.alias)
        except FunctionUpdateError as exc:
            self.progress(f"{exc}: version-level provisioned concurrency kept on {warmed}")
            return
        self._drop(warmed)
        self.progress(f"{self.alias}'s provisioned concurrency is ready for its new split")

    def keep_floor(self, wanted: int | None) -> None:
        """The alias's own provisioned concurrency, as the stack asks (PROVISIONED_CONCURRENCY
        in the function's environment; template.yaml): at least `wanted` where it has none
        (Application Auto Scaling moves it from there), none where the stack asks for 0. The
        alias's declaration cannot carry it: any change to that would move `live`."""
        if wanted is None:
            return  # a stack from before round 3 keeps it on the alias's declaration
        found = self.config(self.alias)
        if wanted > 0 and found is None:
            self.progress(f"provisioning {wanted} environments of {self.alias} (the floor)")
            self.lam.put_provisioned_concurrency_config(
                FunctionName=self.function,
                Qualifier=self.alias,
                ProvisionedConcurrentExecutions=wanted,
            )
        elif wanted == 0 and found is not None:
            self.progress(f"removing {self.alias}'s provisioned concurrency (ColdStartStrategy)")
            self.lam.delete_provisioned_concurrency_config(
                FunctionName=self.function, Qualifier=self.alias
            )

    def _drop(self, versions: list[str]) -> None:
        for version in versions:
            self.lam.delete_provisioned_concurrency_config(
                FunctionName=self.function, Qualifier=version
            )

    def _ready(self, qualifier: str) -> None:
        deadline = self.clock() + self.wait_seconds
        while True:
            found = self.config(qualifier)
            if found is None:
                return  # nothing provisioned there (any more): nothing to wait for
            status = found.get("Status")
            if status == "READY":
                return
            if status == "FAILED" or self.clock() > deadline:
                reason = found.get("StatusReason") or f"not READY after {self.wait_seconds:.0f} s"
                raise FunctionUpdateError(
                    f"provisioned concurrency of {self.function}:{qualifier}: {reason}"
                )
            self.sleep(2)
