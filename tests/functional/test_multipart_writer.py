"""The batch output writer against moto's S3: pieces go up on their own thread, yet the object
is the bytes written, in order, and a failed piece leaves no object and no open upload."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdaserve.batch import io as batch_io
from lambdaserve.batch.io import MultipartWriter

BUCKET = "out"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(batch_io, "UPLOAD_PIECE", 5 << 20)  # S3's smallest piece but the last
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _writes() -> list[bytes]:
    """About 23 MB in uneven writes, each one's bytes telling where it came from."""
    return [(f"write {i:04d};".encode() * (1 + i % 7)) * 3_000 for i in range(200)]


def test_the_object_is_every_write_in_order_across_pieces(s3: Any) -> None:
    senders: set[str] = set()
    s3.meta.events.register(
        "before-call.s3.UploadPart", lambda **_: senders.add(threading.current_thread().name)
    )
    writer = MultipartWriter(s3, BUCKET, "scored.csv")
    writes = _writes()
    for data in writes:
        writer.write(data)
    writer.close()
    stored = s3.get_object(Bucket=BUCKET, Key="scored.csv")["Body"].read()
    assert stored == b"".join(writes)
    assert [p["PartNumber"] for p in writer.pieces] == list(range(1, len(writer.pieces) + 1))
    assert len(writer.pieces) == 5
    assert senders
    assert threading.current_thread().name not in senders  # up in the background


def test_a_small_object_is_one_put(s3: Any) -> None:
    writer = MultipartWriter(s3, BUCKET, "small.csv")
    writer.write(b"a,b\n1,2\n")
    writer.close()
    assert s3.get_object(Bucket=BUCKET, Key="small.csv")["Body"].read() == b"a,b\n1,2\n"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_a_piece_that_fails_in_the_background_fails_the_writer_and_leaves_nothing(
    s3: Any,
) -> None:
    def refuse_the_second(params: dict[str, Any], **_: Any) -> None:
        if params["PartNumber"] == 2:
            raise ConnectionError("the network went away")

    s3.meta.events.register("provide-client-params.s3.UploadPart", refuse_the_second)
    writer = MultipartWriter(s3, BUCKET, "scored.csv")

    def write_all() -> None:  # the caller learns at its next piece, or at close
        for data in _writes():
            writer.write(data)
        writer.close()

    with pytest.raises(ConnectionError, match="went away"):
        write_all()
    writer.abort()
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert writer._sender is None  # no thread left behind


def test_abort_while_a_piece_is_in_flight_waits_for_it_then_removes_the_upload(s3: Any) -> None:
    release = threading.Event()
    s3.meta.events.register("before-call.s3.UploadPart", lambda **_: release.wait(10))
    writer = MultipartWriter(s3, BUCKET, "scored.csv")
    writer.write(b"x" * (5 << 20))  # one full piece: sent, and held in flight
    assert writer._in_flight is not None
    threading.Timer(0.2, release.set).start()
    writer.abort()
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
