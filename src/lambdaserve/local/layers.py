"""Where each Lambda layer of a function version lies on this machine, as Lambda would unpack it
under /opt: the built layers where `sam build` left them, registry model layers unpacked from
their layer.zip once; and the configuration a worker runs a version with."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaserve.local.worker import VersionConfig
from lambdaserve.release.function_versions import function_env

if TYPE_CHECKING:
    from lambdaserve.registry.store import Registry


def zip_files(files: dict[str, str | bytes]) -> bytes:
    """A small zip made in memory (layer and code placeholders for moto)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@dataclass
class LayerFolders:
    """Layer version ARN -> folder; registry layers are unpacked below `root` on first use."""

    root: Path
    registry: Callable[[], Registry]
    known: dict[str, Path] = field(default_factory=dict)

    def folder(self, arn: str) -> Path:
        if arn in self.known:
            return self.known[arn]
        registry = self.registry()
        found = registry.version_of_layer(arn)
        if found is None:
            raise LookupError(f"layer {arn} is neither built here nor in the registry")
        target = self.root / arn.rsplit(":", 2)[-2] / arn.rsplit(":", 1)[-1]
        if not target.exists():
            with zipfile.ZipFile(
                io.BytesIO(registry.layer_zip_bytes(found.name, found.version))
            ) as z:
                z.extractall(target)
        self.known[arn] = target
        return target

    def version_config(
        self, function: str, version: str, config: dict[str, Any], code_dir: Path
    ) -> VersionConfig:
        """What a worker runs for a version, from its configuration as Lambda reports it."""
        layers = tuple(self.folder(layer["Arn"]) for layer in config.get("Layers", []))
        env = function_env(config)
        # Layers overlay in /opt: the last one holding model/ is what /opt/model shows.
        models = [d / "model" for d in layers if (d / "model").is_dir()]
        if models:
            env["MODEL_DIR"] = str(models[-1])
        return VersionConfig(
            function=function,
            version=version,
            handler=config["Handler"],
            code_dir=code_dir,
            layer_dirs=layers,
            environment=env,
            memory_mb=config.get("MemorySize", 1024),
            timeout_s=config.get("Timeout", 29),
            arn=config["FunctionArn"],
        )

    def publish(self, lam: Any, folders: Sequence[Path]) -> list[str]:
        """Each built layer folder as a layer version in the local Lambda (moto stores a
        placeholder; workers mount the folder itself): their ARNs, in order."""
        arns = []
        for folder in folders:
            arn = lam.publish_layer_version(
                LayerName=folder.name,
                Content={"ZipFile": zip_files({"README": folder.name})},
                CompatibleRuntimes=["python3.12"],
            )["LayerVersionArn"]
            self.known[arn] = folder
            arns.append(arn)
        return arns

    def runtime_environment(self) -> dict[str, str]:
        """What template.yaml gives the functions: the runtime layer of each engine (deploy
        attaches the one a bundle needs)."""
        by_folder = {folder.name: arn for arn, folder in self.known.items()}
        pairs = (
            ("SKLEARN_RUNTIME_LAYER", "RuntimeLayer"),
            ("ONNX_RUNTIME_LAYER", "OnnxRuntimeLayer"),
        )
        return {name: by_folder[layer] for name, layer in pairs if layer in by_folder}
