"""CloudWatch Logs subscriptions to a Lambda function, on the local stack (a shadow's mirror
records). moto delivers a subscription's events to Lambda by running the function in Docker,
synchronously and without applying the filter pattern; here its delivery is replaced: the
events the pattern matches go to the local endpoint's invoke, asynchronously, as CloudWatch
Logs invokes a subscribed function. Only the JSON patterns lambdaserve writes are understood
(`{ $.key = 1 }`, joined by `||`); any other pattern passes every event."""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
from collections.abc import Callable
from typing import Any

_TERM = re.compile(r"\$\.(\w+)\s*=\s*1\b")
Invoke = Callable[[str, str | None, bytes], Any]


def matches(pattern: str, message: str) -> bool:
    """Whether a compact JSON log line matches a `{ $.key = 1 }` pattern (or `||` of them)."""
    keys = _TERM.findall(pattern or "")
    if not keys:
        return True
    return any(f'"{key}":1' in message for key in keys)


class LambdaSubscriptions:
    """While installed, moto hands subscription events for Lambda to `invoke` in a thread."""

    def __init__(self, invoke: Invoke, log: Callable[[str], None] = print) -> None:
        self.invoke, self.log = invoke, log
        self._original: Any = None

    def install(self) -> None:
        from moto.awslambda.models import LambdaBackend

        self._original = LambdaBackend.send_log_event
        owner = self

        def send_log_event(
            backend: Any,
            function_arn: str,
            filter_name: str,
            log_group_name: str,
            log_stream_name: str,
            log_events: list[dict[str, Any]],
        ) -> None:
            pattern = owner.pattern(backend, log_group_name, filter_name)
            events = [e for e in log_events if matches(pattern, str(e.get("message", "")))]
            if events:
                owner.deliver(
                    function_arn,
                    backend.account_id,
                    filter_name,
                    log_group_name,
                    log_stream_name,
                    events,
                )

        LambdaBackend.send_log_event = send_log_event  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original is not None:
            from moto.awslambda.models import LambdaBackend

            LambdaBackend.send_log_event = self._original  # type: ignore[method-assign]
            self._original = None

    @staticmethod
    def pattern(backend: Any, group: str, name: str) -> str:
        from moto.logs.models import logs_backends

        try:
            logs = logs_backends[backend.account_id][backend.region_name]
            return str(logs.groups[group].subscription_filters[name].filter_pattern)
        except KeyError:
            return ""

    def deliver(
        self,
        function_arn: str,
        account: str,
        filter_name: str,
        group: str,
        stream: str,
        events: list[dict[str, Any]],
    ) -> None:
        data = {
            "messageType": "DATA_MESSAGE",
            "owner": account,
            "logGroup": group,
            "logStream": stream,
            "subscriptionFilters": [filter_name],
            "logEvents": events,
        }
        packed = base64.b64encode(gzip.compress(json.dumps(data).encode())).decode()
        payload = json.dumps({"awslogs": {"data": packed}}).encode()

        def run() -> None:
            try:
                _, error, version = self.invoke(function_arn, None, payload)
            except Exception as exc:  # as CloudWatch Logs: the batch is dropped after retries
                self.log(f"subscription {filter_name}: {function_arn}: {exc}")
                return
            if error:
                self.log(f"subscription {filter_name}: version {version} failed ({error})")

        threading.Thread(target=run, name=f"subscription {filter_name}", daemon=True).start()
