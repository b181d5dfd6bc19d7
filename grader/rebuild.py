"""Step 2, rebuild: the release notebook with only the student's answers put in, then sanitized.

Only the contents of answer cells (nbgrader solution cells, matched by grade_id) and the
student's own extra cells come from the submission; every other cell — instructions, given
code, visible and hidden tests — comes from the release (tests restored from the gradebook by
nbgrader's OverwriteCells), in the release's order. Deleted, duplicated, reordered or edited
test cells, and changed cell metadata, therefore cannot change what is graded.
"""

import json

import nbformat
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec
from nbgrader.utils import is_solution

from grader.results import Failure, FailureKind
from grader.submissions import read_notebook
from grader.workspace import WorkspaceError

SANITIZE = [ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata]


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def rebuild_from_release(submitted, release):
    """(the rebuilt notebook, notes about answers that could not be placed). Extra cells keep
    their place after the answer (or given) cell they followed."""
    template_ids = {grade_id(cell) for cell in release.cells if grade_id(cell)}
    answer_ids = {grade_id(cell) for cell in release.cells if is_solution(cell)}
    answers, extras, notes = {}, {None: []}, []
    anchor = None
    for cell in submitted.cells:
        cell_id = grade_id(cell)
        if cell_id in answer_ids:
            if cell_id in answers:
                notes.append(Failure(FailureKind.ANSWER_MISSING,
                                     f"answer cell '{cell_id}' appears more than once: the last one was graded"))
            answers[cell_id] = cell
            anchor = cell_id
        elif cell_id in template_ids:
            anchor = cell_id  # a given or test cell: its content comes from the release
        elif cell.cell_type in ("code", "markdown"):
            extras.setdefault(anchor, []).append(cell)
    rebuilt = nbformat.v4.new_notebook(metadata=release.metadata)
    rebuilt.cells.extend(_plain_copy(cell) for cell in extras[None])
    for cell in release.cells:
        cell_id = grade_id(cell)
        copy = nbformat.from_dict(json.loads(json.dumps(cell)))
        if cell_id in answer_ids:
            if cell_id in answers and answers[cell_id].cell_type == cell.cell_type:
                copy.source = answers[cell_id].source
            else:
                notes.append(Failure(FailureKind.ANSWER_MISSING,
                                     f"answer cell '{cell_id}' was not found (deleted, or its nbgrader metadata "
                                     "changed): graded as unanswered"))
        rebuilt.cells.append(copy)
        rebuilt.cells.extend(_plain_copy(extra) for extra in extras.get(cell_id, []) if cell_id)
    return rebuilt, notes


def _plain_copy(cell):
    """A student's own cell, without any nbgrader metadata it may carry."""
    if cell.cell_type == "code":
        return nbformat.v4.new_code_cell(cell.source)
    return nbformat.v4.new_markdown_cell(cell.source)


def sanitize(config, db_url, student, assignment, notebook_name, notebook):
    """nbgrader's own sanitize preprocessors (OverwriteCells restores tests from the gradebook)."""
    resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": notebook_name,
                              "db_url": db_url}}
    for preprocessor_class in SANITIZE:
        notebook, resources = preprocessor_class(config=config).preprocess(notebook, resources)
    return notebook


def release_notebook(workspace, assignment, notebook_name):
    path = workspace.root / "release" / assignment / f"{notebook_name}.ipynb"
    if not path.is_file():
        raise WorkspaceError(f"no release of {assignment}/{notebook_name}.ipynb in the workspace: "
                             f"run `course-grader release {assignment}` first.")
    return nbformat.read(path, as_version=4)


def prepare(workspace, jobs):
    """Read, rebuild and sanitize every job: fills ``job.prepared`` or ``job.failure``."""
    releases = {}
    for job in jobs:
        notebook, job.failure = read_notebook(job.path)
        if job.failure:
            continue
        key = (job.assignment, job.notebook)
        if key not in releases:
            releases[key] = release_notebook(workspace, job.assignment, job.notebook)
        try:
            notebook, job.notes = rebuild_from_release(notebook, releases[key])
            job.prepared = sanitize(workspace.config, workspace.db_url, job.student, job.assignment, job.notebook,
                                    notebook)
        except Exception as error:  # nbgrader's checks raise on duplicated or broken grade cells
            job.failure = Failure(FailureKind.NOT_PREPARED, f"nbgrader could not prepare it ({type(error).__name__}: "
                                  f"{str(error).splitlines()[0][:200] if str(error) else ''}): scored 0")
