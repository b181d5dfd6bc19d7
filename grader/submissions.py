"""Step 1, read: which notebooks a batch grades, and each submitted file read safely.

A file that is not a notebook (empty, truncated, not JSON, malformed cells) becomes a
``Failure`` with its reason; it can never abort the batch. Nothing under ``submitted/`` is
ever written.
"""

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry

from grader.results import Failure, FailureKind
from grader.workspace import WorkspaceError

MAX_NOTEBOOK_BYTES = 50 * 2**20


@dataclass
class Job:
    """One submitted notebook on its way to the gradebook."""
    student: str
    assignment: str
    notebook: str
    path: Path
    prepared: nbformat.NotebookNode = None  # rebuilt from the release and sanitized (step 2)
    executed: nbformat.NotebookNode = None  # run and judged (steps 3 and 4)
    verdicts: list = field(default_factory=list)
    failure: Failure = None                 # the notebook could not be graded: scored 0
    notes: list = field(default_factory=list)  # [Failure] that did not stop it
    seconds: float = 0.0
    skipped: bool = False                   # --resume: already graded from the same files

    @property
    def file(self):
        return f"{self.notebook}.ipynb"


@dataclass(frozen=True)
class Problem:
    """A file that is part of no job (not submitted, not part of the assignment)."""
    student: str
    file: str
    failure: Failure


def plan(workspace, assignment, students=None):
    """The jobs of a batch, and the problems found on the way (missing or stray files)."""
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
                problems.append(Problem(student, path.name, Failure(
                    FailureKind.NOT_PART, "not a notebook of this assignment: not graded (expected "
                                          f"{', '.join(n + '.ipynb' for n in notebooks)})")))
        for missing in sorted(set(notebooks) - found):
            problems.append(Problem(student, f"{missing}.ipynb", Failure(FailureKind.NOT_SUBMITTED,
                                                                         "not submitted: scored 0")))
    return jobs, problems


def read_notebook(path):
    """(the submitted notebook, None), or (None, a Failure saying why it cannot be graded)."""
    data = Path(path).read_bytes()
    unreadable = FailureKind.UNREADABLE
    if not data.strip():
        return None, Failure(unreadable, "empty file: scored 0")
    if len(data) > MAX_NOTEBOOK_BYTES:
        return None, Failure(unreadable, f"file larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB: scored 0")
    try:
        json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, Failure(unreadable, f"not a notebook (not valid JSON, truncated? {error}): scored 0")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicated cell ids are renumbered; the rebuild ignores ids
            notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(notebook)
    except Exception as error:
        return None, Failure(unreadable, f"not a valid notebook ({type(error).__name__}: "
                                         f"{str(error).splitlines()[0][:200]}): scored 0")
    return notebook, None
