"""Run a batch's notebooks on a Dask cluster instead of this machine (``autograde --scheduler``).

Only step 3 (execute and judge) moves; reading, rebuilding, checking what comes back and scoring
stay in the coordinator, which is the gradebook's only writer. The unit of work is one notebook:
the coordinator sends the prepared notebook (JSON: data, not a path, so workers need no shared
file system), the settings and the limits; the worker runs ``grader.execute.run_notebook`` — the
very function the local executor runs — in a sandbox on its own machine, and returns an
``Outcome``. ``run_on_cluster`` yields ``(job, Outcome)`` as notebooks finish, like
``grader.execute.run_local``.

Workers need the course's Python environment (``pip install -e .`` of this repository) and
bubblewrap; ``check_worker`` runs on each before the batch and refuses a worker that cannot
isolate notebooks or cap them. It also makes the worker count its sandboxes' memory (their
cgroups) as its own, so that Dask's memory management sees it; idle sandboxes are stopped after
``grader.forkserver.IDLE_SECONDS``.

Failures, as Dask handles them:

* a worker that dies while grading: the scheduler gives the notebook to another worker; the
  coordinator receives exactly one result per notebook;
* a notebook whose grading killed ``distributed.scheduler.allowed-failures`` + 1 workers: the
  scheduler gives up with ``KilledWorker``; the notebook is scored 0 with that reason;
* the scheduler lost, or any other error of the cluster: a grader failure, which ``--resume``
  grades again (it is not the submission's fault).
"""

import asyncio
import concurrent.futures
import hashlib
import json
import os
from pathlib import Path

import nbformat

from grader import execute, forkserver
from grader.results import Failure, FailureKind, Outcome

# Test seam, inert unless the *worker's* environment sets it: a notebook whose JSON contains this
# value makes the worker process exit at once, as a worker killed by the notebook would. A student
# cannot set a worker's environment; tests/test_grader_dask.py sets it to a random token.
KILL_MARKER_ENV = "COURSE_GRADER_TEST_KILL_WORKER_MARKER"


class ClusterUnavailable(RuntimeError):
    """The Dask scheduler cannot be reached or has no usable worker; the message says why."""


def grade_remote(notebook_json, settings, limits):
    """The task a worker runs: one notebook, sandboxed exactly as locally."""
    marker = os.environ.get(KILL_MARKER_ENV)
    if marker and marker in notebook_json:
        os._exit(70)
    from distributed import get_worker

    _count_sandbox_memory(get_worker())  # a worker started after check_worker (a restarted one) too
    outcome = execute.run_notebook(notebook_json, settings, limits)
    outcome.worker = str(os.getpid())
    return outcome


def _count_sandbox_memory(worker):
    """Make the worker's memory figure include its sandboxes (their cgroups): Dask's
    ``SystemMonitor.get_process_memory`` is the one place its memory manager reads."""
    monitor = worker.monitor
    if getattr(monitor, "_course_grader_counted", False):
        return
    own = monitor.get_process_memory
    monitor.get_process_memory = lambda: own() + forkserver.memory_bytes()
    monitor._course_grader_counted = True


def check_worker(use_cgroups=True, dask_worker=None):
    """Run on every worker before the batch (``client.run`` passes ``dask_worker``): can it grade at all?"""
    import platform
    import sys

    from grader import sandbox

    forkserver.use_cgroups = use_cgroups
    problem = None
    try:
        sandbox.bwrap_path()
        sandbox.check_namespaces()
        support = forkserver.cgroup_support()
        if use_cgroups and support.kind is None:
            problem = f"no per-notebook caps on this worker: {support.reason}"
    except sandbox.SandboxUnavailable as error:
        problem = str(error)
    if dask_worker is not None:
        _count_sandbox_memory(dask_worker)
    return {"host": platform.node(), "python": sys.version.split()[0], "problem": problem}


def connect(scheduler, timeout=30):
    from distributed import Client

    try:
        if str(scheduler).endswith(".json") and Path(scheduler).is_file():
            return Client(scheduler_file=str(scheduler), timeout=timeout)  # dask-jobqueue / dask-mpi style
        return Client(scheduler, timeout=timeout)
    except OSError as error:  # distributed raises OSError (TimeoutError) when nobody answers
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {scheduler} ({error}); "
                                 "is it running, and is its port open from here?") from None


def _key(job, settings, limits):
    cells = [[c.cell_type, c.source, c.get("metadata", {})] for c in job.prepared.cells]  # not the random ids
    content = hashlib.sha256(json.dumps([cells, settings, limits], sort_keys=True, default=str).encode()).hexdigest()[:16]
    # Same submission, same tests, same limits -> same key: a restarted coordinator reattaches to a
    # result the cluster still holds instead of grading it again. A tuple whose first element is the
    # same for every notebook puts them all in one task group, which the scheduler queues (and hands
    # out one per free thread) instead of spreading the whole batch over the workers at once.
    return ("course-grader-notebook", job.assignment, job.student, job.notebook, content)


def run_on_cluster(scheduler, jobs, settings, limits, announce=None, use_cgroups=True, wait_for_workers=60):
    """Run ``jobs`` on the cluster; yields (job, Outcome) as each one finishes."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    limits_dict = limits.as_dict()
    client = connect(scheduler)
    try:
        try:
            client.wait_for_workers(1, timeout=wait_for_workers)
        except TimeoutError:
            raise ClusterUnavailable(f"the Dask scheduler at {scheduler} has no worker "
                                     f"(waited {wait_for_workers} s)") from None
        checks = client.run(check_worker, use_cgroups)
        broken = {address: info["problem"] for address, info in checks.items() if info["problem"]}
        if broken:
            raise ClusterUnavailable("workers that cannot grade: " + "; ".join(
                f"{address}: {problem}" for address, problem in sorted(broken.items())))
        if announce:
            info = client.scheduler_info()
            threads = sum(w.get("nthreads", 0) for w in info.get("workers", {}).values())
            try:
                saturation = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.WORKER_SATURATION)
            except Exception:
                saturation = None
            announce({"scheduler": client.scheduler.address, "dashboard": client.dashboard_link,
                      "workers": len(info.get("workers", {})), "threads": threads, "worker_saturation": saturation})
        futures = {client.submit(grade_remote, nbformat.writes(job.prepared), settings, limits_dict,
                                 key=_key(job, settings, limits_dict)): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                outcome = future.result()
            except KilledWorker as error:
                outcome = Outcome(failure=Failure(FailureKind.KILLED_WORKERS, f"killed {error.allowed_failures + 1} "
                                                  "workers while it ran (each time the worker process died), so it "
                                                  "was not retried again: scored 0"))
            except (Exception, asyncio.CancelledError, concurrent.futures.CancelledError) as error:
                outcome = Outcome(failure=Failure(FailureKind.GRADER, f"grader error (Dask: {type(error).__name__}: "
                                                  f"{error}): scored 0; --resume grades it again"))
            future.release()
            yield job, outcome
    finally:
        client.close()
