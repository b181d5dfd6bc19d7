"""``course-grader autograde`` on a terminal: what runs, for how long, and what went wrong.

The batch itself is ``grader.autograde``; this module only shows it (rich's progress display)
and writes the problems table. The display names the notebooks running now and how long each
has run, so a notebook stuck in a loop is visible long before its time limit; the ETA comes from
finished notebooks only. Ctrl-C stops the batch: what was graded stays in the gradebook, and the
message says how to go on.
"""

import threading
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from grader import sandbox
from grader.autograde import autograde, check_machine, update_problems_table
from grader.workspace import WorkspaceError


class Running:
    """Which notebooks run now. Locally the pool takes jobs in order, so the running ones are the
    first ``slots`` unfinished ones; each is timed from when it took a slot."""

    def __init__(self, slots):
        self.slots, self.queue, self.since, self.lock = slots, [], {}, threading.Lock()

    def event(self, kind, job):
        with self.lock:
            if kind == "queued":
                self.queue.append(job)
            elif kind == "done" and job in self.queue:
                self.queue.remove(job)
                self.since.pop(id(job), None)

    def describe(self):
        with self.lock:
            now = time.monotonic()
            running = self.queue[: self.slots] if self.slots else []
            for job in running:
                self.since.setdefault(id(job), now)
            shown = [f"{job.student}/{job.notebook} {now - self.since[id(job)]:.0f} s" for job in running]
            waiting = len(self.queue) - len(running)
        text = ("running: " + ", ".join(shown)) if shown else ""
        if self.slots is None and self.queue:
            text = f"on the cluster: {len(self.queue)} not finished"
        return text + (f" ({waiting} waiting)" if waiting > 0 and shown else "")


def run(workspace, assignment, students, workers, limits, scheduler, resume, use_cgroups, console, err):
    """Grade and report; returns the exit code (0, 2 for a problem before the batch, 130 interrupted)."""
    from grader.distributed import ClusterUnavailable

    if not scheduler:
        try:
            support = check_machine(use_cgroups)
        except sandbox.SandboxUnavailable as error:
            err.print(f"[bold red]error:[/] {error}")
            return 2
        caps = (f"{support.describe()}: {limits.memory_mib} MiB and {limits.max_processes} processes per notebook"
                if use_cgroups else "no per-notebook caps (--no-cgroups): per-process limits only")
        console.print(f"grading on this machine with {workers} workers; {caps}; "
                      f"time limits {limits.cell_seconds:g} s per cell, {limits.wall_seconds:g} s per notebook")
    running = Running(None if scheduler else workers)
    columns = [TextColumn("autograding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn(), TextColumn("{task.fields[running]}")]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=None, running="reading and preparing the submissions")
        stop = threading.Event()

        def tick():
            while not stop.wait(0.5):
                progress.update(task, running=running.describe())

        def on_event(kind, job):
            running.event(kind, job)
            if kind == "queued":
                progress.update(task, total=(progress.tasks[0].total or 0) + 1)
            else:
                progress.update(task, advance=1, running=running.describe())

        def announce(info):
            progress.console.print(f"Dask scheduler {info['scheduler']}: {info['workers']} workers, "
                                   f"{info['threads']} threads; dashboard: {info['dashboard']}")
            if info.get("worker_saturation") not in (None, 1, 1.0):
                progress.console.print(f"note: the scheduler's distributed.scheduler.worker-saturation is "
                                       f"{info['worker_saturation']}; with 1.0 a worker killed by one notebook "
                                       "does not count against the notebooks queued behind it")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            result = autograde(workspace, assignment, students, workers=workers, limits=limits, progress=on_event,
                               scheduler=scheduler, resume=resume, announce=announce, use_cgroups=use_cgroups)
        except (WorkspaceError, sandbox.SandboxUnavailable, ClusterUnavailable) as error:
            stop.set()
            err.print(f"[bold red]error:[/] {error}")
            return 2
        finally:
            stop.set()
        progress.update(task, total=progress.tasks[0].total or 0, running="interrupted" if result.interrupted
                        else "done")
    where = (f"on the Dask cluster at {scheduler}" if scheduler else f"with {workers} workers")
    graded = len(result.graded_students)
    console.print(f"graded {graded} submissions of '{assignment}' in {result.seconds:.1f} s {where}")
    if result.skipped:
        console.print(f"skipped {len(result.skipped)} already graded from the same files (--resume)")
    rows = update_problems_table(workspace.root / "reports" / f"{assignment}-autograde-problems.csv", result)
    mine = [p for p in result.problems]
    if mine:
        table = Table(title="what could not be graded normally, and why", title_justify="left")
        for column in ("student", "file", "reason"):
            table.add_column(column, overflow="fold")
        for problem in sorted(mine, key=lambda p: (p.student, p.file)):
            table.add_row(problem.student, problem.file, problem.failure.reason)
        console.print(table)
    console.print(f"problems table ({len(rows)} rows, all runs): "
                  f"{workspace.root / 'reports' / f'{assignment}-autograde-problems.csv'}")
    if result.interrupted:
        err.print(f"[bold yellow]interrupted:[/] {graded} students were graded and saved in the gradebook; "
                  f"run the same command with --resume to grade the others without redoing them.")
        return 130
    return 0
