"""Two modes of the exercises' visible checks, from one source.

* **Self-study** — the exercises in this repository (``exercises/<assignment>/``), which
  ``./run lab`` and Binder open, beside ``solutions/``: a visible check also runs the hidden
  tests that read the same answer, straight from ``solutions/<assignment>/*.ipynb``, so a
  self-learner learns right away whether an answer is right, and, for a wrong choice, the
  misconception behind it and the lesson section that shows it. nbgrader's Validate then
  reports wrong answers as failures.
* **Class** — a release an instructor hands out (``course-grader release``): there is no
  ``solutions/`` beside it, so a check judges only the answer's form (and, for code, the
  visible inputs) and says that correctness is graded after the deadline.

The keys live only in ``solutions/`` (the hidden tests); nothing of them is in this package.
"""

import re
from pathlib import Path

_running = False  # inside a self-study run of hidden tests: they must not start another


def solutions_folder(start=None):
    """``solutions/<assignment>`` for a notebook running in ``exercises/<assignment>`` (the kernel's
    working folder) of a course repository, or None (a class release, or anywhere else)."""
    here = Path(start or Path.cwd()).resolve()
    if here.parent.name != "exercises":
        return None
    candidate = here.parent.parent / "solutions" / here.name
    return candidate if candidate.is_dir() and any(candidate.glob("*.ipynb")) else None


def grading_now():
    """A grader is running the checks: course-grader's judge (answers come from a remote source), or
    nbgrader's autograde (it sets NBGRADER_EXECUTION, as course-grader does for the kernel)."""
    import os

    from coursekit.answers import LocalSource, answer_source

    return not isinstance(answer_source(), LocalSource) or os.environ.get("NBGRADER_EXECUTION") == "autograde"


def mode():
    """"grading", "self-study" (running in the repository's exercises/) or "class"."""
    if grading_now() or _running:
        return "grading"
    return "self-study" if solutions_folder() is not None else "class"


_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def hidden_body(grade_id, folder=None):
    """The hidden part of test cell ``grade_id`` in ``solutions/<assignment>``, or None."""
    import nbformat

    folder = folder or solutions_folder()
    for path in sorted(folder.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
                return "".join(_HIDDEN.findall(cell.source)) or None
    return None


def run_hidden_test(grade_id):
    """Self-study: run the hidden part of test cell ``grade_id`` here, as the grader will."""
    global _running
    from coursekit import grading

    body = hidden_body(grade_id)
    if body is None:
        raise LookupError(f"no hidden test '{grade_id}' in {solutions_folder()}")
    _running = True
    try:
        exec(compile(body, f"<hidden test {grade_id}>", "exec"), {"check": grading})
    finally:
        _running = False
