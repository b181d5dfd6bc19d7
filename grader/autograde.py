"""Autograde a batch: nbgrader's own preprocessors and gradebook, sandboxed and in parallel.

nbgrader's ``autograde`` does three things per notebook, in one process: sanitize (clear
outputs, restore test cells from the gradebook, check metadata), execute, score into the
gradebook. We keep every piece and move only the execution:

1. **Plan and sanitize** (here, in the coordinator): each submitted file is read; one that is
   not a notebook (empty, truncated, not JSON, malformed cells) is reported and left out — it
   can never abort the batch. The rest go through nbgrader's sanitize preprocessors
   (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata).
2. **Execute** (in parallel, one fresh sandboxed process per notebook, see ``sandbox``): the
   sanitized notebook is copied into a private folder, run by ``execute_worker`` under time
   and memory limits, with no network and no view of the gradebook, the solutions or any other
   submission. What comes back is checked: it must have exactly the cells that went in, with
   the same sources and nbgrader metadata — only outputs may differ.
3. **Score** (here, one writer): nbgrader's ``Autograde`` converter runs on the executed
   notebooks with only its scoring preprocessors (SaveAutoGrades, AssignLatePenalties,
   CheckCellMetadata), so the gradebook, the ``autograded/`` folder and late penalties are
   nbgrader's own. A notebook that failed gets zero through nbgrader's rule for missing
   notebooks, and the failure table says why.

Nothing under ``submitted/`` is ever written: every step works on copies.
"""

import json
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                    OverwriteCells, OverwriteKernelspec, SaveAutoGrades)
from traitlets.config import Config

from grader import sandbox
from grader.workspace import WorkspaceError

SANITIZE = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]
MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass
class Job:
    student: str
    assignment: str
    notebook: str
    path: Path
    sanitized: nbformat.NotebookNode = None
    executed: nbformat.NotebookNode = None
    failure: str = None
    notes: list = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class BatchResult:
    jobs: list
    problems: list  # (student, file, reason) for files that are not part of any job
    scores: dict    # student -> (score, max_score)
    seconds: float

    @property
    def failures(self):
        rows = [(j.student, f"{j.notebook}.ipynb", j.failure) for j in self.jobs if j.failure]
        rows += [(j.student, f"{j.notebook}.ipynb", note) for j in self.jobs if not j.failure for note in j.notes]
        return sorted(rows + self.problems)


# --------------------------------------------------------------------------- 1. plan

def plan(workspace, assignment, students=None):
    with workspace.gradebook() as gradebook:
        try:
            notebooks = sorted(n.name for n in gradebook.find_assignment(assignment).notebooks)
        except MissingEntry:
            raise WorkspaceError(f"assignment '{assignment}' is not in the gradebook: "
                                 f"run `course-grader release {assignment}` first.") from None
    jobs, problems = [], []
    submitted = workspace.root / "submitted"
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []:
        student = student_dir.name
        if students and student not in students:
            continue
        folder = student_dir / assignment
        if not folder.is_dir():
            continue
        found = set()
        for path in sorted(folder.iterdir()):
            if path.name == "timestamp.txt" or path.name.startswith("."):
                continue
            if path.suffix == ".ipynb" and path.stem in notebooks:
                jobs.append(Job(student, assignment, path.stem, path))
                found.add(path.stem)
            else:
                problems.append((student, path.name, "not a notebook of this assignment: not graded "
                                 f"(expected {', '.join(n + '.ipynb' for n in notebooks)})"))
        for missing in sorted(set(notebooks) - found):
            problems.append((student, f"{missing}.ipynb", "not submitted: scored 0"))
    return jobs, problems


def read_notebook(path):
    """The submitted notebook, or a reason why it cannot be graded."""
    data = path.read_bytes()
    if not data.strip():
        return None, "empty file: scored 0"
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, f"file larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB: scored 0"
    try:
        json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"not a notebook (not valid JSON, truncated? {error}): scored 0"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicated cell ids are renumbered; the rebuild ignores ids
            notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:
        return None, f"not a valid notebook ({type(error).__name__}: {str(error).splitlines()[0][:200]}): scored 0"
    return notebook, None


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def rebuild_from_release(submitted, release):
    """The release notebook with the student's answers put in, matched by nbgrader grade_id.

    Only the contents of answer cells (nbgrader solution cells) and the student's own extra
    cells come from the submission; every other cell — instructions, given code, visible and
    hidden tests — comes from the release, in the release's order. Deleted, duplicated,
    reordered or edited test cells, and changed cell metadata, therefore cannot change what is
    graded. Extra cells keep their place after the answer cell they followed. Returns the
    rebuilt notebook and notes about answers that could not be placed.
    """
    template_ids = {_grade_id(cell) for cell in release.cells if _grade_id(cell)}
    answer_ids = {_grade_id(cell) for cell in release.cells
                  if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}
    answers, extras, notes = {}, {None: []}, []
    anchor = None
    for cell in submitted.cells:
        grade_id = _grade_id(cell)
        if grade_id in answer_ids:
            if grade_id in answers:
                notes.append(f"answer cell '{grade_id}' appears more than once: the last one was graded")
            answers[grade_id] = cell
            anchor = grade_id
        elif grade_id in template_ids:
            anchor = grade_id  # a given or test cell: its content comes from the release
        elif cell.cell_type in ("code", "markdown"):
            extras.setdefault(anchor, []).append(cell)
    rebuilt = nbformat.v4.new_notebook(metadata=release.metadata)
    rebuilt.cells.extend(_plain_copy(cell) for cell in extras[None])
    for cell in release.cells:
        grade_id = _grade_id(cell)
        copy = nbformat.from_dict(json.loads(json.dumps(cell)))
        if grade_id in answer_ids:
            if grade_id in answers and answers[grade_id].cell_type == cell.cell_type:
                copy.source = answers[grade_id].source
            else:
                notes.append(f"answer cell '{grade_id}' was not found (deleted, or its nbgrader metadata changed): "
                             "graded as unanswered")
        rebuilt.cells.append(copy)
        rebuilt.cells.extend(_plain_copy(extra) for extra in extras.get(grade_id, []) if grade_id)
    return rebuilt, notes


def _plain_copy(cell):
    """A student's own cell, without any nbgrader metadata it may carry."""
    if cell.cell_type == "code":
        return nbformat.v4.new_code_cell(cell.source)
    return nbformat.v4.new_markdown_cell(cell.source)


def sanitize(workspace, job, notebook):
    resources = {"nbgrader": {"student": job.student, "assignment": job.assignment,
                              "notebook": job.notebook, "db_url": workspace.db_url}}
    for preprocessor_class in SANITIZE:
        notebook, resources = preprocessor_class(config=workspace.config).preprocess(notebook, resources)
    return notebook


def prepare(workspace, jobs):
    releases = {}
    for job in jobs:
        notebook, job.failure = read_notebook(job.path)
        if job.failure:
            continue
        key = (job.assignment, job.notebook)
        if key not in releases:
            path = workspace.root / "release" / job.assignment / f"{job.notebook}.ipynb"
            if not path.is_file():
                raise WorkspaceError(f"no release of {job.assignment}/{job.notebook}.ipynb in the workspace: "
                                     f"run `course-grader release {job.assignment}` first.")
            releases[key] = nbformat.read(path, as_version=4)
        try:
            notebook, notes = rebuild_from_release(notebook, releases[key])
            job.notes = notes
            job.sanitized = sanitize(workspace, job, notebook)
        except Exception as error:  # nbgrader's checks raise on duplicated or broken grade cells
            job.failure = (f"nbgrader could not prepare it ({type(error).__name__}: "
                           f"{str(error).splitlines()[0][:200] if str(error) else ''}): scored 0")


# --------------------------------------------------------------------------- 2. execute

def _settings(workspace, limits):
    config = workspace.config
    return {"cell_seconds": limits.cell_seconds,
            "ignore_pattern": config.IgnorePattern.get("pattern", ""),
            "max_lines": config.LimitOutput.get("max_lines", 1000),
            "max_traceback": config.LimitOutput.get("max_traceback", 100)}


def _same_cells(sent, received):
    if len(sent.cells) != len(received.cells):
        return False
    for a, b in zip(sent.cells, received.cells):
        if (a.cell_type, a.source, a.metadata.get("nbgrader")) != (b.cell_type, b.source, b.metadata.get("nbgrader")):
            return False
    return True


def execute(job, settings, limits, hidden):
    """Run one job in its own sandbox; fills job.executed or job.failure."""
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="grader-"))
    try:
        nbformat.write(job.sanitized, folder / "input.ipynb")
        (folder / "settings.json").write_text(json.dumps(settings))
        result = sandbox.run(folder, [sandbox.sys.executable, "-m", "grader.execute_worker", str(sandbox.INSIDE)],
                             limits, hidden=hidden)
        output = folder / "output.ipynb"
        if result.timed_out:
            job.failure = f"the notebook ran longer than {limits.wall_seconds:g} s and was stopped: scored 0"
        elif not output.is_file():
            reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit code {result.returncode}"
            job.failure = f"execution failed ({reason[:200]}): scored 0"
        elif output.stat().st_size > limits.max_output_bytes:
            job.failure = f"outputs larger than {limits.max_output_bytes // 2**20} MiB: scored 0"
        else:
            executed = nbformat.read(output, as_version=4)
            if not _same_cells(job.sanitized, executed):
                job.failure = "the executed notebook came back with altered cells: scored 0"
            else:
                job.executed = executed
                job.notes += sorted({o.evalue for c in executed.cells for o in c.get("outputs", [])
                                     if o.output_type == "error" and o.ename in ("NotRun", "CellTimeoutError")
                                     and o.evalue})
    except Exception as error:
        job.failure = f"grader error ({type(error).__name__}: {error}): scored 0"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        job.seconds = time.monotonic() - started
    return job


def execute_all(workspace, jobs, limits, workers, progress=None):
    settings = _settings(workspace, limits)
    hidden = [workspace.root]
    runnable = [job for job in jobs if job.sanitized is not None]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(execute, job, settings, limits, hidden) for job in runnable]
        for future in as_completed(futures):
            job = future.result()
            if progress:
                progress(job)


# --------------------------------------------------------------------------- 3. score

def score(workspace, assignment, jobs, students):
    """nbgrader's Autograde converter, scoring only, on a staging copy of executed notebooks.
    Returns (student, file, reason) rows for students nbgrader could not score."""
    staging = Path(tempfile.mkdtemp(prefix="grader-staging-", dir=workspace.root))
    problems = []
    try:
        for student in students:
            target = staging / student / assignment
            target.mkdir(parents=True)
            timestamp = workspace.root / "submitted" / student / assignment / "timestamp.txt"
            if timestamp.is_file():
                shutil.copy(timestamp, target / "timestamp.txt")
        for job in jobs:
            if job.executed is not None:
                nbformat.write(job.executed, staging / job.student / assignment / f"{job.notebook}.ipynb")
        graded_students = sorted({job.student for job in jobs if job.executed is not None})
        for student in graded_students:
            try:
                _run_converter(workspace, staging, assignment, student)
            except Exception as error:  # nbgrader logs the details; one student never stops the batch
                problems.append((student, "*", f"nbgrader could not score it ({type(error).__name__}): scored 0"))
                _zero_submission(workspace, assignment, student)
        for student in sorted(set(students) - set(graded_students)):
            _zero_submission(workspace, assignment, student)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return problems


def _run_converter(workspace, staging, assignment, student):
    config = Config()
    config.merge(workspace.config)
    config.CourseDirectory.submitted_directory = str(staging)
    config.CourseDirectory.assignment_id = assignment
    config.CourseDirectory.student_id = student
    config.BaseConverter.force = True
    config.Autograde.sanitize_preprocessors = []  # done before execution, in `prepare`
    config.Autograde.autograde_preprocessors = [SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    coursedir = CourseDirectory(config=config)
    converter = Autograde(coursedir=coursedir, config=config)
    converter.start()


def _zero_submission(workspace, assignment, student):
    """No notebook of this submission could be graded: record it in the gradebook with zero."""
    with workspace.gradebook() as gradebook:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(assignment, student)
        for notebook in gradebook.find_assignment(assignment).notebooks:
            submission = gradebook.find_submission_notebook(notebook.name, assignment, student)
            for grade in submission.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gradebook.db.commit()


def totals(workspace, assignment, students):
    with workspace.gradebook() as gradebook:
        result = {}
        for student in students:
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                continue
            result[student] = (submission.score, submission.max_score)
        return result


# --------------------------------------------------------------------------- the whole batch

def autograde(workspace, assignment, students=None, workers=2, limits=None, progress=None):
    limits = limits or sandbox.Limits()
    sandbox.bwrap_path()  # fail early, with the install hint, when bubblewrap is missing
    started = time.monotonic()
    jobs, problems = plan(workspace, assignment, students)
    prepare(workspace, jobs)
    execute_all(workspace, jobs, limits, workers, progress)
    students = sorted({job.student for job in jobs} | {student for student, _, _ in problems})
    problems += score(workspace, assignment, jobs, students)
    return BatchResult(jobs, problems, totals(workspace, assignment, students), time.monotonic() - started)
