"""course-grader: the instructor's workflow over nbgrader, from an LMS export to grades.

    course-grader init WORKSPACE                 a workspace (nbgrader config + gradebook) on solutions/
    course-grader roster ROSTER.csv              students into the gradebook
    course-grader release [ASSIGNMENT ...]       nbgrader generate_assignment into WORKSPACE/release
    course-grader collect EXPORT --assignment A  LMS folder or zip -> WORKSPACE/submitted
    course-grader autograde A                    sandboxed, parallel autograding into the gradebook
    course-grader feedback A                     nbgrader generate_feedback
    course-grader export                         grades as CSV (nbgrader export)
    course-grader report A                       score distribution per question: PNG + text

Every command but init works on the workspace given by --workspace (default: the current
folder, or $COURSE_GRADER_WORKSPACE).
"""

import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from grader import sandbox
from grader.workspace import REPO, Workspace, WorkspaceError

app = typer.Typer(help="The instructor's workflow over nbgrader: init, roster, release, collect, autograde, "
                  "feedback, export, report. Every command but init works on --workspace (default: the current "
                  "folder, or $COURSE_GRADER_WORKSPACE).", no_args_is_help=True, rich_markup_mode=None, add_completion=False)
console = Console()
err = Console(stderr=True)

WorkspaceOption = typer.Option(None, "--workspace", "-w", envvar="COURSE_GRADER_WORKSPACE",
                               help="the grading workspace (default: the current folder)")


def _workspace(path):
    try:
        return Workspace(path or Path.cwd())
    except WorkspaceError as error:
        _fail(str(error))


def _fail(message):
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _nbgrader(workspace, *args):
    result = workspace.nbgrader(*args)
    if result.returncode != 0:
        err.print(result.stdout[-3000:] + result.stderr[-3000:])
        _fail(f"nbgrader {' '.join(args)} failed (its log is above)")
    return result


def _table(title, columns, rows):
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*map(str, row))
    console.print(table)


@app.command()
def init(workspace: Path = typer.Argument(..., help="folder to create (may exist, must not be a workspace)"),
         solutions: Path = typer.Option(REPO / "solutions", help="nbgrader source notebooks"),
         db: Optional[str] = typer.Option(None, help="gradebook database URL, e.g. "
                                          "postgresql+psycopg://user@host/db (default: SQLite in the workspace)")):
    """Create an instructor workspace: nbgrader config and gradebook, pointing at solutions/."""
    try:
        created = Workspace.create(workspace, solutions=solutions, db_url=db)
    except WorkspaceError as error:
        _fail(str(error))
    except Exception as error:  # a database that cannot be reached, a read-only folder
        _fail(f"could not create the gradebook ({type(error).__name__}: {str(error).splitlines()[0]})")
    console.print(f"workspace {created.root} (gradebook: {created.db_url.split('@')[-1]}); "
                  f"assignments: {', '.join(created.assignments())}")


@app.command()
def roster(csv_file: Path = typer.Argument(..., help="CSV with an id column (and first_name, last_name, "
                                          "email, lms_user_id)"), workspace: Optional[Path] = WorkspaceOption):
    """Import the class roster into the gradebook (bad rows are reported, not imported)."""
    from grader.roster import import_roster

    ws = _workspace(workspace)
    try:
        result = import_roster(ws, csv_file)
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    console.print(f"imported {len(result.imported)} students")
    if result.rejected:
        _table("rows not imported", ["line", "reason"], result.rejected)


@app.command()
def release(assignments: Optional[List[str]] = typer.Argument(None, help="default: every assignment"),
            workspace: Optional[Path] = WorkspaceOption):
    """Generate the student release with nbgrader (records the assignments in the gradebook)."""
    ws = _workspace(workspace)
    for assignment in assignments or ws.assignments():
        if assignment not in ws.assignments():
            _fail(f"no assignment '{assignment}' in {ws.solutions}; there are: {', '.join(ws.assignments())}")
        _nbgrader(ws, "generate_assignment", assignment, "--force")
        console.print(f"released {assignment} -> {ws.root / 'release' / assignment}")


@app.command()
def collect(source: Path = typer.Argument(..., help="an LMS export: a folder or a zip"),
            assignment: str = typer.Option(..., "--assignment", "-a"),
            workspace: Optional[Path] = WorkspaceOption):
    """Copy submissions from an LMS export into submitted/, reporting every file it cannot match."""
    from grader.collect import collect as run_collect

    ws = _workspace(workspace)
    try:
        result = run_collect(ws, source, assignment)
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    except Exception as error:
        _fail(f"{type(error).__name__}: {error}")
    console.print(f"collected {len(result.collected)} notebooks from "
                  f"{len({s for s, _, _ in result.collected})} students into {ws.root / 'submitted'}")
    if result.unmatched:
        _table(f"not matched (kept in {result.batch})", ["file", "reason"], result.unmatched)
    if result.superseded:
        _table(f"superseded by a newer file (kept in {result.batch / 'superseded'})", ["file", "reason"],
               result.superseded)


@app.command()
def autograde(assignment: str = typer.Argument(...),
              student: Optional[List[str]] = typer.Option(None, "--student", help="only these students"),
              workers: int = typer.Option(os.cpu_count() or 1, help="parallel sandboxes on this machine (default: "
                                          "cores); with --scheduler the cluster's worker threads decide"),
              timeout: float = typer.Option(300.0, help="seconds one notebook may run in all"),
              cell_timeout: float = typer.Option(60.0, help="seconds one cell (or one test) may run"),
              memory: int = typer.Option(2048, help="MiB of memory for one notebook, all its processes together"),
              processes: int = typer.Option(128, help="processes and threads one notebook may run at once"),
              no_cgroups: bool = typer.Option(False, "--no-cgroups", help="grade where the memory and process caps "
                                              "per notebook (cgroups) are not available: only per-process limits"),
              scheduler: Optional[str] = typer.Option(
                  None, envvar="COURSE_GRADER_SCHEDULER",
                  help="run the notebooks on a Dask cluster: its scheduler's address (tcp://host:8786) or "
                  "scheduler file (*.json); default: c.CourseGrader.scheduler in the workspace's "
                  "nbgrader_config.py, else this machine"),
              resume: bool = typer.Option(False, "--resume", help="skip students already graded from the same "
                                          "files, tests and limits (e.g. after an interrupted run)"),
              workspace: Optional[Path] = WorkspaceOption):
    """Grade every submission in its own sandbox, in parallel, into nbgrader's gradebook."""
    from grader.autograde_display import run
    from grader.limits import Limits

    ws = _workspace(workspace)
    scheduler = scheduler or ws.config.CourseGrader.get("scheduler") or None
    if scheduler in ("local", "none"):
        scheduler = None
    limits = Limits(wall_seconds=timeout, cell_seconds=cell_timeout, memory_mib=memory, max_processes=processes)
    code = run(ws, assignment, student, workers, limits, scheduler, resume, not no_cgroups, console, err)
    if code:
        raise typer.Exit(code)


@app.command()
def feedback(assignment: str = typer.Argument(...), workspace: Optional[Path] = WorkspaceOption):
    """Generate students' feedback (HTML) with nbgrader, without hidden tests."""
    ws = _workspace(workspace)
    _nbgrader(ws, "generate_feedback", assignment, "--force")
    console.print(f"feedback in {ws.root / 'feedback'}")


@app.command()
def export(out: Path = typer.Option(Path("reports/grades.csv"), help="CSV file (relative to the workspace)"),
           workspace: Optional[Path] = WorkspaceOption):
    """Export every grade in the gradebook as CSV (nbgrader export)."""
    ws = _workspace(workspace)
    target = out if out.is_absolute() else ws.root / out
    target.parent.mkdir(parents=True, exist_ok=True)
    _nbgrader(ws, "export", f"--to={target}")
    console.print(f"grades written to {target}")


@app.command()
def report(assignment: str = typer.Argument(...), workspace: Optional[Path] = WorkspaceOption):
    """Score distribution per question as a PNG, and a text summary."""
    from grader.report import write_report

    ws = _workspace(workspace)
    reports = ws.root / "reports"
    reports.mkdir(exist_ok=True)
    try:
        text = write_report(ws, assignment, reports / f"{assignment}-report.png", reports / f"{assignment}-report.txt")
    except ValueError as error:
        _fail(str(error))
    console.print(text)
    console.print(f"plot: {reports / f'{assignment}-report.png'}")


def main():
    app()


if __name__ == "__main__":
    main()
