"""Execution environments per function version, as Lambda scales them (workers: worker.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lambdaserve.local.process import lambda_runtime_dir
from lambdaserve.local.worker import VersionConfig, Worker


class ThrottledError(RuntimeError):
    """Every environment of the function is busy and its concurrency limit is reached: Lambda's
    429 TooManyRequestsException."""


class WorkerPool:
    """Execution environments per function version, as Lambda keeps them: as many as the
    concurrent requests need, each with its own cold start, up to the function's concurrency
    limit (its reserved concurrency, or a local cap); an idle one is reused. A version the
    alias no longer routes to loses its environments once they are idle: a request in flight
    finishes where it started."""

    def __init__(
        self,
        configure: Callable[[str, str], VersionConfig],
        state_dir: Path,
        log: Callable[[str], None] = print,
        output: Callable[[VersionConfig, str], None] | None = None,
        limit: Callable[[str], int] = lambda _: 10,
        worker: Callable[..., Worker] = Worker,
    ) -> None:
        self.configure = configure
        self.runtime_dir = lambda_runtime_dir(state_dir / "var-runtime")
        self.log = log
        self.output = output
        self.limit = limit
        self.worker = worker  # (config, runtime_dir, log, output) -> a new environment
        self._workers: dict[tuple[str, str], list[Worker]] = {}
        self._busy: set[int] = set()
        self._retiring: set[int] = set()
        self._lock = threading.Lock()

    @contextmanager
    def lease(self, function: str, version: str) -> Iterator[Worker]:
        """An environment of the version for one request (ThrottledError if none may be had)."""
        worker = self._acquire(function, version)
        try:
            yield worker
        finally:
            self._release(worker)

    def _busy_environments(self, function: str) -> Iterator[bool]:
        """Whether each environment of the function (every version) is serving a request."""
        for (name, _), envs in self._workers.items():
            if name == function:
                yield from (id(w) in self._busy for w in envs)

    def _acquire(self, function: str, version: str) -> Worker:
        with self._lock:
            envs = self._workers.setdefault((function, version), [])
            idle = [w for w in envs if id(w) not in self._busy]
            if idle:  # a warm one first; one that died while idle restarts (a cold start)
                worker = max(idle, key=lambda w: w.alive)
            else:
                busy = sum(self._busy_environments(function))
                if busy >= self.limit(function):
                    raise ThrottledError(
                        f"{function}: {busy} concurrent executions, the limit: Rate Exceeded."
                    )
                worker = self._new_environment(function, version, envs)
            self._busy.add(id(worker))
            return worker

    def _new_environment(self, function: str, version: str, envs: list[Worker]) -> Worker:
        """One more (not yet started) environment of the version; under the lock."""
        worker = self.worker(
            self.configure(function, version), self.runtime_dir, self.log, self.output
        )
        worker.environment = len(envs) + 1
        envs.append(worker)
        return worker

    def _release(self, worker: Worker) -> None:
        with self._lock:
            self._busy.discard(id(worker))
            retire = id(worker) in self._retiring
            if retire:
                self._retiring.discard(id(worker))
                key = (worker.config.function, worker.config.version)
                self._workers[key] = [w for w in self._workers.get(key, []) if w is not worker]
        if retire:
            self.log(f"[{worker.label}] retired: no longer referenced by the alias")
            worker.stop()

    def retire(self, function: str, keep: set[str]) -> None:
        """Stop the environments of versions the alias no longer routes to: now if idle, after
        their request if busy."""
        stopped = []
        with self._lock:
            for key in [k for k in self._workers if k[0] == function and k[1] not in keep]:
                for worker in self._workers[key]:
                    if id(worker) in self._busy:
                        self._retiring.add(id(worker))
                    else:
                        stopped.append(worker)
                self._workers[key] = [w for w in self._workers[key] if id(w) in self._busy]
        for worker in stopped:
            if worker.alive:
                self.log(f"[{worker.label}] retired: no longer referenced by the alias")
            worker.stop()

    def prewarm(self, function: str, version: str, count: int) -> int:
        """Initialise environments of the version ahead of traffic until `count` run (as
        provisioned concurrency does); returns how many run."""
        with self._lock:
            envs = self._workers.setdefault((function, version), [])
            while len(envs) < count:
                self._new_environment(function, version, envs)
            idle = [w for w in envs if id(w) not in self._busy and not w.alive][:count]
        for worker in idle:
            worker.start()
        with self._lock:
            return sum(w.alive for w in self._workers.get((function, version), []))

    def environments(self, function: str, version: str) -> int:
        """How many environments the version has (running or not)."""
        with self._lock:
            return len(self._workers.get((function, version), []))

    def pids(self) -> list[int]:
        return [
            w._process.pid for ws in self._workers.values() for w in ws if w._process and w.alive
        ]

    def stop_all(self) -> None:
        with self._lock:
            workers = [w for ws in self._workers.values() for w in ws]
            self._workers.clear()
        for worker in workers:
            worker.stop()
