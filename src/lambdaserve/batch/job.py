"""Batch scoring, the run: a job, its input split into parts at line boundaries, and the run
manifest that adds the parts up. Scoring one part is `batch_part.py`.

The fan-out is Step Functions Distributed Map's (template.yaml, statemachines/), never ours:
`plan` lists the parts (the Map's items), each child scores one part and writes its output,
its rejects and a part record; `finish` reads the part records and writes `_manifest.json`,
whose `status` is `complete` only when every planned part is there and adds up
(rows in = rows scored + rows rejected). Keys are deterministic, so a retried child or a re-run
overwrites, never duplicates. The S3 client is passed in.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from lambdaserve.batch.io import GZIP_MAGIC, MAX_LINE_BYTES, BatchInputError, read_header

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")
DEFAULT_PART_MB = 64
DEFAULT_CHUNK_ROWS = 5_000
# Items travel inline in the execution's state (256 KB): a part item is ~300 bytes.
MAX_PARTS = 500
MANIFEST = "_manifest.json"
PLAN = "_plan.json"


@dataclass(frozen=True)
class S3Uri:
    """s3://bucket/key-or-prefix."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Uri:
        if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise BatchInputError(f"{uri!r} is not an S3 URI (s3://bucket/prefix)")
        bucket, _, key = uri[5:].partition("/")
        return cls(bucket, key)

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Job:
    """What one run scores, where it writes, and how (the execution's input)."""

    input: str
    output: str
    format: Format | None = None  # None: from each object's name
    id_column: str | None = None  # only this column of the input is copied to the output
    part_bytes: int = DEFAULT_PART_MB << 20
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    function: str = ""  # the batch function (alias or version ARN) the children run on

    @classmethod
    def from_dict(cls, raw: Any) -> Job:
        """The documented execution input; anything else is a BatchInputError."""
        if not isinstance(raw, dict):
            raise BatchInputError("the execution input must be a JSON object")
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__) - {"part_mb"})
        if unknown:
            raise BatchInputError(f"unknown keys in the execution input: {unknown}")
        for key in ("input", "output"):
            if not isinstance(raw.get(key), str):
                raise BatchInputError(f"the execution input needs {key!r}: an s3:// URI")
        values = {k: v for k, v in raw.items() if k != "part_mb"}
        if "part_mb" in raw:
            values["part_bytes"] = int(float(raw["part_mb"]) * (1 << 20))
        job = cls(**values)
        if job.format is not None and job.format not in FORMATS:
            raise BatchInputError(f"format must be one of {FORMATS}, not {job.format!r}")
        if job.part_bytes < 1024 or job.chunk_rows < 1:
            raise BatchInputError("part_mb must be at least 1 KB and chunk_rows at least 1")
        S3Uri.parse(job.input), S3Uri.parse(job.output)
        return job

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Part:
    """One child's share: bytes [start, end) of one object, whole lines only."""

    index: int
    bucket: str
    key: str
    start: int
    end: int
    first_row: int  # the data row number of the part's first line (1 = first data line)
    format: Format
    gzip: bool = False
    header: list[str] | None = None  # CSV column names (None for gzip: the child reads it)
    output: str = ""  # key of this part's scored rows; rejects and record beside it
    number: int = 0  # this part's number within its object

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Part:
        return cls(**raw)

    def key_for(self, kind: Literal["rejects", "record"]) -> str:
        stem = self.output.rsplit(".", 1)[0]
        return f"{stem}.rejects.jsonl" if kind == "rejects" else f"{stem}.json"


@dataclass
class PartResult:
    """What one child wrote: the part record (`<output>.json`)."""

    index: int
    object: str
    rows_in: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    output: str = ""
    rejects: str | None = None
    model: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _format_of(key: str, given: Format | None) -> Format:
    if given is not None:
        return given
    name = key.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise BatchInputError(
        f"cannot tell the format of {key!r}: name it .csv or .jsonl, or pass format"
    )


def input_objects(s3: S3Client, source: S3Uri, target: S3Uri) -> list[tuple[str, str, int]]:
    """(key, name relative to the input, size) of each object the input names: the object
    itself if one has exactly that key, else every object under the prefix."""
    if source.bucket == target.bucket and (
        source.key.startswith(target.key) or target.key.startswith(source.key)
    ):
        raise BatchInputError(
            f"the output {target} overlaps the input {source}: a re-run would score its output"
        )
    found: list[tuple[str, int]] = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=source.bucket, Prefix=source.key)
    for page in pages:
        found += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    # A key ending in / is a console "folder" marker, never data.
    exact = [(k, k.rsplit("/", 1)[-1], n) for k, n in found if k == source.key and k[-1:] != "/"]
    under = [(k, k[len(source.key) :].lstrip("/"), n) for k, n in found if not k.endswith("/")]
    objects = exact or under
    if not objects:
        raise BatchInputError(f"no objects under {source}")
    return sorted(objects)


def _split(s3: S3Client, bucket: str, key: str, size: int, job: Job) -> list[Part]:
    """Cut an object at the first line start after every `part_bytes`, reading it once
    without parsing (counting newlines); a gzip object is one part, it cannot be entered
    midway."""
    fmt = _format_of(key, job.format)
    first = _read(s3, bucket, key, 0, min(size, MAX_LINE_BYTES)) if size else b""
    if first[:2] == GZIP_MAGIC:
        return [Part(0, bucket, key, 0, size, 1, fmt, gzip=True)]
    header, data_start = (
        read_header(f"s3://{bucket}/{key}", first, size) if fmt == "csv" else (None, 0)
    )
    starts = [(data_start, 1)]  # (byte offset of a line start, its data row number)
    if data_start < size:
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={data_start}-")["Body"]
        offset, row, next_cut = data_start, 1, data_start + job.part_bytes
        for chunk in body.iter_chunks(1 << 20):
            position = 0
            while True:
                search = max(position, next_cut - offset - 1)
                newline = chunk.find(b"\n", search) if search < len(chunk) else -1
                if newline < 0:
                    row += chunk.count(b"\n", position)
                    break
                row += chunk.count(b"\n", position, newline) + 1
                start = offset + newline + 1
                if start < size:
                    starts.append((start, row))
                next_cut, position = start + job.part_bytes, newline + 1
            offset += len(chunk)
    return [
        Part(0, bucket, key, start, ends, row, fmt, header=header, number=number)
        for number, ((start, row), ends) in enumerate(
            zip(starts, [s for s, _ in starts[1:]] + [size], strict=True)
        )
    ]


def _read(s3: S3Client, bucket: str, key: str, start: int, end: int) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"].read()


def plan(s3: S3Client, job: Job, features: list[str], required: list[str]) -> list[Part]:
    """The run's parts, numbered; checks every CSV header against the model's features."""
    source, target = S3Uri.parse(job.input), S3Uri.parse(job.output)
    parts: list[Part] = []
    for key, relative, size in input_objects(s3, source, target):
        for part in _split(s3, source.bucket, key, size, job):
            if part.header is not None:
                check_header(key, part.header, features, required, job.id_column)
            out = target.join(relative, f"part-{part.number:05d}.{part.format}")
            parts.append(replace(part, index=len(parts), output=out))
            if len(parts) > MAX_PARTS:
                raise BatchInputError(
                    f"more than {MAX_PARTS} parts: raise part_mb (now {job.part_bytes >> 20} MB)"
                )
    return parts


def check_header(
    key: str, header: list[str], features: list[str], required: list[str], id_column: str | None
) -> None:
    missing = [name for name in required if name not in header]
    if missing:
        raise BatchInputError(f"{key}: the header lacks the model's required columns {missing}")
    if id_column is not None and id_column not in header:
        raise BatchInputError(f"{key}: the header has no id column {id_column!r}")
    if not set(header) & set(features):
        raise BatchInputError(f"{key}: no column of the header is a feature of the model")


def write_plan(s3: S3Client, job: Job, parts: list[Part]) -> None:
    target = S3Uri.parse(job.output)
    body = {"job": job.to_dict(), "parts": [asdict(p) for p in parts]}
    s3.put_object(Bucket=target.bucket, Key=target.join(PLAN), Body=json.dumps(body).encode())


def finish(s3: S3Client, job: Job, outcome: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add up the part records into `_manifest.json`: `complete` only if every planned part
    wrote its record and every count adds up; otherwise `failed`, with what is missing."""
    target = S3Uri.parse(job.output)
    planned = json.loads(s3.get_object(Bucket=target.bucket, Key=target.join(PLAN))["Body"].read())
    parts = [Part.from_dict(p) for p in planned["parts"]]
    records, missing, broken = [], [], []
    for part in parts:
        try:
            raw = s3.get_object(Bucket=target.bucket, Key=part.key_for("record"))["Body"].read()
        except s3.exceptions.NoSuchKey:
            missing.append(part.index)
            continue
        record = json.loads(raw)
        if record["rows_in"] != record["rows_scored"] + record["rows_rejected"]:
            broken.append(part.index)
        records.append(record)
    totals = {k: sum(r[k] for r in records) for k in ("rows_in", "rows_scored", "rows_rejected")}
    failed = bool(missing or broken or (outcome or {}).get("Error"))
    models = sorted({json.dumps(r["model"], sort_keys=True) for r in records})
    manifest = {
        "status": "failed" if failed else "complete",
        "input": job.input,
        "output": job.output,
        **totals,
        "parts": len(parts),
        "missing_parts": missing,
        "inconsistent_parts": broken,
        "error": (outcome or {}).get("Error"),
        "cause": (outcome or {}).get("Cause"),
        "models": [json.loads(m) for m in models],
        "outputs": [f"s3://{target.bucket}/{r['output']}" for r in records],
        "rejects": [f"s3://{target.bucket}/{r['rejects']}" for r in records if r["rejects"]],
        "part_records": records,
    }
    s3.put_object(
        Bucket=target.bucket,
        Key=target.join(MANIFEST),
        Body=json.dumps(manifest, indent=1).encode(),
    )
    return manifest
