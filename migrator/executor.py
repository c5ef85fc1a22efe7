"""Where copy and verify tasks run: local threads (default) or a Dask distributed cluster.

Chosen by URL: "local" (or none) runs tasks on threads of this process; "dask://host:8786"
sends them to an existing Dask scheduler. Dask futures behave like concurrent.futures (result,
exception, done), so the coordinator's scheduling loop is the same for both; only waiting
differs, and `wait_first` hides that.

The contract for remote tasks: a task is a picklable module-level function that opens its own
connections, does its work (the target commit included) and returns a small result. It never
writes the work directory: the coordinating process alone journals what a returned result says
was committed. A task lost with its worker is run again (by Dask, or by our retry on
KilledWorker): every write is idempotent (REPLACE by key), so a re-run converges.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as cf_wait
from typing import Any
from urllib.parse import urlparse

from .errors import ConfigError, MigratorError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "MIGRATOR_DASK_TIMEOUT"  # seconds to reach the scheduler (default 10)


class ExecutorUnavailable(MigratorError):
    """The distributed engine named by --executor cannot be reached."""

    exit_code = 2
    kind = "executor error"


class Executor:
    """Runs tasks; `remote` tells the caller whether tasks leave this process."""

    remote = False
    label = "local"

    def submit(self, fn: Callable[..., Any], *args: Any, key_hint: str = "") -> Any:
        raise NotImplementedError

    def wait_first(self, futures: Iterable[Any], timeout: float | None = None) -> set[Any]:
        raise NotImplementedError

    def is_lost_worker(self, exc: BaseException) -> bool:
        """True when a task failed because its worker died, not because of its own work."""
        return False

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """A thread pool of this process (tasks share the coordinator's memory)."""

    def __init__(self, workers: int, name: str = "task"):
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=name)

    def submit(self, fn: Callable[..., Any], *args: Any, key_hint: str = "") -> Any:
        return self.pool.submit(fn, *args)

    def wait_first(self, futures: Iterable[Any], timeout: float | None = None) -> set[Any]:
        done, _ = cf_wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """A client of an existing Dask distributed scheduler (tasks run on its workers)."""

    remote = True

    def __init__(self, address: str, retries: int = 1):
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--executor dask://... needs the dask extra: pip install 'migrator[dask]'") from None
        self.address = address
        self.label = f"dask {address}"
        self.retries = retries
        try:
            timeout = float(os.environ.get(TIMEOUT_ENV, "10"))
            self.client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorUnavailable(
                f"Dask scheduler {address} is unreachable ({type(exc).__name__}: {exc}): start it "
                "(`dask scheduler`) and its workers (`dask worker {address}`), or run with --executor local") from None

    def submit(self, fn: Callable[..., Any], *args: Any, key_hint: str = "") -> Any:
        # pure=False: the same chunk submitted again (our retry) is a new task, not a cached result.
        return self.client.submit(fn, *args, pure=False, retries=self.retries)

    def wait_first(self, futures: Iterable[Any], timeout: float | None = None) -> set[Any]:
        from distributed import wait as dask_wait
        try:
            with self.client.as_current():  # our client, not a process-wide default
                done, _ = dask_wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return set(done)

    def is_lost_worker(self, exc: BaseException) -> bool:
        from distributed.client import FutureCancelledError
        from distributed.scheduler import KilledWorker
        return isinstance(exc, (KilledWorker, FutureCancelledError, OSError))

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def close(self) -> None:
        self.client.close()


def make_executor(url: str | None, workers: int, name: str = "task") -> Executor:
    """The executor named by url: None/"local" -> threads; "dask://host:port" -> Dask distributed."""
    if not url or url == "local":
        return LocalExecutor(workers, name)
    parsed = urlparse(url)
    if parsed.scheme in ("dask", "tcp", "tls"):
        if not parsed.hostname or not parsed.port:
            raise ConfigError(f"--executor {url!r}: give the scheduler as dask://HOST:PORT (e.g. dask://sched:8786)")
        scheme = "tls" if parsed.scheme == "tls" else "tcp"
        return DaskExecutor(f"{scheme}://{parsed.hostname}:{parsed.port}")
    raise ConfigError(f"--executor {url!r}: expected 'local' or dask://HOST:PORT")
