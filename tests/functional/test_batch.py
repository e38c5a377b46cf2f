"""Batch scoring's library against moto's S3: plan, score every part, finish — the steps the
state machine runs (its Map is played here by a loop; the e2e test runs the real one)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdaserve.batch import io as batch_io
from lambdaserve.batch.io import BatchInputError
from lambdaserve.batch.job import Job, finish, plan, write_plan
from lambdaserve.batch.part import score_part
from lambdaserve.bundle.sample import FEATURE_NAMES, generate
from lambdaserve.serving.predictor import Predictor

BUCKET = "data"


@pytest.fixture(scope="module")
def predictor(sample_bundle_session: Path) -> Predictor:
    return Predictor.load(sample_bundle_session)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def run(s3: Any, predictor: Predictor, **job: Any) -> dict[str, Any]:
    """What the state machine does: plan, one child per part, finish."""
    the_job = Job.from_dict({"input": f"s3://{BUCKET}/in/", "output": f"s3://{BUCKET}/out/", **job})
    features = [f.name for f in predictor.manifest.features]
    required = [f.name for f in predictor.manifest.features if f.required]
    parts = plan(s3, the_job, features, required)
    write_plan(s3, the_job, parts)
    for part in parts:
        score_part(s3, predictor, the_job, part)
    return finish(s3, the_job)


def put(s3: Any, key: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def read(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri[5:].partition("/")
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def customers_csv(rows: int, bad: dict[int, str] | None = None) -> bytes:
    """rows customers with an id column; `bad` replaces data row n (1-based) with a line."""
    records, _ = generate(rows, seed=11)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["customer_id", *FEATURE_NAMES])
    for i, record in enumerate(records, start=1):
        if bad and i in bad:
            out.write(bad[i] + "\n")
            continue
        values = ["" if record[n] is None else record[n] for n in FEATURE_NAMES]
        writer.writerow([f"c{i}", *values])
    return out.getvalue().encode()


def expected(predictor: Predictor, record: dict[str, Any]) -> dict[str, Any]:
    """What /predict answers for this one row."""
    return predictor.predict(predictor.parse({"instances": [record]}))


BAD_ROWS = {
    7: "c7,3,1,20.5,2,1,,smartwatch,email",  # unknown category
    50: "c50,-4,1,20.5,2,1,10,mobile,email",  # below the minimum
    51: "c51,3,1",  # ragged
    300: 'c300,"three",1,20.5,2,1,10,mobile,email',  # not a number
}


def test_every_scored_row_is_what_predict_answers_and_rejects_carry_their_rows(
    s3: Any, predictor: Predictor
) -> None:
    put(s3, "in/customers.csv", customers_csv(1_000, BAD_ROWS))
    manifest = run(s3, predictor, part_mb=16 / 1024, chunk_rows=97)
    assert manifest["status"] == "complete"
    assert manifest["parts"] >= 3  # 16 KB parts of a ~45 KB file
    assert (manifest["rows_in"], manifest["rows_scored"], manifest["rows_rejected"]) == (
        1_000,
        996,
        4,
    )
    records, _ = generate(1_000, seed=11)
    scored = []
    for uri in manifest["outputs"]:
        scored += list(csv.DictReader(io.StringIO(read(s3, uri).decode())))
    assert [r["customer_id"] for r in scored] == [
        f"c{i}" for i in range(1, 1_001) if i not in BAD_ROWS
    ]
    for row in scored[::37]:
        record = records[int(row["customer_id"][1:]) - 1]
        answer = expected(predictor, record)
        assert int(row["prediction"]) == answer["predictions"][0]
        assert float(row["probability_1"]) == answer["probabilities"][0][1]
        assert row["recency_days"] == str(record["recency_days"])
        assert (row["model_name"], row["model_version"]) == ("retail-propensity", "")
    rejects = [
        json.loads(line)
        for uri in manifest["rejects"]
        for line in read(s3, uri).split(b"\n")
        if line
    ]
    assert {r["row"]: r["errors"][0]["field"] for r in rejects} == {
        7: "device",
        50: "recency_days",
        51: None,
        300: "recency_days",
    }
    unknown = next(r for r in rejects if r["row"] == 7)["errors"][0]["message"]
    assert unknown == expected_message(predictor, "device", "smartwatch")


def expected_message(predictor: Predictor, field: str, value: Any) -> str:
    """The message /predict gives for this one bad value."""
    records, _ = generate(1, seed=11)
    _, _, errors = predictor.parser.partition([{**records[0], field: value}])
    return errors[0].message


def test_a_csv_with_an_id_column_keeps_only_the_id_quoted_as_it_must_be(
    s3: Any, predictor: Predictor
) -> None:
    body = customers_csv(40).decode().replace("\nc3,", '\n"c,3",', 1)  # an id with a comma
    put(s3, "in/customers.csv", body.encode())
    manifest = run(s3, predictor, id_column="customer_id")
    assert (manifest["status"], manifest["rows_scored"]) == ("complete", 40)
    scored = list(csv.DictReader(io.StringIO(read(s3, manifest["outputs"][0]).decode())))
    assert list(scored[0]) == [
        "customer_id",
        "prediction",
        "probability_0",
        "probability_1",
        "model_name",
        "model_version",
    ]
    assert [r["customer_id"] for r in scored][:4] == ["c1", "c2", "c,3", "c4"]
    records, _ = generate(40, seed=11)
    for row, record in zip(scored, records, strict=True):
        answer = expected(predictor, record)
        assert int(row["prediction"]) == answer["predictions"][0]
        assert [float(row["probability_0"]), float(row["probability_1"])] == answer[
            "probabilities"
        ][0]


def test_jsonl_gzip_with_an_id_column_keeps_only_the_id(s3: Any, predictor: Predictor) -> None:
    records, _ = generate(300, seed=3)
    lines = [json.dumps({"id": i, **r, "segment": "x"}) for i, r in enumerate(records)]
    lines[10] = "{not json"
    put(s3, "in/day.jsonl.gz", gzip.compress(("\n".join(lines) + "\n").encode()))
    manifest = run(s3, predictor, id_column="id")
    assert (manifest["status"], manifest["rows_scored"], manifest["rows_rejected"]) == (
        "complete",
        299,
        1,
    )
    first = json.loads(read(s3, manifest["outputs"][0]).split(b"\n")[0])
    assert set(first) == {"id", "prediction", "probabilities", "model_name", "model_version"}
    assert first["probabilities"] == dict(
        zip(["0", "1"], expected(predictor, records[0])["probabilities"][0], strict=True)
    )
    (reject,) = [json.loads(x) for x in read(s3, manifest["rejects"][0]).splitlines()]
    assert reject["row"] == 11
    assert reject["errors"][0]["message"].startswith("not valid JSON")


def test_a_rerun_writes_the_same_keys_with_the_same_bytes(s3: Any, predictor: Predictor) -> None:
    put(s3, "in/customers.csv", customers_csv(500, BAD_ROWS))
    first = run(s3, predictor, part_mb=8 / 1024)
    before = {
        o["Key"]: read(s3, f"s3://{BUCKET}/{o['Key']}")
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]
    }
    second = run(s3, predictor, part_mb=8 / 1024)
    after = {
        o["Key"]: read(s3, f"s3://{BUCKET}/{o['Key']}")
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]
    }
    assert first["outputs"] == second["outputs"]
    assert {k: v for k, v in before.items() if not k.endswith("_manifest.json")} == {
        k: v for k, v in after.items() if not k.endswith("_manifest.json")
    }


def test_a_part_that_never_reported_makes_the_run_failed_not_complete(
    s3: Any, predictor: Predictor
) -> None:
    put(s3, "in/customers.csv", customers_csv(400))
    job = Job.from_dict(
        {"input": f"s3://{BUCKET}/in/", "output": f"s3://{BUCKET}/out/", "part_mb": 0.01}
    )
    parts = plan(s3, job, FEATURE_NAMES, FEATURE_NAMES[:5])
    write_plan(s3, job, parts)
    for part in parts[1:]:
        score_part(s3, predictor, job, part)
    manifest = finish(s3, job, {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "x"})
    assert manifest["status"] == "failed"
    assert manifest["missing_parts"] == [0]


# -- bad input: a clear failure before anything is written, or rejects; never a lost row ----
REFUSED = [
    ("empty csv file", {"in/a.csv": b""}, {}, "has no header line"),
    ("no objects", {"elsewhere/a.csv": b"x\n"}, {}, "no objects under"),
    (
        "missing required column",
        {"in/a.csv": b"recency_days,device\n3,mobile\n"},
        {},
        "lacks the model's required columns",
    ),
    ("missing id column", {"in/a.csv": customers_csv(3)}, {"id_column": "cust"}, "no id column"),
    ("repeated header column", {"in/a.csv": b"device,device\n"}, {}, "repeats a column"),
    (
        "output is the input",
        {"in/a.csv": customers_csv(3)},
        {"output": f"s3://{BUCKET}/in/"},
        "overlaps",
    ),
    (
        "output inside the input",
        {"in/a.csv": customers_csv(3)},
        {"output": f"s3://{BUCKET}/in/x/"},
        "overlaps",
    ),
    ("unknown format", {"in/a.parquet": b"PAR1"}, {}, "cannot tell the format"),
]


@pytest.mark.parametrize(
    ("name", "objects", "job", "message"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_unusable_input_is_refused_before_anything_is_written(
    s3: Any,
    predictor: Predictor,
    name: str,
    objects: dict[str, bytes],
    job: dict[str, Any],
    message: str,
) -> None:
    for key, body in objects.items():
        put(s3, key, body)
    with pytest.raises(BatchInputError, match=message):
        run(s3, predictor, **job)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")


def test_header_only_and_empty_jsonl_complete_with_zero_rows(s3: Any, predictor: Predictor) -> None:
    put(s3, "in/", b"")  # the console's "folder" marker is no input
    put(s3, "in/a.csv", customers_csv(0))
    put(s3, "in/b.jsonl", b"")
    manifest = run(s3, predictor)
    assert (manifest["status"], manifest["rows_in"], manifest["parts"]) == ("complete", 0, 2)
    header = read(s3, manifest["outputs"][0]).decode().splitlines()
    assert header == [
        "customer_id,"
        + ",".join(FEATURE_NAMES)
        + ",prediction,probability_0,probability_1,model_name,model_version"
    ]


def test_bad_bytes_long_lines_and_ragged_rows_are_rejects_with_their_rows(
    s3: Any, predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_io, "MAX_LINE_BYTES", 200)
    body = customers_csv(20).split(b"\n")
    body[3] = b"c3,3,1,20.5,2,1,,mobile,\xff\xfe"  # row 3: not UTF-8
    body[5] = b"c5," + b"9" * 5_000  # row 5: longer than the limit (and than a part)
    body[8] = b"c8,1,2,3"  # row 8: ragged
    put(s3, "in/a.csv", b"\n".join(body))
    manifest = run(s3, predictor, part_mb=1 / 1024)
    rejects = {
        json.loads(x)["row"]: json.loads(x)["errors"][0]["message"]
        for uri in manifest["rejects"]
        for x in read(s3, uri).splitlines()
    }
    assert sorted(rejects) == [3, 5, 8]
    assert rejects[3].startswith("not valid UTF-8")
    assert "longer than 200 bytes" in rejects[5]
    assert rejects[8] == "has 4 fields, the header has 9"
    assert (manifest["rows_in"], manifest["rows_scored"], manifest["status"]) == (
        20,
        17,
        "complete",
    )


def test_a_truncated_gzip_fails_its_part_and_leaves_no_output(
    s3: Any, predictor: Predictor
) -> None:
    whole = gzip.compress(customers_csv(2_000))
    put(s3, "in/a.csv.gz", whole[: len(whole) // 2])
    job = Job.from_dict({"input": f"s3://{BUCKET}/in/", "output": f"s3://{BUCKET}/out/"})
    (part,) = plan(s3, job, FEATURE_NAMES, FEATURE_NAMES[:5])
    write_plan(s3, job, [part])
    with pytest.raises(BatchInputError, match="truncated"):
        score_part(s3, predictor, job, part)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]]
    assert keys == ["out/_plan.json"]
    assert finish(s3, job)["status"] == "failed"
