"""The batch function's three steps, as the BatchScoring state machine calls them:
`plan` (the execution input -> the parts), `score` (one part), `finish` (the run manifest).

The handler wires Powertools and calls `BatchSteps.handle`; the S3 client and the predictor
come from factories, so the same code runs on Lambda, the local stack and moto.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from lambdaserve.batch.io import BatchInputError
from lambdaserve.batch.job import Job, Part, finish, plan, write_plan
from lambdaserve.batch.part import score_part

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from lambdaserve.serving.predictor import Predictor

# What the state machine keeps of the run manifest (its state is limited to 256 KB).
SUMMARY_KEYS = ("status", "rows_in", "rows_scored", "rows_rejected", "parts", "missing_parts")


class BatchSteps:
    """Dispatches one state machine step to the library."""

    def __init__(self, s3: Callable[[], S3Client], predictor: Callable[[], Predictor]) -> None:
        self.s3, self.predictor = s3, predictor

    def handle(self, event: Any, invoked_arn: str) -> dict[str, Any]:
        if not isinstance(event, dict) or event.get("action") not in ("plan", "score", "finish"):
            raise BatchInputError("the event must name an action: plan, score or finish")
        job = Job.from_dict(event.get("job"))
        if event["action"] == "plan":
            return self.plan(job, invoked_arn)
        if event["action"] == "score":
            return score_part(
                self.s3(), self.predictor(), job, Part.from_dict(event["part"])
            ).to_dict()
        manifest = finish(self.s3(), job, event.get("outcome"))
        return {key: manifest[key] for key in SUMMARY_KEYS}

    def plan(self, job: Job, invoked_arn: str) -> dict[str, Any]:
        """The parts; the children run on the function version this plan ran on."""
        if not job.function:
            job = Job(**{**job.to_dict(), "function": invoked_arn})
        features = self.predictor().manifest.features
        parts = plan(
            self.s3(), job, [f.name for f in features], [f.name for f in features if f.required]
        )
        write_plan(self.s3(), job, parts)
        return {"job": job.to_dict(), "parts": [asdict(p) for p in parts]}
