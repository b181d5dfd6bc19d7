"""Step 3, execute and judge: one notebook in a worker's sandbox, and executors for a batch.

``run_notebook`` is the unit of work, pure data in and out, so that it runs the same on this
machine and on a Dask worker (``grader.distributed``). The executors yield ``(job, Outcome)``
as notebooks finish; they decide nothing about the result (``grader.score`` does).
"""

import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import nbformat

from grader import forkserver
from grader.limits import Limits
from grader.results import Failure, FailureKind, Outcome, Verdict


def usage_notes(usage, limits):
    """What a notebook hit of its caps, as failures that did not stop the batch."""
    notes = []
    if usage and usage.get("oom_kills"):
        notes.append(Failure(FailureKind.MEMORY, f"the notebook reached its memory cap ({limits.memory_mib} MiB for "
                                                 f"all its processes): {usage['oom_kills']} process(es) killed"))
    if usage and usage.get("process_cap_hits"):
        notes.append(Failure(FailureKind.PROCESSES, f"the notebook reached its process cap ({limits.max_processes} "
                                                    "processes and threads): new ones were refused"))
    return notes


def run_notebook(notebook_json, settings, limits):
    """Run and judge one prepared notebook (JSON) in a warm sandbox of this process."""
    limits = Limits.from_dict(limits) if isinstance(limits, dict) else limits
    started = time.monotonic()
    server = forkserver.acquire()
    try:
        executed, verdicts, usage = server.run(notebook_json, settings, limits)
        outcome = Outcome(executed=executed, verdicts=[Verdict.from_dict(v) for v in verdicts if isinstance(v, dict)],
                          notes=usage_notes(usage, limits))
    except forkserver.JobFailed as error:
        outcome = Outcome(failure=Failure(FailureKind(error.kind), str(error)))
    except Exception as error:
        outcome = Outcome(failure=Failure(FailureKind.GRADER, f"grader error ({type(error).__name__}: {error}): "
                                                              "scored 0; --resume grades it again"))
    finally:
        forkserver.release(server)
    outcome.seconds = time.monotonic() - started
    return outcome


def run_local(jobs, settings, limits, workers):
    """Run ``jobs`` on this machine, ``workers`` at a time; yields (job, Outcome) as each finishes."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(run_notebook, nbformat.writes(job.prepared), settings, limits): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:  # also when the caller stops early (Ctrl-C): queued notebooks are not started
        pool.shutdown(wait=False, cancel_futures=True)
