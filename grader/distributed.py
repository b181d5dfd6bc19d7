"""Execute a batch on a Dask cluster instead of this machine (``course-grader autograde --scheduler``).

Only step 2 of ``autograde`` (execution) moves; planning, sanitizing, checking what comes back
and scoring stay in the coordinator, which is the gradebook's only writer. The unit of work is one
notebook: the coordinator sends the sanitized notebook (release cells and tests already put back,
as a JSON string: data, not a path, so workers need no shared file system), the settings and the
limits; the worker runs ``autograde.execute_job`` — the very function the local path runs — in a
bubblewrap sandbox on its own machine, and returns the executed notebook as a JSON string. The
coordinator checks it exactly as a local result (``autograde.accept``: same cells, same sources).

Workers need the course's Python environment (``pip install -e .`` of this repository: the
worker imports ``grader`` and the kernel imports ``coursekit``) and bubblewrap. On the worker the
sandbox hides, besides what it hides locally (the worker's copy of the course repository, its
home), the worker's own scratch folder, where Dask may keep other submissions' data.

Failures, as Dask handles them:

* a worker that dies while grading (killed, out of memory, its machine lost): the scheduler
  gives the notebook to another worker; the coordinator receives exactly one result per notebook;
* a notebook whose grading killed ``distributed.scheduler.allowed-failures`` + 1 workers (default
  3 + 1): the scheduler gives up with ``KilledWorker``; the notebook is scored 0 with that reason;
* the scheduler lost, or any other error of the cluster: the notebook fails with "grader error",
  which ``--resume`` grades again (it is not the submission's fault).

Keep ``distributed.scheduler.worker-saturation`` at 1.0 on the scheduler: a worker then holds only
the notebooks it is running, so a worker killed by one notebook does not count against others
queued behind it.
"""

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import nbformat

from grader import autograde

# Test seam, inert unless the *worker's* environment sets it: a notebook whose JSON contains this
# value makes the worker process exit at once, as a worker killed by the notebook would. A student
# cannot set a worker's environment; tests/test_grader_dask.py sets it to a random token.
KILL_MARKER_ENV = "COURSE_GRADER_TEST_KILL_WORKER_MARKER"


class ClusterUnavailable(RuntimeError):
    """The Dask scheduler cannot be reached or has no usable worker; the message says why."""


def grade_remote(notebook_json, settings, limits, hidden):
    """The task a worker runs: one notebook, sandboxed exactly as locally."""
    marker = os.environ.get(KILL_MARKER_ENV)
    if marker and marker in notebook_json:
        os._exit(70)
    hidden = list(hidden)
    try:
        from distributed import get_worker

        hidden.append(get_worker().local_directory)
    except (ImportError, ValueError):
        pass
    outcome = autograde.execute_job(notebook_json, settings, limits, hidden)
    outcome["worker_pid"] = os.getpid()
    return outcome


def check_worker():
    """Run on every worker before the batch: can it grade at all?"""
    import platform
    import sys

    import grader.autograde  # noqa: F401  (what every task needs: imported once, here, not in the first task)
    from grader import sandbox

    problem = None
    try:
        sandbox.bwrap_path()
        # bubblewrap present but unable to make a sandbox, or the sandbox unable to isolate each notebook
        # (no user namespaces in a container, say)
        sandbox.check_namespaces()
    except sandbox.SandboxUnavailable as error:
        problem = str(error)
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
    cells = [[c.cell_type, c.source, c.get("metadata", {})] for c in job.sanitized.cells]  # not the random ids
    content = hashlib.sha256(json.dumps([cells, settings, limits], sort_keys=True, default=str).encode()).hexdigest()[:16]
    # Same submission, same tests, same limits -> same key: a restarted coordinator reattaches to a
    # result the cluster still holds instead of grading it again. A tuple whose first element is the
    # same for every notebook puts them all in one task group, which the scheduler queues (and hands
    # out one per free thread) instead of spreading the whole batch over the workers at once.
    return ("course-grader-notebook", job.assignment, job.student, job.notebook, content)


def execute_on_cluster(scheduler, jobs, settings, limits, hidden, progress=None, announce=None,
                       wait_for_workers=60):
    """Execute ``jobs`` on the cluster; calls ``progress(job)`` in this thread as each one completes."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    limits_dict = dataclasses.asdict(limits)
    client = connect(scheduler)
    try:
        try:
            client.wait_for_workers(1, timeout=wait_for_workers)
        except TimeoutError:
            raise ClusterUnavailable(f"the Dask scheduler at {scheduler} has no worker "
                                     f"(waited {wait_for_workers} s)") from None
        checks = client.run(check_worker)
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
        futures = {}
        for job in jobs:
            future = client.submit(grade_remote, nbformat.writes(job.sanitized), settings, limits_dict, hidden,
                                   key=_key(job, settings, limits_dict))
            futures[future] = job
        for future in as_completed(futures):
            job = futures[future]
            try:
                outcome = future.result()
            except KilledWorker as error:
                outcome = {"failure": f"killed {error.allowed_failures + 1} workers while it ran (each time the worker "
                                      "process died), so it was not retried again: scored 0"}
            except (Exception, asyncio.CancelledError, concurrent.futures.CancelledError) as error:
                # the scheduler lost, a task cancelled: not the submission's fault
                outcome = {"failure": f"grader error (Dask: {type(error).__name__}: {error}): scored 0"}
            autograde.accept(job, outcome, settings)
            future.release()
            if progress:
                progress(job)
    finally:
        client.close()
