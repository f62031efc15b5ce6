"""Where a sweep's replays run: this process, local processes, or a Dask distributed cluster.

Every executor takes the same job (the markets of each period and the replay's settings) and the same tasks
(a run's number, its period and its full configuration), and yields each run's figures as it finishes, in
whatever order. A replay is deterministic, so where it ran changes nothing in its result.

- ``LocalProcesses``: processes started with ``spawn`` on every system (the only way on Windows, and so the
  way tested on Linux too); the job is sent to each process once, when it starts.
- ``DaskCluster``: a ``distributed`` scheduler at an address (``dask-scheduler`` / ``dask-worker`` on other
  machines), or a LocalCluster it starts (``local:N``). The job is scattered to every worker once, each task
  names it; a worker that dies has its tasks rerun by the scheduler elsewhere; results come back as they finish.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mt5bridge.workbench.replay import Market


class ExecutorError(RuntimeError):
    """The executor cannot start or lost what it was running, with what to do."""


@dataclass
class Job:
    """What every run of a sweep shares: each period's markets and the replay's settings. The direction model
    travels as its text, so a worker on another machine needs no copy of the file."""

    periods: dict[str, list[Market]]
    specs: dict[str, dict] | None = None
    model_text: bytes | None = None
    warmup_days: float = 14.0
    balance: float | None = None
    slippage_points: float = 0.0
    engine: str = ""
    _model_path: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Task:
    run: int
    period: str
    config: dict          # every key of the run's configuration


@dataclass(frozen=True)
class Done:
    run: int
    period: str
    figures: dict[str, Any]
    seconds: float        # the replay's own time, where it ran
    engine: str           # the engine version of the process that ran it
    where: str


def _model_file(job: Job) -> str | None:
    """The model as a file where this process runs (written once per process and model)."""
    if job.model_text is None:
        return None
    if job._model_path is None or not os.path.exists(job._model_path):
        name = hashlib.blake2b(job.model_text, digest_size=8).hexdigest()
        path = Path(tempfile.gettempdir()) / f"mt5bridge-sweep-model-{name}.json"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(job.model_text)
            os.replace(tmp, path)
        job._model_path = str(path)
    return job._model_path


def run_task(job: Job, task: Task) -> Done:
    """One full replay and its figures, in whatever process this is."""
    import socket

    from mt5bridge.config import config_from_dict
    from mt5bridge.workbench.figures import SWEEP_ODDS_PATHS, figures_of
    from mt5bridge.workbench.replay import Replay
    from mt5bridge.workbench.report import build_report
    from mt5bridge.workbench.store import engine_version

    started = time.perf_counter()
    cfg = config_from_dict(task.config, f"sweep run {task.run}")
    result = Replay(cfg, job.periods[task.period], specs=job.specs, model=_model_file(job),
                    warmup_days=job.warmup_days, balance=job.balance, slippage_points=job.slippage_points).run()
    # The figures read none of the equity curve or the command log, which are most of a report's making.
    figures = figures_of(build_report(replace(result, samples=[], commands=[]), generated_at="-",
                                      odds_paths=SWEEP_ODDS_PATHS))
    return Done(task.run, task.period, figures, time.perf_counter() - started, engine_version(),
                f"{socket.gethostname()}:{os.getpid()}")


# --- this process and local processes ---------------------------------------------------------------------

_JOB: Job | None = None


def _start_process(job: Job) -> None:
    global _JOB
    _JOB = job


def _run_in_process(task: Task) -> Done:
    assert _JOB is not None
    return run_task(_JOB, task)


class LocalProcesses:
    """``workers`` processes on this machine (1: this process, no other started). The processes stay up from
    the first run to ``close()``, so a walk-forward's second period or a search's next batch starts at once."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool = None
        self._job: Job | None = None

    def describe(self) -> str:
        return "this process" if self.workers == 1 else f"{self.workers} local processes"

    def run(self, job: Job, tasks: list[Task]) -> Iterator[Done]:
        if not tasks:
            return
        if self.workers == 1:
            for task in tasks:
                yield run_task(job, task)
            return
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        pool = self._pool_for(job)
        futures = [pool.submit(_run_in_process, task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool as exc:
            self.close()
            raise ExecutorError(f"a replay process died ({exc}); the runs that finished are stored: run the same "
                                "sweep again to resume") from exc
        finally:
            for future in futures:
                future.cancel()

    def _pool_for(self, job: Job):
        if self._pool is None or self._job is not job:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self.close()
            # spawn everywhere: what Windows does, so what is tested here is what runs there. The job goes to
            # each process once, as it starts.
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_start_process, initargs=(job,))
            self._job = job
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._job = None


# --- a Dask distributed cluster -----------------------------------------------------------------------------

CLUSTER_EXTRA = 'the cluster executor needs the "distributed" package: pip install "mt5bridge[cluster]"'


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ExecutorError(CLUSTER_EXTRA) from exc
    return distributed


def parse_cluster(address: str) -> tuple[str, int | None]:
    """``local:N`` -> ("local", N); anything else is a scheduler's address (``tcp://host:8786``, ``host:8786``)."""
    if address.startswith("local:") or address == "local":
        count = address.partition(":")[2] or "2"
        if not count.isdigit() or int(count) < 1:
            raise ExecutorError(f"--cluster {address!r}: local:N needs a number of workers >= 1, e.g. local:2")
        return "local", int(count)
    if not address.strip():
        raise ExecutorError("--cluster needs a scheduler's address (tcp://HOST:8786) or local:N")
    return address if "://" in address else f"tcp://{address}", None


class DaskCluster:
    """A Dask scheduler at ``address``, or a LocalCluster of N single-threaded worker processes (``local:N``)."""

    def __init__(self, address: str, *, connect_timeout_s: float = 20.0) -> None:
        self.address = address
        self.where, self.local_workers = parse_cluster(address)
        self.connect_timeout_s = connect_timeout_s
        self._cluster = None
        self._client = None
        self._shared = None        # the job scattered to the workers, and which job it is
        self._job: Job | None = None
        _distributed()   # refused at once when the extra is missing

    def describe(self) -> str:
        if self.local_workers:
            return f"a local Dask cluster of {self.local_workers} workers"
        return f"the Dask cluster at {self.where}"

    def client(self):
        if self._client is None:
            distributed = _distributed()
            try:
                if self.local_workers:
                    self._cluster = distributed.LocalCluster(
                        n_workers=self.local_workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=40)
                    self._client = distributed.Client(self._cluster)
                else:
                    self._client = distributed.Client(self.where, timeout=self.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"--cluster {self.address}: cannot reach the Dask scheduler ({exc}); start it "
                                    "with `dask scheduler` and check the address and port (docs/sweep.md)") from exc
            if not self._client.scheduler_info().get("workers"):
                self._client.wait_for_workers(1, timeout=self.connect_timeout_s)
        return self._client

    def run(self, job: Job, tasks: list[Task]) -> Iterator[Done]:
        if not tasks:
            return
        distributed = _distributed()
        client = self.client()
        if self._job is not job:
            # Sent to every worker once; each task carries only its configuration and a reference to this.
            self._shared = client.scatter(job, broadcast=True, hash=False)
            self._job = job
        shared = self._shared
        futures = [client.submit(run_task, shared, task, pure=False, key=f"replay-{task.period}-{task.run}-"
                                 f"{os.urandom(4).hex()}") for task in tasks]
        try:
            for future in distributed.as_completed(futures):
                try:
                    yield future.result()
                except distributed.client.FutureCancelledError as exc:
                    raise ExecutorError(f"the cluster dropped a run ({exc})") from exc
                except distributed.scheduler.KilledWorker as exc:
                    raise ExecutorError(f"a run killed every worker it was given ({exc}); the runs that finished "
                                        "are stored") from exc
        finally:
            client.cancel(futures)

    def close(self) -> None:
        self._shared = self._job = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def executor_for(cluster: str | None, workers: int | None):
    """The executor the command line asks for: ``--cluster`` if given, else local processes."""
    return DaskCluster(cluster) if cluster else LocalProcesses(workers)


__all__ = ["CLUSTER_EXTRA", "DaskCluster", "Done", "ExecutorError", "Job", "LocalProcesses", "Task", "executor_for",
           "parse_cluster", "run_task"]
