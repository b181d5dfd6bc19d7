"""Autograde a batch: read → rebuild → execute and judge → score, each step a module of its own.

nbgrader's ``autograde`` does three things per notebook, in one process: sanitize, execute,
score into the gradebook. We keep every piece of nbgrader and move only the execution:

1. **read** (``grader.submissions``): which files to grade; a broken file is a failure row;
2. **rebuild** (``grader.rebuild``): the release with only the student's answers put in, then
   nbgrader's sanitize preprocessors (hidden tests come back from the gradebook);
3. **execute and judge** (``grader.execute`` here, ``grader.distributed`` on a cluster): each
   notebook in a sandboxed worker, its test cells judged outside the student's kernel; the
   executors *yield* finished notebooks;
4. **score** (``grader.score``): what came back is checked, then nbgrader's ``Autograde``
   converter scores it — one writer, in this loop, as soon as a student's notebooks are done,
   so that an interrupted batch keeps what it graded and ``--resume`` picks up from there.

No step calls back into an earlier one. Nothing under ``submitted/`` is ever written.
"""

import csv
import time
from collections import Counter
from dataclasses import dataclass, field

from grader import execute, forkserver, sandbox, score
from grader.limits import Limits
from grader.rebuild import prepare
from grader.submissions import Problem, plan


@dataclass
class BatchResult:
    jobs: list
    problems: list  # [Problem] of this run (and, with --resume, those recorded for skipped students)
    scores: dict    # student -> (score, max score)
    seconds: float
    skipped: list = field(default_factory=list)  # students not regraded by --resume
    finished: list = field(default_factory=list)  # students scored by this run, in order
    interrupted: bool = False

    @property
    def graded_students(self):
        return sorted(self.finished)


def job_problems(jobs):
    """A Problem per failure and per note of graded jobs."""
    rows = []
    for job in jobs:
        if job.skipped:
            continue
        if job.failure:
            rows.append(Problem(job.student, job.file, job.failure))
        rows += [Problem(job.student, job.file, note) for note in ([] if job.failure else job.notes)]
    return rows


def check_machine(use_cgroups=True):
    """Before a local batch: bubblewrap, nested namespaces and (unless refused) cgroups; the cgroup
    support found, for the start-up line."""
    sandbox.bwrap_path()  # fails with the install hint when bubblewrap is missing
    sandbox.check_namespaces()
    support = forkserver.cgroup_support()
    if use_cgroups and support.kind is None:
        raise sandbox.SandboxUnavailable(
            f"no per-notebook memory and process caps here: {support.reason}. Pass --no-cgroups to grade anyway, "
            "with only per-process limits (one notebook can then use the memory of several).")
    return support


def autograde(workspace, assignment, students=None, workers=2, limits=None, progress=None, scheduler=None,
              resume=False, announce=None, use_cgroups=True):
    """Grade a batch. ``progress(event, job)``: "start" and "done" events, for a display.
    ``scheduler``: a Dask scheduler address (or scheduler file) to execute on instead of this
    machine. ``resume``: skip students already graded from the same files."""
    limits = limits or Limits()
    started = time.monotonic()
    forkserver.use_cgroups = use_cgroups
    if not scheduler:
        check_machine(use_cgroups)
        # The workers' sandboxes import TensorFlow (~3 s) while we read and prepare the submissions.
        forkserver.prestart(workers)
    jobs, problems = plan(workspace, assignment, students)
    result = BatchResult(jobs, [], {}, 0.0)
    try:
        prepare(workspace, jobs)
        everyone = sorted({job.student for job in jobs} | {p.student for p in problems})
        settings = score.settings_for(workspace, limits)
        fingerprints = {s: score.fingerprint(workspace, assignment, s, jobs, settings, limits) for s in everyone}
        done = score.already_graded(workspace, assignment, fingerprints) if resume else {}
        for job in jobs:
            job.skipped = job.student in done
        result.skipped = sorted(done)
        problems = [p for p in problems if p.student not in done]
        to_run = [job for job in jobs if not job.skipped and job.prepared is not None]
        pending = Counter(job.student for job in to_run)

        def finish(student):
            own = [job for job in jobs if job.student == student]
            rows = [p for p in problems if p.student == student] + job_problems(own)
            rows += [Problem(student, file, failure) for file, failure in
                     score.score_student(workspace, assignment, student, own)]
            result.problems += rows
            result.finished.append(student)
            if not any(row.failure.kind.submissions_fault is False for row in rows):
                # a grader error is not the submission's fault: resume runs it again
                score.record(workspace, assignment, student, fingerprints[student],
                             [(row.file, row.failure) for row in rows])

        for student in everyone:  # nothing of theirs can run: scored (zero) right away
            if student not in done and student not in pending:
                finish(student)
        if progress:
            for job in to_run:
                progress("queued", job)
        if scheduler:
            from grader.distributed import run_on_cluster

            finished = run_on_cluster(scheduler, to_run, settings, limits, announce, use_cgroups)
        else:
            finished = execute.run_local(to_run, settings, limits, workers)
        for job, outcome in finished:
            score.accept(job, outcome, settings)
            if progress:
                progress("done", job)
            pending[job.student] -= 1
            if pending[job.student] == 0:
                finish(job.student)
        for student, rows in done.items():
            result.problems += [Problem(student, file, failure) for file, failure in rows]
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        forkserver.close_all()  # every worker sandbox of this batch, even after an error
    result.scores = score.totals(workspace, assignment, sorted({job.student for job in jobs} |
                                                               {p.student for p in result.problems}))
    result.seconds = time.monotonic() - started
    return result


PROBLEM_COLUMNS = ["student", "file", "kind", "reason"]


def update_problems_table(path, result):
    """``reports/<assignment>-autograde-problems.csv`` across runs: the rows of every student graded
    in this run replace that student's earlier rows; other students' rows stay."""
    graded = set(result.graded_students) | set(result.skipped)
    kept = []
    try:
        with open(path, newline="") as file:
            kept = [row for row in csv.DictReader(file) if row.get("student") not in graded]
    except (OSError, csv.Error):
        pass
    rows = kept + [{"student": p.student, "file": p.file, "kind": p.failure.kind.value, "reason": p.failure.reason}
                   for p in result.problems]
    rows.sort(key=lambda row: (row["student"], row["file"], row.get("reason", "")))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, PROBLEM_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)
    return rows
