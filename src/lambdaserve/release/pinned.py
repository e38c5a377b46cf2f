"""The model a `lambdaserve release` releases: the one a lock file names (the GitOps way: the
file is committed, reviewed, and released by CI), else the one `live` serves now (after an
infrastructure change, `make deploy` releases live's model again on the new configuration).

A lock file is JSON, written by `lambdaserve lock NAME VERSION`:

    {"model": {"name": "retail-propensity", "version": "3", "sha256": "<64 hex>"},
     "rollout": {"steps": "10,50,100", "interval": "5m"}}

`sha256` pins the bundle: the registry's manifest must have it, so a re-published or tampered
version is refused before anything is published. `rollout` is optional: without it a release
moves `live` at once, as `lambdaserve deploy` does; the CLI's own options win over it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaserve.release.errors import InvalidReleaseError
from lambdaserve.release.function_versions import function_env

if TYPE_CHECKING:
    from lambdaserve.registry.store import ModelVersion, Registry
    from lambdaserve.release.deployer import Deployer

LOCK_FILE = "lambdaserve.lock"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ROLLOUT_KEYS = {"steps", "interval"}


@dataclass(frozen=True)
class PinnedModel:
    """One registry model version, and the rollout a lock file asks for (if any)."""

    name: str
    version: str
    sha256: str | None = None
    rollout: dict[str, str] | None = None
    source: str = "live"

    def describe(self) -> str:
        return f"{self.name} v{self.version} ({self.source})"


def read_lock(path: Path) -> PinnedModel:
    """A lock file, checked; InvalidReleaseError names what is wrong with it."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidReleaseError(f"no lock file {path}: `lambdaserve lock NAME VERSION`") from None
    except (OSError, ValueError) as exc:
        raise InvalidReleaseError(f"lock file {path} is not JSON: {exc}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not {"name", "version"} <= set(model):
        raise InvalidReleaseError(f"lock file {path} names no model (model.name, model.version)")
    sha256 = model.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256)):
        raise InvalidReleaseError(f"lock file {path}: model.sha256 is not 64 hex digits")
    rollout = data.get("rollout")
    if rollout is not None and (
        not isinstance(rollout, dict)
        or not set(rollout) <= _ROLLOUT_KEYS
        or not all(isinstance(v, str) for v in rollout.values())
    ):
        raise InvalidReleaseError(
            f"lock file {path}: rollout takes only steps and interval, as strings"
        )
    return PinnedModel(
        str(model["name"]), str(model["version"]), sha256, rollout, source=f"lock file {path}"
    )


def write_lock(path: Path, model: ModelVersion, rollout: dict[str, str] | None) -> dict[str, Any]:
    """Pin a published model (and a rollout) in a lock file; the content written."""
    data: dict[str, Any] = {
        "model": {"name": model.name, "version": model.version, "sha256": model.manifest.sha256}
    }
    if rollout:
        data["rollout"] = rollout
    Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


def check_pinned(registry: Registry, pinned: PinnedModel) -> None:
    """The registry has the pinned version, with the pinned bundle (sha256)."""
    found = registry.get(pinned.name, pinned.version)
    if pinned.sha256 and found.manifest.sha256 != pinned.sha256:
        raise InvalidReleaseError(
            f"{pinned.describe()} pins sha256 {pinned.sha256[:12]}, but the registry's "
            f"{pinned.name} v{pinned.version} is {found.manifest.sha256[:12]}; nothing changed"
        )


def live_model(deployer: Deployer) -> PinnedModel | None:
    """The registry model `live` serves alone (its primary version's pins), or None while it
    serves the template's sample (the bootstrap version, before any release)."""
    state = deployer.state()
    env = function_env(deployer.config_of(state.version))
    if not env.get("MODEL_VERSION"):
        return None
    return PinnedModel(env["MODEL_NAME"], env["MODEL_VERSION"], env.get("MODEL_SHA256") or None)
