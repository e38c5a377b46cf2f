"""The baseline: a predict handler as common tutorials write it, to measure our gain against.

Model downloaded from S3 and loaded at import, the body parsed with the stdlib json module,
records turned into a pandas DataFrame, no validation. Not shipped; bench/ only.
"""

import json
import os

import boto3
import joblib
import pandas as pd

s3 = boto3.client("s3")
s3.download_file(os.environ["MODEL_BUCKET"], os.environ["MODEL_KEY"], "/tmp/model.joblib")
model = joblib.load("/tmp/model.joblib")
FEATURES = json.loads(os.environ["MODEL_FEATURES"])


def handler(event, context):  # type: ignore[no-untyped-def]
    body = json.loads(event["body"])
    frame = pd.DataFrame(body["instances"])[FEATURES]
    features = frame.to_numpy(dtype=object)
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(
            {
                "predictions": model.predict(features).tolist(),
                "probabilities": model.predict_proba(features).tolist(),
            }
        ),
    }
