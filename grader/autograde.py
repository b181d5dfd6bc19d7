"""Autograde a batch: nbgrader's own preprocessors and gradebook, sandboxed and in parallel.

nbgrader's ``autograde`` does three things per notebook, in one process: sanitize (clear
outputs, restore test cells from the gradebook, check metadata), execute, score into the
gradebook. We keep every piece and move only the execution:

1. **Plan and sanitize** (here, in the coordinator): each submitted file is read; one that is
   not a notebook (empty, truncated, not JSON, malformed cells) is reported and left out — it
   can never abort the batch. The rest go through nbgrader's sanitize preprocessors
   (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata).
2. **Execute and judge** (in parallel, see ``forkserver`` and ``zygote``): each worker is one
   sandbox with TensorFlow imported once; per notebook it forks a driver and a kernel into fresh
   namespaces (time and memory limits, no network, no view of the gradebook, the solutions or
   any other submission), then, with every process of the student's dead, a judge that runs the
   test cells again on the answers the kernel recorded (``judge``). What comes back is checked:
   it must have exactly the cells that went in, with the same sources and nbgrader metadata —
   only outputs may differ — and the test cells get the judge's outputs (``apply_verdicts``).
3. **Score** (here, one writer): nbgrader's ``Autograde`` converter runs on the executed
   notebooks with only its scoring preprocessors (SaveAutoGrades, AssignLatePenalties,
   CheckCellMetadata), so the gradebook, the ``autograded/`` folder and late penalties are
   nbgrader's own. A notebook that failed gets zero through nbgrader's rule for missing
   notebooks, and the failure table says why.

Nothing under ``submitted/`` is ever written: every step works on copies.
"""

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds,
                                    IgnorePattern, LimitOutput, OverwriteCells, OverwriteKernelspec,
                                    SaveAutoGrades)
from traitlets.config import Config

from grader import forkserver, sandbox
from grader.judge import is_autograded_test
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
    skipped: bool = False  # --resume: already graded from the same files, not run again


@dataclass
class BatchResult:
    jobs: list
    problems: list  # (student, file, reason) for files that are not part of any job
    scores: dict    # student -> (score, max_score)
    seconds: float
    skipped: list = field(default_factory=list)  # students not regraded by --resume

    @property
    def failures(self):
        return sorted(_job_rows(self.jobs) + self.problems)


def _job_rows(jobs):
    jobs = [j for j in jobs if not j.skipped]  # their rows come from the run that graded them
    rows = [(j.student, f"{j.notebook}.ipynb", j.failure) for j in jobs if j.failure]
    rows += [(j.student, f"{j.notebook}.ipynb", note) for j in jobs if not j.failure for note in j.notes]
    return rows


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


def execute_job(notebook_json, settings, limits, hidden=()):
    """Run one sanitized notebook (a JSON string) in its own sandbox on this machine.

    Pure data in, data out, so that it runs the same here and on a Dask worker (grader.distributed):
    returns ``{"executed": JSON or None, "verdicts": the judge's JSON or None, "failure": reason or
    None, "seconds": float}``. It decides nothing about the result: the coordinator checks it
    (``accept``). The notebook runs in
    a child forked by this thread's warm sandbox (``grader.forkserver``, ``grader.zygote``).
    """
    if isinstance(limits, dict):
        limits = sandbox.Limits(**limits)
    started = time.monotonic()
    executed = failure = None
    server = forkserver.acquire(limits, hidden)
    verdicts = None
    try:
        executed, verdicts = server.run(notebook_json, settings, limits)
    except forkserver.JobFailed as error:
        failure = str(error)
    except Exception as error:
        failure = f"grader error ({type(error).__name__}: {error}): scored 0"
    finally:
        forkserver.release(server, limits, hidden)
    return {"executed": executed, "verdicts": verdicts, "failure": failure, "seconds": time.monotonic() - started}


def apply_verdicts(executed, verdicts_json):
    """Replace every autograded test cell's outputs with the judge's (``grader.judge``): what the
    test printed, and an error output if it failed — nbgrader scores a test cell by its error
    outputs. The outputs the student's kernel gave these cells are dropped: student code could
    have faked them. A test cell without a verdict scores 0. Returns notes for the failure table."""
    try:
        verdicts = json.loads(verdicts_json) if verdicts_json else {"error": "no verdicts came back"}
    except ValueError:
        verdicts = {"error": "the verdicts could not be read"}
    tests = {_grade_id(cell): cell for cell in executed.cells if is_autograded_test(cell)}
    judged = {}
    for verdict in verdicts if isinstance(verdicts, list) else []:
        if isinstance(verdict, dict) and verdict.get("grade_id") in tests:
            judged[verdict["grade_id"]] = verdict
    notes = []
    if set(judged) != set(tests):
        reason = verdicts.get("error") if isinstance(verdicts, dict) else "some tests have no verdict"
        notes.append(f"the tests could not be judged ({str(reason)[:200]}): those without a verdict scored 0")
    for grade_id, cell in tests.items():
        verdict = judged.get(grade_id)
        outputs = []
        if verdict and verdict.get("output"):
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=str(verdict["output"])))
        if verdict is None:
            outputs.append(nbformat.v4.new_output("error", ename="NotJudged", evalue="this test was not judged",
                                                  traceback=["NotJudged: this test was not judged"]))
        elif verdict.get("passed") is not True:
            error = verdict.get("error") if isinstance(verdict.get("error"), list) else ["Error", "", []]
            ename, evalue, traceback = (error + ["", "", []])[:3]
            outputs.append(nbformat.v4.new_output(
                "error", ename=str(ename), evalue=str(evalue),
                traceback=[str(line) for line in traceback] if isinstance(traceback, list) else [str(evalue)]))
        cell.outputs = outputs
    return notes


def filter_outputs(notebook, settings):
    """nbgrader's IgnorePattern and LimitOutput, as ``nbgrader autograde`` applies them after
    executing (its ClearMetadataPreprocessor is disabled by default)."""
    resources = {}
    ignore = IgnorePattern(pattern=settings["ignore_pattern"], enabled=True)
    notebook, resources = ignore.preprocess(notebook, resources)
    limit = LimitOutput(max_lines=settings["max_lines"], max_traceback=settings["max_traceback"])
    notebook, resources = limit.preprocess(notebook, resources)
    return notebook


def accept(job, outcome, settings):
    """The coordinator's side of one execution: fills job.executed or job.failure."""
    job.seconds = outcome.get("seconds", 0.0)
    if outcome.get("failure") or outcome.get("executed") is None:
        job.failure = outcome.get("failure") or "grader error (no notebook came back): scored 0"
        return job
    try:
        executed = nbformat.reads(outcome["executed"], as_version=4)
    except Exception as error:
        job.failure = f"grader error ({type(error).__name__}: {error}): scored 0"
        return job
    if not _same_cells(job.sanitized, executed):
        job.failure = "the executed notebook came back with altered cells: scored 0"
    else:
        job.notes += apply_verdicts(executed, outcome.get("verdicts"))
        job.executed = filter_outputs(executed, settings)
        job.notes += sorted({o.evalue for c in executed.cells for o in c.get("outputs", [])
                             if o.output_type == "error" and o.ename in ("NotRun", "CellTimeoutError")
                             and o.evalue})
    return job


def execute(job, settings, limits, hidden):
    """Run one job in its own sandbox; fills job.executed or job.failure."""
    return accept(job, execute_job(nbformat.writes(job.sanitized), settings, limits, hidden), settings)


def execute_all(workspace, jobs, limits, workers, progress=None, scheduler=None, announce=None):
    settings = _settings(workspace, limits)
    hidden = [workspace.root]
    runnable = [job for job in jobs if job.sanitized is not None]
    if scheduler:  # on a Dask cluster; same execute_job and the same checks, see grader.distributed
        from grader.distributed import execute_on_cluster

        return execute_on_cluster(scheduler, runnable, settings, limits, [str(p) for p in hidden], progress, announce)
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


# --------------------------------------------------------------------------- resume

STATE_VERSION = 2  # 2: verdicts from the judge


def _state_path(workspace, assignment, student):
    # Not under autograded/: nbgrader copies every other file there into students' feedback.
    return workspace.root / "autograde-state" / assignment / f"{student}.json"


def fingerprint(workspace, assignment, student, jobs, settings, limits):
    """What a student's grade depends on: every submitted file (and timestamp.txt) byte for byte, the
    notebooks as they are run (release cells and the gradebook's tests put back in), and the limits.
    Changing any of them — a resubmission, a fixed test, a new release, other limits — regrades."""
    digest = hashlib.sha256(f"course-grader autograde {STATE_VERSION}\n".encode())
    folder = workspace.root / "submitted" / student / assignment
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file():
            digest.update(f"file {path.name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    for job in sorted((j for j in jobs if j.student == student), key=lambda j: j.notebook):
        if job.sanitized is not None:
            cells = [[c.cell_type, c.source, c.get("metadata", {})] for c in job.sanitized.cells]
            canonical = json.dumps([job.sanitized.metadata, cells], sort_keys=True, default=str)
            digest.update(f"run {job.notebook} {hashlib.sha256(canonical.encode()).hexdigest()}\n".encode())
    digest.update(json.dumps([settings, dataclasses.asdict(limits)], sort_keys=True).encode())
    return digest.hexdigest()


def already_graded(workspace, assignment, fingerprints):
    """Students whose recorded fingerprint matches and whose submission is in the gradebook:
    {student: the failure rows recorded when they were graded}."""
    done = {}
    for student, value in fingerprints.items():
        try:
            state = json.loads(_state_path(workspace, assignment, student).read_text())
        except (OSError, ValueError):
            continue
        if state.get("fingerprint") == value:
            done[student] = [tuple(row) for row in state.get("rows", [])]
    if done:
        with workspace.gradebook() as gradebook:
            for student in list(done):
                try:
                    gradebook.find_submission(assignment, student)
                except MissingEntry:
                    del done[student]
    return done


def record(workspace, assignment, student, value, rows):
    """Written after the student's grades are committed to the gradebook, never before."""
    path = _state_path(workspace, assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"fingerprint": value, "rows": [list(r) for r in rows], "time": time.time()}))
    temporary.replace(path)


# --------------------------------------------------------------------------- the whole batch

def autograde(workspace, assignment, students=None, workers=2, limits=None, progress=None,
              scheduler=None, resume=False, announce=None):
    """Grade a batch. ``scheduler``: a Dask scheduler address (or scheduler file) to execute on
    instead of this machine. ``resume``: skip students already graded from the same files.

    Each student is scored as soon as all their notebooks have run, so an interrupted batch keeps
    what it graded; with ``resume`` a restart picks up where it stopped."""
    limits = limits or sandbox.Limits()
    started = time.monotonic()
    if not scheduler:
        sandbox.bwrap_path()  # fail early, with the install hint, when bubblewrap is missing
        sandbox.check_namespaces([workspace.root])
        # The workers' sandboxes import TensorFlow (~3 s) while we read and sanitize the submissions.
        forkserver.prestart(limits, [workspace.root], workers)
    try:
        jobs, problems = plan(workspace, assignment, students)
        prepare(workspace, jobs)
        students = sorted({job.student for job in jobs} | {student for student, _, _ in problems})
        settings = _settings(workspace, limits)
        fingerprints = {student: fingerprint(workspace, assignment, student, jobs, settings, limits)
                        for student in students}
        done = already_graded(workspace, assignment, fingerprints) if resume else {}
        for job in jobs:
            if job.student in done:
                job.skipped = True
                if progress:
                    progress(job)
        graded_jobs = [job for job in jobs if job.student not in done]
        problems = [row for row in problems if row[0] not in done]
        pending = Counter(job.student for job in graded_jobs if job.sanitized is not None)

        def finish(student):
            own = [job for job in graded_jobs if job.student == student]
            rows = score(workspace, assignment, own, [student])
            problems.extend(rows)
            if not any(job.failure and job.failure.startswith("grader error") for job in own):
                # a grader error is not the submission's fault: resume runs it again
                record(workspace, assignment, student, fingerprints[student],
                       _job_rows(own) + [row for row in problems if row[0] == student])

        def completed(job):
            if progress:
                progress(job)
            pending[job.student] -= 1
            if pending[job.student] == 0:
                finish(job.student)

        for student in students:  # nothing of theirs can run: scored (zero) right away
            if student not in done and student not in pending:
                finish(student)
        execute_all(workspace, graded_jobs, limits, workers, completed, scheduler, announce)
        for student, rows in done.items():
            problems.extend(rows)
    finally:
        forkserver.close_all()  # every worker sandbox of this batch, even after an error
    return BatchResult(graded_jobs + [job for job in jobs if job.skipped], problems,
                       totals(workspace, assignment, students), time.monotonic() - started, sorted(done))
