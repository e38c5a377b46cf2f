"""What Lambda sends to CloudWatch, on the local stack. Function output into CloudWatch Logs:
each line an event in the function's log group, in a stream per version, delivered in batches
about twice a second; moto then runs the log group's subscriptions (capture: on to Firehose,
then S3). And Lambda's own metrics of the alias's invocations per executed version
(Invocations, Errors, Duration), which the canary judge reads."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from lambdaserve.local.worker import VersionConfig


class LocalLogs:
    """A sink for worker output: lines of the functions it knows go to their log groups."""

    def __init__(
        self,
        client: Callable[[], Any],
        groups: dict[str, str],
        log: Callable[[str], None] = print,
        interval: float = 0.5,
    ) -> None:
        self.client, self.groups, self.log, self.interval = client, groups, log, interval
        self._pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._streams: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, config: VersionConfig, line: str) -> None:
        group = self.groups.get(config.function)
        if group is None or not line:
            return
        day = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        event = {"timestamp": int(time.time() * 1000), "message": line}
        with self._lock:
            self._pending.setdefault((group, f"{day}/[{config.version}]local"), []).append(event)

    def start(self) -> None:
        for group in self.groups.values():
            self.client().create_log_group(logGroupName=group)
        self._thread = threading.Thread(target=self._run, name="local-logs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Deliver what is pending now (a failure drops that batch, as a log agent would)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        logs = self.client()
        for (group, stream), events in pending.items():
            try:
                if (group, stream) not in self._streams:
                    logs.create_log_stream(logGroupName=group, logStreamName=stream)
                    self._streams.add((group, stream))
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except Exception as exc:  # the stack goes on serving without these logs
                self.log(f"local logs: {group} {stream}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


class LocalMetrics:
    """AWS/Lambda metrics per executed version of an alias, put into the local CloudWatch."""

    def __init__(self, client: Callable[[], Any], log: Callable[[str], None] = print) -> None:
        self.client, self.log = client, log
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-metrics", daemon=True)

    def __call__(
        self, function: str, alias: str, version: str, seconds: float, error: bool
    ) -> None:
        dims = [
            {"Name": "FunctionName", "Value": function},
            {"Name": "Resource", "Value": f"{function}:{alias}"},
            {"Name": "ExecutedVersion", "Value": version},
        ]
        now = dt.datetime.now(dt.UTC)
        data = [
            {"MetricName": "Invocations", "Value": 1.0, "Unit": "Count"},
            {"MetricName": "Errors", "Value": float(error), "Unit": "Count"},
            {"MetricName": "Duration", "Value": seconds * 1000, "Unit": "Milliseconds"},
        ]
        with self._lock:
            self._pending += [{**d, "Dimensions": dims, "Timestamp": now} for d in data]

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for start in range(0, len(pending), 500):  # PutMetricData's limit per call
            try:
                self.client().put_metric_data(
                    Namespace="AWS/Lambda", MetricData=pending[start : start + 500]
                )
            except Exception as exc:  # the stack goes on serving without these metrics
                self.log(f"local metrics: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()


def create_capture_path(
    client: Callable[[str], Any], logs: LocalLogs, bucket: str, log_group: str, role: str
) -> None:
    """The template's capture path on the local endpoint: the monitoring bucket, Firehose
    into capture/ (moto writes the CloudWatch Logs envelopes as they come, without the
    template's partitions and message extraction; the monitor reads both shapes), and the
    predict log group's subscription."""
    from lambdaserve.capture import MARKER

    client("s3").create_bucket(Bucket=bucket)
    stream = client("firehose").create_delivery_stream(
        DeliveryStreamName="lambdaserve-local-capture",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "RoleARN": role,
            "Prefix": "capture/",
        },
    )["DeliveryStreamARN"]
    logs.start()  # creates the log groups
    client("logs").put_subscription_filter(
        logGroupName=log_group,
        filterName="capture",
        filterPattern=f"{{ $.{MARKER} = 1 }}",
        destinationArn=stream,
        roleArn=role,
    )
