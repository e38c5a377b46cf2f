"""Where an alias points: one primary version and any canary weights. The one value every room
that reads or moves traffic shares (the judge reads it, release moves it, the local gateway
routes by it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AliasState:
    """Where an alias points: its primary version and any canary weights."""

    version: str
    weights: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "weights": dict(self.weights)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AliasState:
        return cls(str(data["version"]), {str(k): float(v) for k, v in data["weights"].items()})

    @classmethod
    def canary(cls, primary: str, canary: str, percent: float) -> AliasState:
        """The alias with `percent` of its traffic on the canary."""
        return cls(primary, {canary: round(percent / 100, 4)})

    def shares(self) -> dict[str, float]:
        """Each version's share of the alias's traffic."""
        return {self.version: 1 - sum(self.weights.values()), **self.weights}

    def describe(self) -> str:
        """For people: `version 2 (90%), version 3 (10%, canary)`."""
        if not self.weights:
            return f"version {self.version} (100%)"
        shares = self.shares()
        parts = [f"version {self.version} ({shares[self.version]:.0%})"]
        parts += [f"version {v} ({w:.0%}, canary)" for v, w in self.weights.items()]
        return ", ".join(parts)

    @classmethod
    def from_alias(cls, alias: dict[str, Any]) -> AliasState:
        """From a Lambda GetAlias / UpdateAlias answer."""
        weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
        return cls(str(alias["FunctionVersion"]), {k: float(v) for k, v in weights.items()})
