"""Batch scoring from the caller's side: start a BatchScoring execution, watch it (the map
run's item counts), and report it with its run manifest. What the CLI's `batch` commands do;
usable from a pipeline as it is. Clients are passed in."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdaserve.batch.job import MANIFEST, Job, S3Uri, input_objects

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

FINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


@dataclass
class BatchRuns:
    """One state machine's runs."""

    sfn: SFNClient
    s3: S3Client
    state_machine: str
    sleep: Callable[[float], None] = time.sleep

    def start(self, job: Job) -> str:
        """Start a run; the execution is named by the time and a nonce, so each is new. An
        input with nothing to score (or an output inside it) is refused before anything
        starts, in one line (BatchInputError)."""
        input_objects(self.s3, S3Uri.parse(job.input), S3Uri.parse(job.output))
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        name = f"batch-{stamp}-{uuid.uuid4().hex[:8]}"
        payload = {k: v for k, v in job.to_dict().items() if v not in (None, "")}
        started = self.sfn.start_execution(
            stateMachineArn=self.state_machine, name=name, input=json.dumps(payload)
        )
        return started["executionArn"]

    def progress(self, execution_arn: str) -> dict[str, int]:
        """The Distributed Map's item counts (parts): total, succeeded, failed, running."""
        runs = self.sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
        if not runs:
            return {}
        counts: dict[str, Any] = dict(
            self.sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])["itemCounts"]
        )
        return {k: int(counts.get(k, 0)) for k in ("total", "succeeded", "failed", "running")}

    def wait(
        self, execution_arn: str, report: Callable[[str], None], interval: float = 2.0
    ) -> dict[str, Any]:
        """Until the run ends, reporting the parts done as they change."""
        last = ""
        while True:
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            counts = self.progress(execution_arn)
            line = (
                f"parts: {counts['succeeded']}/{counts['total']} done, {counts['failed']} failed"
                if counts
                else "planning the parts"
            )
            if line != last:
                report(line)
                last = line
            if status in FINAL:
                return self.describe(execution_arn)
            self.sleep(interval)

    def describe(self, execution_arn: str) -> dict[str, Any]:
        """The documented `batch score --json` shape, from the execution and its manifest."""
        execution = self.sfn.describe_execution(executionArn=execution_arn)
        job = Job.from_dict(json.loads(execution.get("input") or "{}"))
        manifest = self._manifest(job) if execution["status"] in FINAL else {}
        out = S3Uri.parse(job.output)
        return {
            "execution_arn": execution_arn,
            "status": execution["status"],
            "rows_in": manifest.get("rows_in"),
            "rows_scored": manifest.get("rows_scored"),
            "rows_rejected": manifest.get("rows_rejected"),
            "parts": manifest.get("parts"),
            "outputs": manifest.get("outputs", []),
            "rejects": manifest.get("rejects", []),
            "manifest": f"s3://{out.bucket}/{out.join(MANIFEST)}",
            "error": execution.get("error") or manifest.get("error"),
            "cause": execution.get("cause") or manifest.get("cause"),
        }

    def _manifest(self, job: Job) -> dict[str, Any]:
        out = S3Uri.parse(job.output)
        try:
            body = self.s3.get_object(Bucket=out.bucket, Key=out.join(MANIFEST))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return {}  # the run failed before it could add anything up
        manifest: dict[str, Any] = json.loads(body)
        return manifest
