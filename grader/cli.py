"""course-grader: the instructor's workflow over nbgrader, from an LMS export to grades.

    course-grader init WORKSPACE                 a workspace (nbgrader config + gradebook) on solutions/
    course-grader roster ROSTER.csv              students into the gradebook (Canvas/Moodle gradebook export or CSV)
    course-grader release [A ...] [--due DATE]   nbgrader generate_assignment into WORKSPACE/release; due dates
    course-grader collect EXPORT --assignment A  Canvas/Moodle zip or folder -> WORKSPACE/submitted, with lateness
    course-grader autograde A                    sandboxed, parallel autograding into the gradebook
    course-grader formgrader                     JupyterLab + Formgrader on the workspace, to grade written answers
    course-grader feedback A                     nbgrader generate_feedback for fully graded submissions
    course-grader export --format canvas         grades an LMS imports as it is (canvas, moodle or csv)
    course-grader report A                       what the class understood: PNG + HTML + text

Every command but init works on the workspace given by --workspace (default: the current
folder, or $COURSE_GRADER_WORKSPACE).
"""

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from grader.workspace import REPO, Workspace, WorkspaceError

app = typer.Typer(help="The instructor's workflow over nbgrader: init, roster, release, collect, autograde, "
                  "formgrader, feedback, export, report. Every command but init works on --workspace (default: the current "
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
def roster(csv_file: Path = typer.Argument(..., help="Canvas's gradebook export (Grades → Export), Moodle's "
                                          "(Grades → Export → Plain text file), or a CSV with an id column (and "
                                          "first_name, last_name, email, lms_user_id)"),
           workspace: Optional[Path] = WorkspaceOption):
    """Import the class into the gradebook, with the LMS's ids (bad rows and test students are reported, not imported)."""
    from grader.lms import RosterError
    from grader.roster import import_roster

    ws = _workspace(workspace)
    try:
        result = import_roster(ws, csv_file)
    except (FileNotFoundError, RosterError) as error:
        _fail(str(error))
    console.print(f"imported {len(result.imported)} students ({result.lms} roster)")
    for assignment, column in sorted(result.columns.items()):
        console.print(f"  {assignment}: the LMS's column is '{column}'")
    if result.rejected:
        _table("rows not imported", ["line", "reason"], result.rejected)


@app.command()
def release(assignments: Optional[List[str]] = typer.Argument(None, help="default: every assignment"),
            due: Optional[str] = typer.Option(None, help="due date and time, e.g. '2026-03-01 23:59' (in "
                                              "c.CourseGrader.timezone, default this machine's zone) or with an "
                                              "offset ('2026-03-01T23:59:00+01:00'); default: "
                                              "c.CourseGrader.due_dates in the workspace's nbgrader_config.py"),
            workspace: Optional[Path] = WorkspaceOption):
    """Generate the student release with nbgrader (records the assignments and their due dates in the gradebook)."""
    ws = _workspace(workspace)
    try:
        configured = ws.configured_due_dates()
        when = ws.parse_date(due) if due else None
    except WorkspaceError as error:
        _fail(str(error))
    for assignment in assignments or ws.assignments():
        if assignment not in ws.assignments():
            _fail(f"no assignment '{assignment}' in {ws.solutions}; there are: {', '.join(ws.assignments())}")
        _nbgrader(ws, "generate_assignment", assignment, "--force")
        console.print(f"released {assignment} -> {ws.root / 'release' / assignment}")
        due_date = when or configured.get(assignment)
        if due_date:
            ws.set_due_date(assignment, due_date)
        recorded = ws.due_date(assignment)
        if recorded:
            console.print(f"  due {recorded.astimezone(ws.timezone):%Y-%m-%d %H:%M:%S %Z} "
                          f"({recorded:%Y-%m-%d %H:%M:%S} UTC)")


@app.command()
def collect(source: Path = typer.Argument(..., help="an LMS export: Canvas's or Moodle's zip, or a folder"),
            assignment: str = typer.Option(..., "--assignment", "-a"),
            match: Optional[List[str]] = typer.Option(None, "--match", help="ENTRY=NOTEBOOK: collect this file of "
                                                      "the export (ZIP::MEMBER for a file inside an uploaded zip) as "
                                                      "that notebook, as the table of unmatched files suggests"),
            worksheet: Optional[Path] = typer.Option(None, help="Moodle: the assignment's grading worksheet (CSV), "
                                                     "for participant ids and submission times"),
            workspace: Optional[Path] = WorkspaceOption):
    """Copy submissions from an LMS export into submitted/, with the LMS's lateness; report every file it cannot match."""
    import shlex

    from grader.collect import collect as run_collect

    ws = _workspace(workspace)
    again = ["course-grader", "collect", str(source), "--assignment", assignment]
    again += ["--worksheet", str(worksheet)] if worksheet else []
    again += ["--workspace", str(workspace)] if workspace else []
    try:
        result = run_collect(ws, source, assignment, matches=match or (), worksheet=worksheet,
                             command=" ".join(shlex.quote(part) for part in again))
    except (FileNotFoundError, ValueError, WorkspaceError) as error:
        _fail(str(error))
    late = sum(1 for *_, is_late in result.collected if is_late)
    console.print(f"collected {len(result.collected)} notebooks from {len(result.students)} students into "
                  f"{ws.root / 'submitted'}" + (f"; {late} marked late by the LMS" if late else ""))
    due = ws.due_date(assignment)
    console.print(f"due date of '{assignment}': " + (f"{due.astimezone(ws.timezone):%Y-%m-%d %H:%M:%S %Z}" if due else
                  f"none (set one with course-grader release {assignment} --due …)"))
    if result.unmatched:
        _table(f"not collected (copies kept in {result.batch})", ["file", "reason", "looks like"],
               [(path, reason, "; ".join(f"{h.notebook}.ipynb ({h.why})" for h in hints))
                for path, reason, hints in result.unmatched])
        commands = [hint.command for _, _, hints in result.unmatched for hint in hints]
        if commands:
            console.print("to collect a file as the notebook it looks like, run (one --match per file; they combine):")
            for line in commands:
                console.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)
    if result.superseded:
        _table(f"older uploads, not graded (kept in {result.batch / 'superseded'})", ["file", "reason"],
               result.superseded)
    if result.notes:
        _table("notes", ["student", "note"], result.notes)


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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def formgrader(ctx: typer.Context, port: int = typer.Option(8888, help="port (the next free one if taken)"),
               ip: str = typer.Option("127.0.0.1", help="address to listen on"),
               workspace: Optional[Path] = WorkspaceOption):
    """JupyterLab with nbgrader's Formgrader on the workspace: grade written answers (Nbgrader → Formgrader →
    Manual Grading). Extra options go to JupyterLab (e.g. --IdentityProvider.token=…). Ctrl-C stops it."""
    from grader.formgrader import command

    ws = _workspace(workspace)
    argv, env = command(ws, ip=ip, port=port, extra=ctx.args)
    console.print(f"Formgrader on {ws.root}: open the address JupyterLab prints below, then Nbgrader → Formgrader "
                  "→ Manual Grading (or go to /formgrader). Grades entered there are final for export once every "
                  "answer of a submission is graded.")
    sys.stdout.flush()
    os.chdir(ws.root)  # nbgrader's server extension reads nbgrader_config.py from here
    os.execve(argv[0], argv, env)


@app.command()
def feedback(assignment: str = typer.Argument(...),
             student: Optional[List[str]] = typer.Option(None, "--student", help="only these students"),
             workspace: Optional[Path] = WorkspaceOption):
    """Students' feedback (HTML, nbgrader generate_feedback, without hidden tests), for submissions whose every
    answer is graded: one with answers still to grade by hand gets none yet, so no one reads a 0 that is not final."""
    from grader.export import Status, grade_table

    ws = _workspace(workspace)
    try:
        table = grade_table(ws, [assignment])
    except ValueError as error:
        _fail(str(error))
    pending = sorted(g.student for g in table.provisional if not student or g.student in student)
    ready = sorted(g.student for g in table.grades.values() if g.status is Status.FINAL
                   and (not student or g.student in student))
    if ready:
        args = ["generate_feedback", assignment, "--force"]
        excluded = sorted({s.id for s in table.students} - set(ready))
        if excluded:
            args.append(f"--CourseDirectory.student_id_exclude={','.join(excluded)}")
        _nbgrader(ws, *args)
    console.print(f"feedback for {len(ready)} students in {ws.root / 'feedback'}")
    if pending:
        _table(f"not graded yet: no feedback for {len(pending)} students (answers still to grade by hand in "
               "course-grader formgrader; run feedback again afterwards)", ["student", "answers to grade"],
               [(g.student, g.to_grade) for g in sorted(table.provisional, key=lambda g: g.student)
                if g.student in pending])


@app.command()
def export(fmt: str = typer.Option("csv", "--format", "-f", help="canvas: Canvas's gradebook import CSV; moodle: "
                                   "Moodle's grade import CSV (map by e-mail address); csv: one row per student and "
                                   "assignment, with status (final, provisional, not submitted)"),
           assignment: Optional[List[str]] = typer.Option(None, "--assignment", "-a", help="only these (default: all)"),
           out: Optional[Path] = typer.Option(None, help="file to write (relative to the workspace; default "
                                              "reports/grades.csv, reports/canvas-grades.csv, reports/moodle-grades.csv)"),
           provisional: bool = typer.Option(False, "--provisional", help="canvas/moodle: include grades that still "
                                            "have answers to grade by hand (default: left blank)"),
           workspace: Optional[Path] = WorkspaceOption):
    """Export the gradebook's grades as a file the LMS imports as it is; ungraded is blank, never 0."""
    from grader.export import Format, grade_table, write

    ws = _workspace(workspace)
    try:
        fmt = Format(fmt.lower())
    except ValueError:
        _fail(f"--format must be one of: {', '.join(f.value for f in Format)}")
    default = {Format.CSV: "grades.csv", Format.CANVAS: "canvas-grades.csv", Format.MOODLE: "moodle-grades.csv"}[fmt]
    target = out or Path("reports") / default
    target = target if target.is_absolute() else ws.root / target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        table = grade_table(ws, assignment)
    except ValueError as error:
        _fail(str(error))
    notes = write(ws, table, fmt, target, include_provisional=provisional)
    console.print(f"grades of {len(table.students)} students, {len(table.assignments)} assignments written to {target}")
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


@app.command()
def report(assignment: str = typer.Argument(...), workspace: Optional[Path] = WorkspaceOption):
    """What the class understood: facility and discrimination per question, options chosen with their
    misconceptions, failed checks, similar submissions — reports/A-report.html (+ .png, .txt)."""
    from grader.report import write_report

    ws = _workspace(workspace)
    reports = ws.root / "reports"
    reports.mkdir(exist_ok=True)
    paths = [reports / f"{assignment}-report.{ext}" for ext in ("png", "html", "txt")]
    try:
        _, text = write_report(ws, assignment, *paths)
    except ValueError as error:
        _fail(str(error))
    console.print(text)
    console.print(f"report: {paths[1]} (open it in a browser); plot: {paths[0]}")


def main():
    app()


if __name__ == "__main__":
    main()
