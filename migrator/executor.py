"""Where copy and verify tasks run: local threads (default) or a Dask distributed cluster.

Chosen by URL: "local" (or none) runs tasks on threads of this process; "dask://host:8786"
sends them to an existing Dask scheduler, "tls://host:8786?ca=CA.pem&cert=CERT.pem&key=KEY.pem"
to one that speaks TLS (mutual: the scheduler checks the client's certificate too).

Credentials, chosen by the URL's `credentials=`:
- `send` (the default): a task carries the endpoints it connects with, passwords included (the
  workers need nothing provisioned). They never travel over a plain TCP scheduler connection: with
  a password in the plan's endpoints, plain `dask://` is refused before anything connects, unless
  the URL says `?insecure=1` (a private network the operator vouches for). Over TLS they are
  encrypted on the wire; the scheduler and workers hold them in memory only, as the coordinator does.
- `worker`: a task carries only where each password comes from (its password_file, defaults_file
  or MIGRATOR_*PASSWORD* variable); the worker reads that same file or variable itself
  (Endpoint.by_reference / resolve_here). No password leaves the machine that holds it, so plain
  `dask://` is allowed; a worker without the file or variable fails the task naming the source, the
  reference and what to do. A password typed in the URL has no reference: refused at start. Dask futures behave like concurrent.futures (result,
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
from urllib.parse import parse_qs, urlparse

from .errors import ConfigError, ExitCode, MigratorError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "MIGRATOR_DASK_TIMEOUT"  # seconds to reach the scheduler (default 10)


class ExecutorUnavailable(MigratorError):
    """The distributed engine named by --executor cannot be reached."""

    exit_code = ExitCode.USAGE
    kind = "executor error"


class Executor:
    """Runs tasks; `remote` tells the caller whether tasks leave this process."""

    remote = False
    label = "local"

    def submit(self, fn: Callable[..., Any], *args: Any, key_hint: str = "") -> Any:
        raise NotImplementedError

    def ship(self, endpoint: Any, role: str) -> Any:
        """The endpoint as a task sent through this executor carries it (see the module doc)."""
        return endpoint

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

    def __init__(self, address: str, retries: int = 1, security: Any = None, credentials: str = "send"):
        self.credentials = credentials
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--executor dask://... needs the dask extra: pip install 'migrator[dask]'") from None
        self.address = address
        self.label = f"dask {address}"
        self.retries = retries
        try:
            timeout = float(os.environ.get(TIMEOUT_ENV, "10"))
            self.client = Client(address, timeout=timeout, set_as_default=False, security=security)
        except (OSError, TimeoutError) as exc:
            raise ExecutorUnavailable(
                f"Dask scheduler {address} is unreachable ({type(exc).__name__}: {exc}): start it "
                "(`dask scheduler`) and its workers (`dask worker {address}`), or run with --executor local") from None

    def submit(self, fn: Callable[..., Any], *args: Any, key_hint: str = "") -> Any:
        # pure=False: the same chunk submitted again (our retry) is a new task, not a cached result.
        return self.client.submit(fn, *args, pure=False, retries=self.retries)

    def ship(self, endpoint: Any, role: str) -> Any:
        return endpoint.by_reference(role) if self.credentials == "worker" else endpoint

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


def make_executor(url: str | None, workers: int, name: str = "task", endpoints: Iterable[Any] = ()) -> Executor:
    """The executor named by url: None/"local" -> threads; "dask://host:port" (or tcp://) -> Dask
    distributed; "tls://host:port?ca=&cert=&key=" -> Dask over mutual TLS. `endpoints`: what the
    tasks will connect to (their passwords decide whether a plain connection is allowed)."""
    if not url or url == "local":
        return LocalExecutor(workers, name)
    parsed = urlparse(url)
    if parsed.scheme not in ("dask", "tcp", "tls"):
        raise ConfigError(f"--executor {url!r}: expected 'local', dask://HOST:PORT or tls://HOST:PORT?ca=&cert=&key=")
    if not parsed.hostname or not parsed.port:
        raise ConfigError(f"--executor {url!r}: give the scheduler as dask://HOST:PORT (e.g. dask://sched:8786)")
    params = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    unknown = sorted(set(params) - {"ca", "cert", "key", "insecure", "credentials"})
    if unknown:
        raise ConfigError(f"--executor: unknown parameter(s) {', '.join(unknown)} (known: ca, cert, key, insecure, "
                          "credentials)")
    credentials = params.get("credentials", "send")
    if credentials not in ("send", "worker"):
        raise ConfigError(f"--executor: credentials={credentials!r}: give credentials=send (passwords travel to the "
                          "workers in the tasks, over TLS) or credentials=worker (each worker reads them itself)")
    where = f"{parsed.hostname}:{parsed.port}"
    with_password = sorted({e.label for e in endpoints if getattr(e, "password", None) is not None})
    if credentials == "worker":
        typed = sorted({e.label for e in endpoints if getattr(e, "password", None) is not None
                        and not str(getattr(e, "password_from", "")).startswith(("password_file", "defaults_file",
                                                                                  "MIGRATOR_"))})
        if typed:
            raise ConfigError(f"--executor ...credentials=worker: the password of {', '.join(typed[:5])} is written in "
                              "its URL, which workers cannot look up: give it with ?password_file=PATH, "
                              "?defaults_file=MY.CNF or MIGRATOR_PASSWORD_<NAME> (present on every worker), or use "
                              "credentials=send")
        with_password = []  # no password leaves this machine: a plain scheduler connection carries none
    if parsed.scheme == "tls":
        return DaskExecutor(f"tls://{where}", security=tls_security(params), credentials=credentials)
    if with_password and params.get("insecure") not in ("1", "true", "yes"):
        raise ConfigError(
            f"--executor dask://{where}: tasks carry the connection credentials of {', '.join(with_password[:5])}"
            f"{' and more' if len(with_password) > 5 else ''} to the workers, and a plain scheduler connection would send "
            f"them in clear. Run the scheduler and workers with TLS and use tls://{where}?ca=CA.pem&cert=CERT.pem"
            f"&key=KEY.pem, or let each worker read them itself (credentials=worker: password files or variables "
            f"present on every worker), or, on a private network you trust, dask://{where}?insecure=1")
    if with_password:
        log.warning("executor dask://%s: credentials travel to the workers unencrypted (insecure=1)", where)
    return DaskExecutor(f"tcp://{where}", credentials=credentials)


def tls_security(params: dict[str, str]) -> Any:
    """distributed's Security for a client of a TLS scheduler: our CA, our certificate and key."""
    try:
        from distributed.security import Security
    except ImportError:
        raise ConfigError("--executor tls://... needs the dask extra: pip install 'migrator[dask]'") from None
    missing = [k for k in ("ca", "cert", "key") if not params.get(k)]
    if missing:
        raise ConfigError(f"--executor tls://...: give {', '.join(missing)} (tls://HOST:PORT?ca=CA.pem&cert=CERT.pem"
                          "&key=KEY.pem: the CA that signed the scheduler's certificate, and this client's own)")
    for k in ("ca", "cert", "key"):
        if not os.path.isfile(params[k]):
            raise ConfigError(f"--executor tls://...: {k} file {params[k]!r} does not exist or is not a file")
    return Security(tls_ca_file=params["ca"], tls_client_cert=params["cert"], tls_client_key=params["key"],
                    require_encryption=True)
