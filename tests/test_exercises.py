"""The student release is exactly what nbgrader makes from solutions/, and leaks nothing."""

import html as html_lib
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from support.nbgrader_course import Course
from support.notebooks import ROOT, notebooks_under

sys.path.insert(0, str(ROOT / "tools"))
import release_exercises  # noqa: E402

SOURCES = notebooks_under("solutions")
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def secret_lines():
    """Every line of code inside a solution or hidden-test region of solutions/."""
    secrets = set()
    for path in SOURCES:
        for cell in nbformat.read(path, as_version=4).cells:
            for _, body in REGION.findall(cell.source):
                secrets |= {line.strip() for line in body.splitlines()
                            if any(ch.isalnum() for ch in line) and not line.strip().startswith("#")}
    return secrets


def markdown_answers():
    """The model answers of manually graded markdown cells."""
    return [cell.source for path in SOURCES for cell in nbformat.read(path, as_version=4).cells
            if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")]


def test_there_are_assignments_and_secrets():
    assert release_exercises.assignments(ROOT) == ["compile-and-train", "quiz"]
    assert len(secret_lines()) > 30


@pytest.mark.claim("readme.nbgrader", "readme.nbgrader-folders")
def test_committed_release_is_what_nbgrader_generates(tmp_path):
    course = Course(tmp_path)
    release_exercises.release(course.root)
    generated = sorted(p.relative_to(course.root / "exercises") for p in (course.root / "exercises").rglob("*.ipynb"))
    committed = sorted(p.relative_to(ROOT / "exercises") for p in (ROOT / "exercises").rglob("*.ipynb"))
    assert generated == committed, "exercises/ has other notebooks than solutions/ releases"
    for relative in generated:
        assert (course.root / "exercises" / relative).read_text() == (ROOT / "exercises" / relative).read_text(), (
            f"exercises/{relative} differs from its release: run .venv/bin/python tools/release_exercises.py")


@pytest.mark.claim("readme.nothing-leaks")
@pytest.mark.parametrize("path", notebooks_under("exercises"), ids=lambda p: str(p.relative_to(ROOT)))
def test_release_contains_no_solution_hidden_test_or_model_answer(path):
    text = path.read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    sources = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
    leaked = sorted(line for line in secret_lines() if line in sources)
    assert leaked == []
    for answer in markdown_answers():
        assert answer[:60] not in text


@pytest.mark.claim("readme.feedback", "readme.nbgrader-folders", "readme.nothing-leaks")
def test_student_feedback_shows_no_hidden_tests(tmp_path):
    """Grade an unanswered submission of every assignment, then read the feedback a student gets."""
    course = Course(tmp_path)
    for assignment in release_exercises.assignments(course.root):
        course.release(assignment)
        for notebook in (course.root / "exercises" / assignment).glob("*.ipynb"):
            target = course.root / "submitted" / "student" / assignment
            target.mkdir(parents=True, exist_ok=True)
            target.joinpath(notebook.name).write_text(notebook.read_text())
        course.autograde(assignment)
        course.nbgrader("generate_feedback", assignment, "--force")
    feedback = list((course.root / "feedback" / "student").rglob("*.html"))
    assert len(feedback) == len(SOURCES)
    secrets = secret_lines()
    for page in feedback:
        html = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in html
        shown = [s for s in secrets if s in html or s.replace('"', "&quot;") in html]
        assert shown == [], f"{page.name} shows hidden test or solution code"
        assert "Not yet" in html, "the feedback should carry the checks' friendly messages"


def _free_names(source):
    """Names a cell reads without defining them itself (builtins excluded)."""
    import ast
    import builtins

    tree = ast.parse(source)
    assigned = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    return read - assigned - set(dir(builtins))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_test_cells_read_answers_only_through_check_answered(path):
    """course-grader's judge runs each autograded test cell on its own, with only ``check`` defined
    (grader/judge.py): a test that read a student's variable directly could not be judged."""
    for cell in nbformat.read(path, as_version=4).cells:
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and grading.get("grade") and not grading.get("solution"):
            assert _free_names(cell.source) <= {"check"}, (grading["grade_id"], _free_names(cell.source))
            assert "check.answered(" in cell.source, grading["grade_id"]


@pytest.mark.claim("readme.nothing-leaks")
def test_feedback_never_quotes_a_hidden_test_that_failed_with_an_ordinary_error(tmp_path):
    """A student who deleted the quiz's set-up cell makes its hidden tests fail with a NameError under
    stock nbgrader (tests run in the student's kernel, no rebuild). IPython's traceback quotes the
    failing line — the key — and nbgrader's stock ClearHiddenTests keeps tracebacks: the course's
    ClearHiddenTestsAndTracebacks reduces them to their one-line message."""
    course = Course(tmp_path)
    course.release("quiz")
    release = course.released("quiz", "quiz")
    release.cells = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "quiz_setup"]
    folder = course.root / "submitted" / "student" / "quiz"
    folder.mkdir(parents=True)
    nbformat.write(release, folder / "quiz.ipynb")
    course.autograde("quiz")
    graded = nbformat.read(course.root / "autograded/student/quiz/quiz.ipynb", as_version=4)
    tracebacks = "\n".join("\n".join(o.traceback) for c in graded.cells for o in c.get("outputs", [])
                           if o.output_type == "error")
    hidden = [line for line in secret_lines() if len(line) > 12 and ("misconceptions" in line or "key=" in line)]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", tracebacks)
    assert "NameError" in plain and [line for line in hidden if line in plain], "the tracebacks quote the key"
    course.nbgrader("generate_feedback", "quiz", "--force")
    html = html_lib.unescape((course.root / "feedback/student/quiz/quiz.html").read_text())
    assert "NameError" in html, "the student still learns what failed"
    assert [line for line in hidden if line in html] == [] and 'key="B"' not in html


@pytest.mark.claim("readme.two-modes")
def test_a_class_release_made_by_course_grader_contains_no_key(tmp_path):
    """What an instructor hands out (`course-grader release`) holds no solution, hidden test or key."""
    import subprocess

    cli = str(Path(sys.executable).with_name("course-grader"))
    for args in (["init", tmp_path / "ws"], ["release", "--workspace", tmp_path / "ws"]):
        subprocess.run([cli, *map(str, args)], check=True, capture_output=True)
    released = sorted((tmp_path / "ws" / "release").rglob("*.ipynb"))
    assert len(released) == len(SOURCES)
    secrets = secret_lines()
    for path in released:
        text = path.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "misconceptions" not in text
        sources = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
        assert [line for line in secrets if line in sources] == [], path


@pytest.mark.claim("readme.tensorflow-stderr")
def test_tensorflow_log_lines_never_reach_a_score():
    """nbgrader scores a test cell 0 when it writes to stderr. What TensorFlow really writes there (its start-up
    lines and a retracing warning, from a Python without the course's silencing) is dropped by the course's
    IgnorePattern before grading; any other stderr output stays and still costs the points."""
    import subprocess

    from nbgrader.preprocessors import IgnorePattern
    from traitlets.config.loader import PyFileConfigLoader

    script = ("import tensorflow as tf\n@tf.function\ndef f(x):\n    return x\nfor i in range(6):\n    f(float(i))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    logged = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300).stderr
    records = logged.strip().splitlines()  # line by line: a kernel may send any line as an output of its own
    assert any("WARNING:tensorflow" in r for r in records) and any("absl::InitializeLog" in r for r in records)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()
    assert config.IgnorePattern.enabled is True
    outputs = [nbformat.v4.new_output("stream", name="stderr", text=record + "\n") for record in records]
    other = nbformat.v4.new_output("stream", name="stderr", text="UserWarning: a student's own warning\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass", outputs=[*outputs, other])])
    IgnorePattern(config=config).preprocess(notebook, {})
    assert notebook.cells[0].outputs == [other]
