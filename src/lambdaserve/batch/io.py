"""Bytes in and out of S3 for batch scoring: a multipart writer that leaves nothing behind
when it fails, lines in blocks (split in bulk, overlong ones never held), gzip streams, and a
CSV header read and checked. No knowledge of models or parts."""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from itertools import repeat
from typing import TYPE_CHECKING

from lambdaserve.batch.errors import BatchError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef


MAX_LINE_BYTES = 1 << 20  # a longer line is refused as a row, never held in memory
GZIP_MAGIC = b"\x1f\x8b"
UPLOAD_PIECE = 8 << 20  # S3 multipart pieces must be at least 5 MB (but the last)


class BatchInputError(BatchError, ValueError):
    """An input or output the run cannot use; raised before anything is written."""


class MultipartWriter:
    """An S3 object written in pieces; nothing appears under the key unless `close` is reached
    (a failed part leaves no half-written output behind).

    A full piece goes up on a thread of its own while the caller goes on scoring, so the wait
    on S3 can overlap the work (boto3's own transfers upload on threads too). At most one
    piece is in flight, so memory stays at two pieces, whatever the object's size."""

    def __init__(self, s3: S3Client, bucket: str, key: str) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.pieces: list[CompletedPartTypeDef] = []
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future[CompletedPartTypeDef] | None = None

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= UPLOAD_PIECE:
            self._flush()

    def _flush(self) -> None:
        if self.upload_id is None:
            created = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            self.upload_id = created["UploadId"]
        self._settle()  # the previous piece is up (or its error is raised here)
        if self._sender is None:
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="upload")
        piece = bytes(self.buffer)
        self.buffer.clear()
        self._in_flight = self._sender.submit(self._send, len(self.pieces) + 1, piece)

    def _send(self, number: int, piece: bytes) -> CompletedPartTypeDef:
        answer = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=str(self.upload_id),
            PartNumber=number,
            Body=piece,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _settle(self) -> None:
        if self._in_flight is not None:
            sending, self._in_flight = self._in_flight, None
            self.pieces.append(sending.result())

    def close(self) -> None:
        if self.upload_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
            return
        if self.buffer:
            self._flush()
        self._settle()
        self._shut()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.pieces},
        )

    def abort(self) -> None:
        if self._in_flight is not None:
            wait([self._in_flight])  # its error, if any, is the one already being raised
            self._in_flight = None
        self._shut()
        if self.upload_id is not None:
            self.s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )

    def _shut(self) -> None:
        if self._sender is not None:
            self._sender.shutdown()
            self._sender = None


def blocks(
    chunks: Iterable[bytes], first_row: int, size: int
) -> Iterator[tuple[int, list[bytes | None]]]:
    """Lines in blocks of at most `size`, each with the row number of its first line; a line
    longer than MAX_LINE_BYTES is None and is never held whole. Lines are split in bulk."""
    pending: list[bytes | None] = []
    row, tail, skipping = first_row, b"", False  # skipping: inside a line already too long
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        head = None if skipping else tail + pieces[0]
        if len(pieces) == 1:  # no newline here: the same line goes on
            skipping = head is None or len(head) > MAX_LINE_BYTES
            tail = b"" if skipping else head or b""
            continue
        middle = pieces[1:-1]
        if head is not None and max(len(head), max(map(len, middle), default=0)) <= MAX_LINE_BYTES:
            pending.append(head)  # the usual case: every line as read
            pending += middle
        else:
            complete = [head, *middle]
            pending += [x if x is not None and len(x) <= MAX_LINE_BYTES else None for x in complete]
        tail = pieces[-1]
        skipping = len(tail) > MAX_LINE_BYTES
        if skipping:
            tail = b""
        while len(pending) >= size:
            yield row, _strip_cr(pending[:size])
            row, pending = row + size, pending[size:]
    if skipping or tail:
        pending.append(None if skipping else tail)
    if pending:
        yield row, _strip_cr(pending)


def _strip_cr(lines: list[bytes | None]) -> list[bytes | None]:
    if any(map(bytes.endswith, filter(None, lines), repeat(b"\r"))):  # None and b"" skipped
        return [x.rstrip(b"\r") if x is not None else None for x in lines]
    return lines


def csv_columns(block: str, texts: list[str], header: list[str]) -> dict[str, Sequence[str]] | None:
    """A block's columns by header name, when every line has the header's width; else None.
    Without quotes, one split of the whole block with each column a slice of it (no list per
    row); with quotes, the csv module reads it. `texts` is the block split into lines."""
    width = len(header)
    if '"' not in block:
        if set(map(str.count, texts, repeat(","))) != {width - 1}:
            return None
        fields = block.replace("\n", ",").split(",")
        return {n: fields[j::width] for j, n in enumerate(header)}
    try:
        rows = list(csv.reader(texts))
    except csv.Error:  # e.g. a field over the csv module's limit: the exact path says so
        return None
    if len(rows) != len(texts) or set(map(len, rows)) != {width}:
        return None
    columns = list(zip(*rows, strict=True))
    return {n: columns[j] for j, n in enumerate(header)}


def read_header(uri: str, first: bytes, size: int) -> tuple[list[str], int]:
    """A CSV's column names and the byte where its data starts."""
    newline = first.find(b"\n")
    if newline < 0 and size > len(first):
        raise BatchInputError(f"{uri}: the header line is longer than {MAX_LINE_BYTES} bytes")
    line = first if newline < 0 else first[:newline]
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise BatchInputError(f"{uri}: the header is not UTF-8") from None
    if not text.strip():
        raise BatchInputError(f"{uri} is empty or has no header line: a CSV input needs one")
    names = next(csv.reader([text]))
    if any(not n.strip() for n in names):
        raise BatchInputError(f"{uri}: the header has an empty column name")
    if len(set(names)) != len(names):
        raise BatchInputError(f"{uri}: the header repeats a column name")
    return names, (size if newline < 0 else newline + 1)


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a stream of gzip bytes (several members too); a truncated one raises."""
    inflater = zlib.decompressobj(wbits=31)
    for chunk in chunks:
        while chunk:
            yield inflater.decompress(chunk)
            chunk = inflater.unused_data
            if inflater.eof:
                inflater = zlib.decompressobj(wbits=31) if chunk else inflater
    if not inflater.eof:
        raise BatchInputError("the gzip stream is truncated")
    yield inflater.flush()
