"""Batch scoring, one part: stream its bytes line by line, turn lines into rows, validate and
predict them in chunks, and write the scored rows, the rejects and the part record.

Memory is bounded by the chunk size, never the part size: the part is streamed from S3, a line
longer than batch_io.MAX_LINE_BYTES is refused as a row without being held, and outputs go up as a
multipart upload in 8 MB pieces. Validation is the predict API's own (`RequestParser.partition`):
a reject carries the same per-field messages `/predict` answers with.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from lambdaserve.batch import io as batch_io
from lambdaserve.batch.io import (
    BatchInputError,
    MultipartWriter,
    blocks,
    gunzip,
    read_header,
)
from lambdaserve.batch.job import Job, Part, PartResult, S3Uri, check_header
from lambdaserve.serving.schema import from_text
from lambdaserve.shared import jsonio

if TYPE_CHECKING:
    import numpy as np
    from mypy_boto3_s3 import S3Client

    from lambdaserve.serving.predictor import Predictor

REJECT_INPUT_CHARS = 1024


class PartScorer:
    """Scores one part with one predictor, writing as it goes."""

    def __init__(self, s3: S3Client, predictor: Predictor, job: Job, part: Part) -> None:
        self.s3, self.predictor, self.job, self.part = s3, predictor, job, part
        self.features = {f.name: f for f in predictor.manifest.features}
        self.classes = [str(c) for c in predictor.manifest.classes or []]
        self.model = {
            "name": predictor.manifest.name,
            "version": str(predictor.manifest.version or ""),
        }
        self.with_probabilities = predictor.manifest.has_probabilities
        model_fields = io.StringIO()  # the last two CSV fields of every scored row
        csv.writer(model_fields, lineterminator="").writerow(self.model.values())
        self._model_fields = model_fields.getvalue()
        self.header = part.header
        self.result = PartResult(part.index, f"s3://{part.bucket}/{part.key}", output=part.output)
        self._out_bucket = S3Uri.parse(job.output).bucket
        self.output = MultipartWriter(s3, self._out_bucket, part.output)
        self.rejects: MultipartWriter | None = None
        if self.header is not None:
            self._write_header()

    def _write_header(self) -> None:
        """The output CSV's column names: the input's (or the id column), then the scores."""
        if self.part.format != "csv":
            return
        names = [self.job.id_column] if self.job.id_column else list(self.header or [])
        names.append("prediction")
        if self.with_probabilities:
            names += [f"probability_{c}" for c in self.classes]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow([*names, "model_name", "model_version"])
        self.output.write(out.getvalue().encode())

    def run(self) -> PartResult:
        try:
            self._score_all()
            self.output.close()
            if self.rejects is not None:
                self.rejects.close()
        except BaseException:
            self.output.abort()
            if self.rejects is not None:
                self.rejects.abort()
            raise
        rejects_key = self.part.key_for("rejects")
        if self.rejects is None:  # a re-run must not leave an earlier run's rejects behind
            self.s3.delete_object(Bucket=self._out_bucket, Key=rejects_key)
        self.result.rejects = rejects_key if self.rejects is not None else None
        self.result.model = self.model
        self.s3.put_object(
            Bucket=self._out_bucket,
            Key=self.part.key_for("record"),
            Body=json.dumps(self.result.to_dict()).encode(),
        )
        return self.result

    def _stream(self) -> Iterator[bytes]:
        part = self.part
        if part.gzip:
            body = self.s3.get_object(Bucket=part.bucket, Key=part.key)["Body"]
            inflated: Iterator[bytes] = gunzip(body.iter_chunks(1 << 20))
            return inflated
        if part.end <= part.start:
            return iter(())
        byte_range = f"bytes={part.start}-{part.end - 1}"
        body = self.s3.get_object(Bucket=part.bucket, Key=part.key, Range=byte_range)["Body"]
        return iter(body.iter_chunks(1 << 20))

    def _score_all(self) -> None:
        needs_header = self.part.format == "csv" and self.header is None  # a gzip CSV
        first = 0 if needs_header else self.part.first_row
        for start, lines in blocks(self._stream(), first, self.job.chunk_rows):
            if needs_header:
                self._read_header(lines[0])
                start, lines, needs_header = start + 1, lines[1:], False
            whole = [x for x in lines if x is not None]
            if len(whole) == len(lines) and b"" not in whole and not any(map(bytes.isspace, whole)):
                self.result.rows_in += len(whole)
                if not self._fast_block(whole):
                    self._exact_block([(start + i, x) for i, x in enumerate(lines)])
                continue
            # A block with blank or overlong lines: row by row (a blank line is no row).
            numbered = [(start + i, x) for i, x in enumerate(lines) if x is None or x.strip()]
            self.result.rows_in += len(numbered)
            if numbered:
                self._exact_block(numbered)

    def _fast_block(self, lines: list[bytes]) -> bool:
        """A CSV block whose every row is well formed and valid, scored column-wise without a
        Python object per value; False leaves the block to the exact path, untouched."""
        if self.part.format != "csv":
            return False
        try:
            block = b"\n".join(lines).decode("utf-8")
        except UnicodeDecodeError:
            return False
        texts = block.split("\n")
        columns = batch_io.csv_columns(block, texts, self.header or [])
        if columns is None:
            return False
        features = {n: column for n, column in columns.items() if n in self.features}
        matrix = self.predictor.parser.text_columns(features, len(texts))
        if matrix is None:
            return False
        labels, probabilities = self.predictor.predict_arrays(matrix)
        keep: Sequence[Any] = texts
        if self.job.id_column:
            keep = [[v] for v in columns[self.job.id_column]]
        self.result.rows_scored += len(texts)
        self.output.write(self._encode(keep, labels, probabilities))
        return True

    def _exact_block(self, numbered: list[tuple[int, bytes | None]]) -> None:
        """Row by row: what cannot be a row is rejected; the rest is validated by the request
        parser's exact path, which rejects each invalid row with its field messages."""
        rows: list[tuple[int, str, Any]] = []  # (row number, line text, what the output keeps)
        records: list[dict[str, Any]] = []
        for row, raw in numbered:
            parsed = self._parse(row, raw)
            if parsed is not None:
                rows.append((row, parsed[0], parsed[2]))
                records.append(parsed[1])
        if records:
            self._score_rows(rows, records)

    def _read_header(self, raw: bytes | None) -> None:
        uri = f"s3://{self.part.bucket}/{self.part.key}"
        if raw is None:
            raise BatchInputError(
                f"{uri}: the header line is longer than {batch_io.MAX_LINE_BYTES} bytes"
            )
        self.header, _ = read_header(uri, raw + b"\n", len(raw) + 1)
        required = [f.name for f in self.features.values() if f.required]
        check_header(uri, self.header, list(self.features), required, self.job.id_column)
        self._write_header()

    def _parse(self, row: int, raw: bytes | None) -> tuple[str, dict[str, Any], Any] | None:
        """The row's text, its feature values and what is copied to the output; None (and a
        reject) if the line is no row at all."""
        if raw is None:
            self._reject(
                row, "", [(None, f"the line is longer than {batch_io.MAX_LINE_BYTES} bytes")]
            )
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            preview = raw[:REJECT_INPUT_CHARS].decode("utf-8", "replace")
            self._reject(row, preview, [(None, f"not valid UTF-8 at byte {exc.start}")])
            return None
        if self.part.format == "csv":
            return self._parse_csv(row, text)
        return self._parse_json(row, text)

    def _parse_csv(self, row: int, text: str) -> tuple[str, dict[str, Any], Any] | None:
        header = self.header or []
        try:
            fields = next(csv.reader([text]), [])
        except csv.Error as exc:
            self._reject(row, text, [(None, f"not a CSV row: {exc}")])
            return None
        if len(fields) != len(header):
            message = f"has {len(fields)} fields, the header has {len(header)}"
            self._reject(row, text, [(None, message)])
            return None
        values = dict(zip(header, fields, strict=True))
        record = {
            n: from_text(self.features[n], v) for n, v in values.items() if n in self.features
        }
        keep = [values[self.job.id_column]] if self.job.id_column else text
        return text, record, keep

    def _parse_json(self, row: int, text: str) -> tuple[str, dict[str, Any], Any] | None:
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            self._reject(row, text, [(None, f"not valid JSON: {detail}")])
            return None
        if not isinstance(value, dict):
            self._reject(row, text, [(None, "a row must be an object of feature values")])
            return None
        record = {k: v for k, v in value.items() if k in self.features}
        keep = {self.job.id_column: value.get(self.job.id_column)} if self.job.id_column else value
        return text, record, keep

    def _score_rows(self, rows: list[tuple[int, str, Any]], records: list[dict[str, Any]]) -> None:
        matrix, kept, errors = self.predictor.parser.partition(records)
        by_row: dict[int, list[tuple[str | None, str]]] = {}
        for error in errors:
            by_row.setdefault(error.row or 0, []).append((error.field, error.message))
        for index, problems in sorted(by_row.items()):
            self._reject(rows[index][0], rows[index][1], problems)
        if not kept:
            return
        labels, probabilities = self.predictor.predict_arrays(matrix)
        self.result.rows_scored += len(kept)
        self.output.write(self._encode([rows[i][2] for i in kept], labels, probabilities))

    def _encode(
        self, keep: Sequence[Any], labels: np.ndarray, probabilities: np.ndarray | None
    ) -> bytes:
        """Scored rows in the input's format. A CSV row keeps its input line as it was (or
        the id field), then the prediction, the probabilities and the model."""
        predictions = labels.tolist()
        if self.part.format == "jsonl":
            out = io.StringIO()
            rows = probabilities.tolist() if probabilities is not None else []
            for i, kept in enumerate(keep):
                line = {**kept, "prediction": predictions[i]}
                if probabilities is not None:
                    line["probabilities"] = dict(zip(self.classes, rows[i], strict=True))
                line |= {"model_name": self.model["name"], "model_version": self.model["version"]}
                out.write(json.dumps(line) + "\n")
            return out.getvalue().encode()
        # Column-wise text, joined row-wise at C speed; each probability the shortest text
        # that reads back as the same double.
        columns: list[list[str]] = [list(map(str, predictions))]
        if probabilities is not None:
            columns.append(jsonio.number_rows(probabilities))
        if self.job.id_column:
            out = io.StringIO()
            suffix = [self.model["name"], self.model["version"]]
            csv.writer(out, lineterminator="\n").writerows(
                [*kept, label, *(scores[0].split(",") if scores else ()), *suffix]
                for kept, label, *scores in zip(keep, *columns, strict=True)
            )
            return out.getvalue().encode()
        lines = map(",".join, zip(keep, *columns, repeat(self._model_fields), strict=False))
        return ("\n".join(lines) + "\n").encode()

    def _reject(self, row: int, text: str, problems: list[tuple[str | None, str]]) -> None:
        self.result.rows_rejected += 1
        if self.rejects is None:
            self.rejects = MultipartWriter(self.s3, self._out_bucket, self.part.key_for("rejects"))
        entry = {
            "object": self.result.object,
            "row": row,
            "errors": [{"field": f, "message": m} for f, m in problems],
            "input": text[:REJECT_INPUT_CHARS],
        }
        self.rejects.write((json.dumps(entry) + "\n").encode())


def score_part(s3: S3Client, predictor: Predictor, job: Job, part: Part) -> PartResult:
    """Score one part end to end; its record is written last, so it means "complete"."""
    return PartScorer(s3, predictor, job, part).run()
