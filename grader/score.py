"""Steps 4 and 5, judge's results checked and scored: nbgrader's converter writes the gradebook.

``accept`` checks what came back from a worker (exactly the cells that went in, with the same
sources and nbgrader metadata; every autograded test cell judged) and applies nbgrader's
IgnorePattern and LimitOutput, as ``nbgrader autograde`` does after executing. ``score_student``
runs nbgrader's own ``Autograde`` converter with only its scoring preprocessors
(SaveAutoGrades, AssignLatePenalties, CheckCellMetadata, and ours that keep the hand grades of
answers that did not change) on a staging copy, so the gradebook, ``autograded/`` and late
penalties are nbgrader's own; it writes the judge's typed verdicts to ``WORKSPACE/verdicts/`` for the report.
This module is the only writer of the gradebook.
"""

import dataclasses
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades
from traitlets.config import Config

from grader.judge import is_autograded_test
from grader.preprocessors import KeepHandGrades, RememberHandGrades
from grader.rebuild import grade_id
from grader.results import Failure, FailureKind

NOTES_FROM_OUTPUTS = {"CellTimeoutError": FailureKind.TIMEOUT, "ChannelTimeout": FailureKind.TIMEOUT,
                      "NotRun": FailureKind.KERNEL_DIED}


def settings_for(workspace, limits):
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


def filter_outputs(notebook, settings):
    """nbgrader's IgnorePattern and LimitOutput, as ``nbgrader autograde`` applies them after executing."""
    resources = {}
    notebook, resources = IgnorePattern(pattern=settings["ignore_pattern"], enabled=True).preprocess(notebook, resources)
    limit = LimitOutput(max_lines=settings["max_lines"], max_traceback=settings["max_traceback"])
    notebook, resources = limit.preprocess(notebook, resources)
    return notebook


def _output_notes(executed):
    """Cells that ran too long or never ran, as notes for the problems table (one per reason)."""
    notes = {}
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            kind = NOTES_FROM_OUTPUTS.get(output.get("ename")) if output.output_type == "error" else None
            if kind and output.get("evalue"):
                notes.setdefault(output.evalue, Failure(kind, output.evalue))
    return list(notes.values())


def accept(job, outcome, settings):
    """The coordinator's side of one execution: fills job.executed and verdicts, or job.failure."""
    job.seconds = outcome.seconds
    job.notes += outcome.notes
    if outcome.failure or outcome.executed is None:
        job.failure = outcome.failure or Failure(FailureKind.GRADER, "grader error (no notebook came back): scored 0")
        return job
    try:
        executed = nbformat.reads(outcome.executed, as_version=4)
    except Exception as error:
        job.failure = Failure(FailureKind.GRADER, f"grader error ({type(error).__name__}: {error}): scored 0")
        return job
    if not _same_cells(job.prepared, executed):
        job.failure = Failure(FailureKind.GRADER, "the executed notebook came back with altered cells: scored 0")
        return job
    tests = {grade_id(cell) for cell in executed.cells if is_autograded_test(cell)}
    job.verdicts = [v for v in outcome.verdicts if v.grade_id in tests]
    missing = tests - {v.grade_id for v in job.verdicts}
    if missing:  # the driver writes a verdict for every test cell; a missing one scores 0
        job.notes.append(Failure(FailureKind.NOT_JUDGED, f"{len(missing)} test(s) got no verdict: scored 0"))
        for cell in executed.cells:
            if grade_id(cell) in missing:
                cell.outputs = [nbformat.v4.new_output("error", ename="NotJudged", evalue="this test was not judged",
                                                       traceback=["NotJudged: this test was not judged"])]
    job.executed = filter_outputs(executed, settings)
    job.notes += _output_notes(executed)
    return job


# --------------------------------------------------------------------------- the gradebook

def write_verdicts(workspace, assignment, student, jobs):
    write_verdicts_to(workspace.root / "verdicts", assignment, student, jobs)


def write_verdicts_to(root, assignment, student, jobs):
    """The judge's typed verdicts, one file per notebook (``root/<assignment>/<student>/<nb>.json``):
    what the instructor's report reads."""
    folder = root / assignment / student
    folder.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        data = {"version": 1, "student": student, "assignment": assignment, "notebook": job.notebook,
                "failure": job.failure.as_dict() if job.failure else None,
                "tests": [_verdict_record(v) for v in job.verdicts]}
        temporary = folder / f".{job.notebook}.json.tmp"
        temporary.write_text(json.dumps(data, indent=1))
        temporary.replace(folder / f"{job.notebook}.json")


def failed_notebook(prepared, failure):
    """The prepared notebook with every autograded test failed for ``failure``'s reason: what nbgrader
    scores (0) when a notebook could not be graded as a whole."""
    for cell in prepared.cells:
        if is_autograded_test(cell):
            cell.outputs = [nbformat.v4.new_output("error", ename="NotGraded", evalue=failure.reason,
                                                   traceback=[f"NotGraded: {failure.reason}"])]
    return prepared


def _verdict_record(verdict):
    failure = None
    if not verdict.passed:
        failure = {"kind": verdict.kind or "error", "check": verdict.check, "summary": verdict.summary}
    message = verdict.output + (verdict.error[1] if verdict.error else "")
    return {"grade_id": verdict.grade_id, "passed": verdict.passed, "answers": verdict.answers,
            "message": message.strip(), "failure": failure, "misconception": verdict.misconception}


def score_student(workspace, assignment, student, jobs):
    """Score one student's graded jobs into the gradebook. Returns problems [(file, Failure)]."""
    staging = Path(tempfile.mkdtemp(prefix="grader-staging-", dir=workspace.root))
    problems = []
    try:
        target = staging / student / assignment
        target.mkdir(parents=True)
        timestamp = workspace.root / "submitted" / student / assignment / "timestamp.txt"
        if timestamp.is_file():
            shutil.copy(timestamp, target / "timestamp.txt")
        for job in jobs:
            if job.executed is not None:
                nbformat.write(job.executed, target / job.file)
        if any(job.executed is not None for job in jobs):
            try:
                _run_converter(workspace, staging, assignment, student)
            except Exception as error:  # nbgrader logs the details; one student never stops the batch
                problems.append(("*", Failure(FailureKind.GRADER, f"nbgrader could not score it "
                                                                  f"({type(error).__name__}): scored 0")))
                zero_submission(workspace, assignment, student)
        else:
            zero_submission(workspace, assignment, student)
        write_verdicts(workspace, assignment, student, jobs)
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
    config.Autograde.sanitize_preprocessors = []  # done before execution (grader.rebuild)
    config.Autograde.autograde_preprocessors = [RememberHandGrades, SaveAutoGrades, KeepHandGrades,
                                                AssignLatePenalties, CheckCellMetadata]
    coursedir = CourseDirectory(config=config)
    Autograde(coursedir=coursedir, config=config).start()


def zero_submission(workspace, assignment, student):
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

STATE_VERSION = 3  # 3: tests judged where they stand, per-notebook caps


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
        if job.prepared is not None:
            cells = [[c.cell_type, c.source, c.get("metadata", {})] for c in job.prepared.cells]
            canonical = json.dumps([job.prepared.metadata, cells], sort_keys=True, default=str)
            digest.update(f"run {job.notebook} {hashlib.sha256(canonical.encode()).hexdigest()}\n".encode())
    digest.update(json.dumps([settings, dataclasses.asdict(limits)], sort_keys=True).encode())
    return digest.hexdigest()


def already_graded(workspace, assignment, fingerprints):
    """Students whose recorded fingerprint matches and whose submission is in the gradebook:
    {student: the problem rows recorded when they were graded}."""
    done = {}
    for student, value in fingerprints.items():
        try:
            state = json.loads(_state_path(workspace, assignment, student).read_text())
        except (OSError, ValueError):
            continue
        if state.get("fingerprint") == value:
            done[student] = [(row[0], Failure.from_dict(row[1])) for row in state.get("rows", [])]
    if done:
        with workspace.gradebook() as gradebook:
            for student in list(done):
                try:
                    gradebook.find_submission(assignment, student)
                except MissingEntry:
                    del done[student]
    return done


def record(workspace, assignment, student, value, rows):
    """Written after the student's grades are committed to the gradebook, never before.
    ``rows``: [(file, Failure)]."""
    path = _state_path(workspace, assignment, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"fingerprint": value, "rows": [[file, f.as_dict()] for file, f in rows],
                                     "time": time.time()}))
    temporary.replace(path)
