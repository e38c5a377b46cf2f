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


class _Batches:
    """Items added from any thread, delivered by one thread about twice a second, grouped by
    key in the order they came (as Lambda's log and metric agents batch)."""

    def __init__(self, name: str, log: Callable[[str], None], interval: float = 0.5) -> None:
        self.log, self.interval = log, interval
        self._pending: list[tuple[Any, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def add(self, key: Any, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending += [(key, item) for item in items]

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """Deliver what is pending now (a failure drops that batch, as an agent would)."""
        with self._lock:
            pending, self._pending = self._pending, []
        grouped: dict[Any, list[dict[str, Any]]] = {}
        for key, item in pending:
            grouped.setdefault(key, []).append(item)
        for key, items in grouped.items():
            try:
                self.deliver(key, items)
            except Exception as exc:  # the stack goes on serving without them
                self.log(f"{self._thread.name}: {key}: {exc}")

    def deliver(self, key: Any, items: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()


class LocalLogs(_Batches):
    """A sink for worker output: lines of the functions it knows go to their log groups."""

    def __init__(
        self,
        client: Callable[[], Any],
        groups: dict[str, str],
        log: Callable[[str], None] = print,
        interval: float = 0.5,
    ) -> None:
        super().__init__("local logs", log, interval)
        self.client, self.groups = client, groups
        self._streams: set[tuple[str, str]] = set()

    def __call__(self, config: VersionConfig, line: str) -> None:
        group = self.groups.get(config.function)
        if group is None or not line:
            return
        day = dt.datetime.now(dt.UTC).strftime("%Y/%m/%d")
        event = {"timestamp": int(time.time() * 1000), "message": line}
        self.add((group, f"{day}/[{config.version}]local"), [event])

    def start(self) -> None:
        for group in self.groups.values():
            self.client().create_log_group(logGroupName=group)
        super().start()

    def deliver(self, key: tuple[str, str], items: list[dict[str, Any]]) -> None:
        group, stream = key
        logs = self.client()
        if key not in self._streams:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            self._streams.add(key)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=items)


class LocalMetrics(_Batches):
    """AWS/Lambda metrics per executed version of an alias, put into the local CloudWatch."""

    def __init__(self, client: Callable[[], Any], log: Callable[[str], None] = print) -> None:
        super().__init__("local metrics", log)
        self.client = client

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
        self.add("AWS/Lambda", [{**d, "Dimensions": dims, "Timestamp": now} for d in data])

    def deliver(self, key: str, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 500):  # PutMetricData's limit per call
            try:
                self.client().put_metric_data(Namespace=key, MetricData=items[start : start + 500])
            except Exception as exc:  # the other chunks still go
                self.log(f"local metrics: {exc}")


def create_capture_path(
    client: Callable[[str], Any], logs: LocalLogs, bucket: str, log_group: str, role: str
) -> None:
    """The template's capture path on the local endpoint: the monitoring bucket, Firehose
    into capture/ (moto writes the CloudWatch Logs envelopes as they come, without the
    template's partitions and message extraction; the monitor reads both shapes), and the
    predict log group's subscription."""
    from lambdaserve.serving.capture import MARKER
    from lambdaserve.serving.mirror import SHADOW

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
        filterPattern=f"{{ ($.{MARKER} = 1) || ($.{SHADOW} = 1) }}",
        destinationArn=stream,
        roleArn=role,
    )
