"""How large a function version will be, unzipped, before Lambda is asked to make it: the
function's code and each layer, read from the zips' central directories (ranged reads of the
presigned URLs Lambda gives out, two small requests per zip), registry model layers from the
size recorded at publish. Layer versions are immutable, so their sizes are cached by ARN."""

from __future__ import annotations

import io
import json
import os
import re
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaserve.shared.budget import Budget, unzipped_bytes

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

    from lambdaserve.registry.store import Registry

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lambdaserve"
_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")


class RangedReader(io.RawIOBase):
    """A seekable, read-only file over HTTP range requests (an S3 presigned GET URL)."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        self.url, self.timeout, self.position = url, timeout, 0
        self.requests = 0
        self.size = self._size()

    def _get(self, first: int, last: int) -> tuple[bytes, str]:
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={first}-{last}"})
        self.requests += 1
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # nosec B310
            return answer.read(), answer.headers.get("Content-Range", "")

    def _size(self) -> int:
        _, content_range = self._get(0, 0)
        found = _RANGE.fullmatch(content_range)
        if found is None:
            raise OSError(f"no ranged reads at {self.url.split('?')[0]}")
        return int(found[1])

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.size - self.position)
        if wanted <= 0:
            return 0
        data, _ = self._get(self.position, self.position + wanted - 1)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def zip_size_at(url: str) -> int | None:
    """What the zip at an http(s) URL unpacks to, or None where it cannot be read (a local
    emulation's placeholder location)."""
    if not url.startswith(("https://", "http://")):
        return None
    try:
        reader = RangedReader(url)
        return unzipped_bytes(io.BufferedReader(reader, buffer_size=1 << 16))
    except (OSError, ValueError, zipfile.BadZipFile):
        return None


@dataclass
class DeploymentSizes:
    """The unzipped size of a function version's parts, where it can be known."""

    lam: LambdaClient
    registry: Registry
    cache_file: Path = field(default_factory=lambda: CACHE / "layer-sizes.json")
    read_zip: Callable[[str], int | None] = zip_size_at
    aws: bool | None = None  # None: judged from the client's endpoint

    @property
    def on_aws(self) -> bool:
        """Lambda itself, not an emulation (moto, the local stack), whose zip locations are
        placeholders: there, the emulation's own check of Lambda's rule answers instead."""
        if self.aws is not None:
            return self.aws
        host = urllib.parse.urlsplit(self.lam.meta.endpoint_url).hostname or ""
        return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))

    def _cache(self) -> dict[str, int]:
        try:
            found = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _remember(self, key: str, size: int) -> None:
        cache = self._cache() | {key: size}
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            self.cache_file.write_text(json.dumps(cache))
        except OSError:
            pass  # a cache: the next deploy reads the zip again

    def layer(self, arn: str) -> int | None:
        """A layer version's unzipped bytes (None: unknown here)."""
        recorded = self.registry.layer_unzipped_bytes(arn)
        if recorded is not None:
            return recorded
        cached = self._cache().get(arn)
        if isinstance(cached, int):
            return cached
        if not self.on_aws:
            return None
        layer, number = arn.rsplit(":", 1)
        try:
            found = self.lam.get_layer_version(LayerName=layer, VersionNumber=int(number))
        except Exception:
            return None
        size = self.read_zip(found.get("Content", {}).get("Location", ""))
        if size is not None:
            self._remember(arn, size)
        return size

    def code(self, function: str) -> int | None:
        """The function's ($LATEST) code, unzipped, cached by its CodeSha256."""
        if not self.on_aws:
            return None
        try:
            found = self.lam.get_function(FunctionName=function)
        except Exception:
            return None
        key = f"code:{found['Configuration'].get('CodeSha256', '')}"
        cached = self._cache().get(key)
        if isinstance(cached, int):
            return cached
        size = self.read_zip(found.get("Code", {}).get("Location", ""))
        if size is not None:
            self._remember(key, size)
        return size

    def budget(self, function: str, layers: list[str]) -> Budget | None:
        """The version's parts, or None as soon as one of them cannot be sized here."""
        parts: list[tuple[str, int]] = []
        for arn in layers:
            size = self.layer(arn)
            if size is None:
                return None
            parts.append((f"layer {':'.join(arn.split(':')[-2:])}", size))
        code = self.code(function)
        if code is None:
            return None
        return Budget.of([("the function's code", code), *parts])
