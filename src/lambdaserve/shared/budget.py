"""Lambda's size budget: a function version's code and all its layers, unzipped, may hold at
most 262,144,000 bytes ("Lambda quotas": deployment package, 250 MB unzipped, layers included).
Lambda refuses more at UpdateFunctionConfiguration with InvalidParameterValueException,
"Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The
actual size is N bytes." lambdaserve checks the same sum first, where it knows the sizes:
`bundle` and `publish` against the deployment each engine ships, `deploy` against the very
layers the new version will hold. Pure: no AWS client here."""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

LIMIT = 262_144_000
# What a version holds besides its model layer, unzipped, per engine: the predict function's
# code, the engine's runtime layer and the serving layer, as `sam build` makes them (x86_64).
# Rounded up; tests/built checks each stays above the build's real figure and within 2% of it,
# so a change to the layers updates these.
DEPLOYMENT_BYTES = {"sklearn": 166_000_000, "onnx": 79_000_000}
# A predict function's own memory after a request, before any model: the peak resident size
# of the built handler serving the sample model (a few hundred kB) in a local worker, per engine
# (130 and 75 MB measured), rounded up (tests/built measures it). Lambda's MemorySize must
# hold this, the model, and room.
RUNTIME_MB = {"sklearn": 136, "onnx": 80}
MEMORY_ROOM = 1.25  # a quarter more, for requests' matrices and answers and Lambda's runtime
LAMBDA_MESSAGE = (
    "Function code combined with layers exceeds the maximum allowed size of {limit} bytes. "
    "The actual size is {size} bytes."
)


def folder_bytes(folder: Path) -> int:
    """The bytes of the files below a folder (what its zip unpacks to; links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                total += os.path.getsize(path)
    return total


def unzipped_bytes(archive: bytes | IO[bytes]) -> int:
    """What a zip unpacks to: the sum of its members' uncompressed sizes. Reads only the
    central directory, so a file-like object over ranged reads costs two small requests."""
    import io

    source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    with zipfile.ZipFile(source) as zipped:
        return sum(info.file_size for info in zipped.infolist())


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


@dataclass(frozen=True)
class Budget:
    """The unzipped parts of one function version, against Lambda's limit."""

    parts: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, parts: Iterable[tuple[str, int]]) -> Budget:
        return cls(tuple(parts))

    @property
    def total(self) -> int:
        return sum(size for _, size in self.parts)

    @property
    def fits(self) -> bool:
        return self.total <= LIMIT

    @property
    def headroom(self) -> int:
        """Bytes left under the limit (negative: over it)."""
        return LIMIT - self.total

    def describe(self) -> str:
        """`the model layer 150.2 MB + the runtime layer 164.7 MB ... = 315.6 MB`."""
        listed = " + ".join(f"{label} {megabytes(size)}" for label, size in self.parts)
        return f"{listed} = {megabytes(self.total)}"


def model_budget(model_bytes: int, engine: str) -> Budget:
    """A model layer on a version of the engine's recorded deployment."""
    return Budget.of(
        [
            ("the model layer", model_bytes),
            (f"the {engine} engine's function and layers", DEPLOYMENT_BYTES[engine]),
        ]
    )


def refusal(budget: Budget, engine: str) -> str:
    """One line: the sizes, the limit, and the ways out."""
    ways = []
    if engine != "onnx":
        onnx = DEPLOYMENT_BYTES["onnx"]
        ways.append(
            f"`--engine onnx` where its parity proof passes (a {megabytes(onnx)} deployment: "
            f"{megabytes(LIMIT - onnx)} for the model and its ONNX graph)"
        )
    ways.append("a smaller model (fewer or shallower trees, fewer features)")
    return (
        f"too large for Lambda: {budget.describe()} unzipped, over its limit of "
        f"{LIMIT:,} bytes ({megabytes(-budget.headroom)} over); the way out: " + " or ".join(ways)
    )


def memory_size_mb(model_bytes: int, engine: str) -> int:
    """The MemorySize (MB, a multiple of 64, at least 128) a function needs to serve a model
    that takes `model_bytes` loaded: the engine's runtime, the model, and a quarter more."""
    needed = (RUNTIME_MB[engine] + model_bytes / 2**20) * MEMORY_ROOM
    return max(128, -(-math.ceil(needed) // 64) * 64)
