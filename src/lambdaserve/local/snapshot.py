"""SnapStart on the local stack: a version is initialised once (its snapshot) and every new
environment of it is restored from that initialised state by forking the snapshot's process,
then runs the runtime's after-restore hooks (`snapshot_restore_py`, as Lambda's python3.12
runtime does). What is not safe to snapshot shows up here as it would on Lambda: a random
state made at init and not reseeded is the same in every restored environment, a connection
opened at init is shared by all of them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess  # nosec B404 - our own interpreter, fixed argv, no shell
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from lambdaserve.local.pool import WorkerPool
from lambdaserve.local.worker import VersionConfig, Worker, WorkerCrashedError

# What the snapshot's process does after init: the before-snapshot hooks, then, for each
# environment asked for (four descriptors over its socket: stdin, stdout, stderr, reply), a
# fork that takes them over, runs the after-restore hooks and serves.
_SNAPSHOT = r"""
import random, signal, socket
try:
    from snapshot_restore_py import get_after_restore, get_before_snapshot
except ImportError:
    get_after_restore = get_before_snapshot = list
for func, args, kwargs in reversed(get_before_snapshot()):
    func(*args, **kwargs)
out.write(json.dumps({"init_seconds": init}) + "\n")
out.flush()
control = socket.socket(fileno=os.dup(fd))
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored environments are reaped as they end
while True:
    _, fds, _, _ = socket.recv_fds(control, 16, 4)
    if len(fds) != 4:
        break  # the stack closed its end: the snapshot is gone
    taken = random.getstate()
    child = os.fork()
    if child == 0:
        random.setstate(taken)  # CPython reseeds `random` in a fork; a restore does not
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.close()
        out.close()
        for target, source in zip((0, 1, 2), fds):
            os.dup2(source, target)
            os.close(source)
        t1 = time.perf_counter()
        for func, args, kwargs in get_after_restore():
            func(*args, **kwargs)
        reply = os.fdopen(fds[3], "w")
        reply.write(json.dumps({"init_seconds": time.perf_counter() - t1, "restored": 1}) + "\n")
        reply.flush()
        serve(reply)
        os._exit(0)
    for descriptor in fds:
        os.close(descriptor)
    control.sendall(f"{child}\n".encode())
"""


class RestoredProcess:
    """A restored environment, as a Worker handles a Popen: the process is the snapshot's child
    (the snapshot reaps it), its pipes are the stack's."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.pid, self.stdin, self.stdout, self.stderr = pid, stdin, stdout, stderr

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -signal.SIGKILL
        return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float = 10) -> int | None:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stdin.close()
        return self.poll()


@dataclass
class Snapshot(Worker):
    """A version's initialised function, kept to be restored from (never serves itself)."""

    _control: socket.socket | None = field(default=None, repr=False)
    _restoring: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def label(self) -> str:
        return f"{self.config.function}:{self.config.version} snapshot"

    def start(self) -> None:
        """Take the snapshot now (init), if it is not there."""
        with self._restoring:
            if not self.alive:
                self._start()

    def _spawn(self) -> tuple[Any, int]:
        ours, theirs = socket.socketpair()
        argv, env = self._command(_SNAPSHOT, theirs.fileno())
        process = subprocess.Popen(  # nosec B603 - our interpreter, fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"},
            cwd=self.config.code_dir,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        )
        theirs.close()
        self._control = ours
        return process, ours.fileno()

    def _ready(self, ready: dict[str, Any], _elapsed: float) -> float:
        init = float(ready["init_seconds"])
        self.log(f"[{self.label}] taken after INIT pid {self.pid}: {init * 1000:.1f} ms")
        return init

    def restore(self) -> tuple[RestoredProcess, int]:
        """A new environment forked from the snapshot: its process and its reply pipe."""
        with self._restoring:
            if not self.alive:
                self._start()
            if self._control is None:
                raise WorkerCrashedError(f"{self.label} is not running")
            ends = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, reply: (read, write)
            theirs = [ends[0][0], ends[1][1], ends[2][1], ends[3][1]]
            try:
                socket.send_fds(self._control, [b"+"], theirs)
                pid = int(self._control.recv(32).decode() or "0")
            except (OSError, ValueError):
                pid = 0
            finally:
                for descriptor in theirs:
                    os.close(descriptor)
            if not pid:
                for descriptor in (ends[0][1], ends[1][0], ends[2][0], ends[3][0]):
                    os.close(descriptor)
                raise WorkerCrashedError(f"{self.label} could not be restored")
        stdin, stdout = open(ends[0][1], "wb"), open(ends[1][0], "rb")  # noqa: SIM115
        return RestoredProcess(pid, stdin, stdout, open(ends[2][0], "rb")), ends[3][0]

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()  # the snapshot's loop ends; its environments live on
            self._control, self._reader = None, -1
        super().stop()


@dataclass
class RestoredWorker(Worker):
    """An environment of a SnapStart version: restored from the version's snapshot."""

    snapshot: Snapshot | None = None
    restores: ClassVar[bool] = True

    def _start(self) -> float:
        if self.snapshot is None:
            raise WorkerCrashedError(f"{self.label} has no snapshot")
        self.snapshot.start()  # on Lambda it was taken when the version was published
        return super()._start()

    def _spawn(self) -> tuple[Any, int]:
        if self.snapshot is None:
            raise WorkerCrashedError(f"{self.label} has no snapshot")
        return self.snapshot.restore()

    def _ready(self, ready: dict[str, Any], elapsed: float) -> float:
        self.log(
            f"[{self.label}] RESTORE_START pid {self.pid} env {self.environment} "
            f"Restore Duration: {elapsed * 1000:.1f} ms "
            f"(after-restore hooks {float(ready['init_seconds']) * 1000:.1f} ms)"
        )
        return elapsed


class Snapshots:
    """The pool's environment factory in SnapStart mode: one snapshot per version of the
    functions SnapStart applies to, taken when the version first needs an environment."""

    def __init__(self, applies: Callable[[str], bool]) -> None:
        self.applies = applies
        self._snapshots: dict[tuple[str, str], Snapshot] = {}
        self._lock = threading.Lock()

    def worker(
        self,
        config: VersionConfig,
        runtime_dir: Path,
        log: Callable[[str], None] = print,
        output: Callable[[VersionConfig, str], None] | None = None,
    ) -> Worker:
        if not self.applies(config.function) or config.version == "$LATEST":
            return Worker(config, runtime_dir, log, output)  # SnapStart: published versions
        snapshot = self.snapshot(config, runtime_dir, log, output)
        return RestoredWorker(config, runtime_dir, log, output, snapshot=snapshot)

    def snapshot(
        self,
        config: VersionConfig,
        runtime_dir: Path,
        log: Callable[[str], None],
        output: Callable[[VersionConfig, str], None] | None,
    ) -> Snapshot:
        """The version's snapshot (not yet taken when new)."""
        with self._lock:
            key = (config.function, config.version)
            if key not in self._snapshots:
                self._snapshots[key] = Snapshot(config, runtime_dir, log, output)
            return self._snapshots[key]

    def take(self, pool: WorkerPool, function: str, versions: list[str], background: bool) -> None:
        """Take the versions' snapshots ahead of their traffic (on Lambda: when published)."""

        def take_all() -> None:
            for version in versions:
                config = pool.configure(function, version)
                self.snapshot(config, pool.runtime_dir, pool.log, pool.output).start()

        if background:
            threading.Thread(target=take_all, daemon=True).start()
        else:
            take_all()

    def stop_all(self) -> None:
        with self._lock:
            snapshots, self._snapshots = list(self._snapshots.values()), {}
        for snapshot in snapshots:
            snapshot.stop()
