"""Lambda's unzipped size budget (shared/budget.py) and how a version's parts are sized before
Lambda is asked (release/sizes.py): zips read through their central directory over ranged
HTTP reads, as from the presigned URLs GetLayerVersion and GetFunction give out.

Source of the rule: Lambda quotas, "Deployment package (.zip file archive) size: 250 MB
(unzipped), the maximum size of the contents of a deployment package, including layers"
(docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); Lambda's refusal reads
"Function code combined with layers exceeds the maximum allowed size of 262144000 bytes. The
actual size is N bytes." (InvalidParameterValueException, 400)."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from lambdaserve.release.sizes import RangedReader, zip_size_at
from lambdaserve.shared import budget


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_limit_is_lambdas_and_a_budget_adds_its_parts() -> None:
    assert budget.LIMIT == 262_144_000
    fits = budget.model_budget(budget.LIMIT - budget.DEPLOYMENT_BYTES["sklearn"], "sklearn")
    assert fits.fits
    assert fits.headroom == 0
    over = budget.model_budget(fits.parts[0][1] + 1, "sklearn")
    assert not over.fits
    assert over.headroom == -1


def test_the_refusal_names_the_sizes_the_limit_and_the_ways_out() -> None:
    over = budget.model_budget(150_000_000, "sklearn")
    line = budget.refusal(over, "sklearn")
    assert "\n" not in line
    assert "150.0 MB" in line
    assert "262,144,000 bytes" in line
    assert "--engine onnx" in line
    onnx = budget.refusal(budget.model_budget(200_000_000, "onnx"), "onnx")
    assert "--engine onnx" not in onnx
    assert "smaller model" in onnx


def test_unzipped_bytes_are_the_members_sizes_not_the_zips() -> None:
    data = _zip({"a.bin": b"\0" * 1_000_000, "b/c.txt": b"x" * 1234})
    assert len(data) < 10_000
    assert budget.unzipped_bytes(data) == 1_001_234


def test_folder_bytes_count_files_as_lambda_unpacks_them(tmp_path: Path) -> None:
    (tmp_path / "python").mkdir()
    (tmp_path / "python" / "m.py").write_bytes(b"x" * 100)
    sparse = tmp_path / "big.so"
    with open(sparse, "wb") as fh:
        fh.truncate(300_000_000)  # its apparent size, as a zip of it would unpack to
    assert budget.folder_bytes(tmp_path) == 300_000_100


class _Ranged(BaseHTTPRequestHandler):
    """S3's GET with Range, as a presigned URL answers it (206 with Content-Range)."""

    content = b""
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        found = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        assert found, "the reader asks for ranges only"
        first, last = int(found[1]), min(int(found[2]), len(self.content) - 1)
        type(self).requests.append(self.headers["Range"])
        body = self.content[first : last + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(self.content)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ranged)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/layer.zip?X-Amz-Signature=abc"
    server.shutdown()


def test_a_large_zip_is_sized_from_its_central_directory_in_a_few_requests(served: str) -> None:
    import os

    members = {f"python/m{i}.so": os.urandom(200_000) for i in range(40)}  # 8 MB, incompressible
    _Ranged.content, _Ranged.requests = _zip(members), []
    assert zip_size_at(served) == 8_000_000
    fetched = sum(
        int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) + 1 for r in _Ranged.requests
    )
    assert len(_Ranged.requests) <= 4
    assert fetched < 100_000  # the central directory, not the 8 MB


def test_a_location_that_is_no_url_is_unknown_not_a_refusal(served: str) -> None:
    assert zip_size_at("s3://") is None
    _Ranged.content = b"not a zip"
    assert zip_size_at(served) is None
    reader = RangedReader(served)
    assert reader.size == len(b"not a zip")
