"""The exercises' visible checks, as students meet them, for every answer of the corpus, in both modes.

* **class** (a release an instructor hands out: no ``solutions/`` beside it): a visible check passes
  or fails exactly as its own grade cell is scored, says that correctness is graded after the
  deadline, and none of its messages gives a key away;
* **self-study** (the repository's ``exercises/``, beside ``solutions/``): a visible check fails
  exactly when a test of the same answer — visible or hidden — fails, and says why.

The checks run here in-process on the notebook's code, as a kernel would run it (the same
functions, through ``coursekit.answers``' local source); ``test_selfstudy_in_a_real_kernel`` and
the grading tests run them in real kernels.
"""

import contextlib
import io
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.answers import LocalSource
from corpus.answer_variants import VARIANTS
from support.notebooks import ROOT

NOTEBOOKS = sorted({v.notebook for v in VARIANTS})
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)
MARKERS = re.compile(r"[ \t]*### (BEGIN|END) SOLUTION\n")
# What a hint must not say unless the student wrote it: the right answers' words. (The quiz's letters are
# checked apart: no quoted option letter the student did not choose.)
KEY_TERMS = {"compile-and-train/compile-for-the-task": [
    "sigmoid", "softmax", "binary_crossentropy", "categorical_crossentropy", "mean_squared_error", "from_logits=True",
    "BinaryAccuracy", "threshold=0"],
    "compile-and-train/by-hand": ["np.clip(y_pred", "np.sqrt(v_hat) + epsilon", "1 - beta_2 ** t"],
    "compile-and-train/tune-adam": ["learning_rate=0.03"]}
FORM_ONLY = {"tune_form"}  # checks only the settings' form; the next visible cell checks the target


def release(notebook):
    return nbformat.read(ROOT / "exercises" / f"{notebook}.ipynb", as_version=4)


def solution_code(notebook):
    source = nbformat.read(ROOT / "solutions" / f"{notebook}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: MARKERS.sub("", c.source) for c in source.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def reads(cell):
    return set(re.findall(r'answered\("(\w+)"\)', cell.source))


def run_visible(notebook, answers, folder):
    """Run the release's code cells with ``answers`` in ``folder`` (the kernel's working folder);
    {grade_id of each visible graded cell: (passed, what it printed and raised)}."""
    from coursekit import answers as protocol

    namespace = {"__name__": "__main__"}
    results = {}
    code = {**solution_code(notebook), **answers}
    previous = os.getcwd()
    os.chdir(folder)
    try:
        with protocol.use_source(_Namespace(namespace)):
            for cell in release(notebook).cells:
                if cell.cell_type != "code":
                    continue
                meta = cell.metadata.get("nbgrader", {})
                printed = io.StringIO()
                try:
                    with contextlib.redirect_stdout(printed):
                        exec(code.get(meta.get("grade_id"), cell.source), namespace)
                    error = None
                except Exception as failure:  # noqa: BLE001 - a student's cell may raise anything
                    error = failure
                    sys.last_value = failure  # as IPython records it
                if meta.get("grade") and not meta.get("solution"):  # a test cell (a hidden one shows one line)
                    results[meta["grade_id"]] = (error is None, printed.getvalue() + (str(error) if error else ""))
    finally:
        os.chdir(previous)
    return results


class _Namespace(LocalSource):
    """The local answer source over a plain dict (the kernel's user namespace here)."""

    def __init__(self, namespace):
        self.namespace = namespace

    def answer(self, name):
        from coursekit.answers import LocalAnswer

        return LocalAnswer(name, namespace=self.namespace)


def graded_cells(notebook):
    """{grade_id: (points, names it reads)} of every autograded test cell (hidden ones included)."""
    source = nbformat.read(ROOT / "solutions" / f"{notebook}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: (float(c.metadata["nbgrader"]["points"]), reads(c))
            for c in source.cells if c.metadata.get("nbgrader", {}).get("grade") and
            not c.metadata["nbgrader"].get("solution") and c.cell_type == "code"}


@pytest.mark.claim("readme.check-messages", "readme.corpus", "readme.two-modes")
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_visible_checks_in_class_mode_score_as_graded_and_give_no_key_away(notebook, tmp_path):
    cells = graded_cells(notebook)
    hidden = {c.metadata["nbgrader"]["grade_id"] for c in release(notebook).cells if "hidden_test(" in c.source}
    wrong = []
    for variant in (v for v in VARIANTS if v.notebook == notebook):
        results = run_visible(notebook, variant.cells, tmp_path)
        for grade_id, (ok, text) in results.items():
            expected = variant.expect.get(grade_id, cells[grade_id][0])
            if variant.kind == "cheat" and grade_id in variant.cells:
                continue  # a test cell the cheat replaced: only the grader's rebuild can judge it
            if grade_id in hidden:
                expected = 1  # its visible line only says it is graded later
            if ok != (expected > 0):
                wrong.append(f"{variant.label}: visible {grade_id} {'passed' if ok else 'failed'}, scored {expected}")
            if ok and grade_id not in FORM_ONLY and "graded after the deadline" not in text:
                wrong.append(f"{variant.label}: visible {grade_id} does not say what is graded later")
            own = "\n".join(variant.cells.values())
            leaked = [term for term in KEY_TERMS.get(notebook, []) if term in text and term not in own]
            quoted = set(re.findall(r'"([A-F])"', text)) - set(re.findall(r"[A-Fa-f]", own.upper()))
            if leaked or quoted:
                wrong.append(f"{variant.label}: {grade_id}'s message names {leaked + sorted(quoted)}: {text!r}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.claim("quiz.self-study", "readme.corpus", "readme.two-modes")
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_every_test_cell_in_self_study_passes_exactly_when_it_will_score(notebook):
    """Self-study: each test cell — visible, or the one visible line of a hidden one, which runs the
    hidden part from solutions/ — passes exactly when the grader gives it its points."""
    cells = graded_cells(notebook)
    folder = ROOT / "exercises" / notebook.split("/")[0]
    wrong = []
    for variant in (v for v in VARIANTS if v.notebook == notebook and v.kind != "cheat"):
        for grade_id, (ok, text) in run_visible(notebook, variant.cells, folder).items():
            full = variant.expect.get(grade_id, cells[grade_id][0]) == cells[grade_id][0]
            if ok != full:
                wrong.append(f"{variant.label}: self-study {grade_id} {'passed' if ok else 'failed'}, "
                             f"but it scores {'full' if full else 'less'}: {text[:300]!r}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.claim("quiz.self-study")
def test_the_quiz_tells_a_self_learner_the_misconception_behind_a_wrong_choice():
    folder = ROOT / "exercises" / "quiz"
    wrong = run_visible("quiz/quiz", {"q1_answer": 'q1_answer = "A"'}, folder)["q1_points"]
    right = run_visible("quiz/quiz", {"q1_answer": 'q1_answer = "B"'}, folder)["q1_points"]
    assert wrong[0] is False
    assert "does not make training faster" in wrong[1] and "lesson 3" in wrong[1], wrong[1]
    assert right[0] is True and "✓ q1_answer: right." in right[1], right[1]


@pytest.mark.claim("readme.two-modes")
def test_no_key_is_installed_with_the_course_package():
    """The keys live only in solutions/ (hidden tests): the coursekit package holds none of them."""
    secrets = set()
    for path in (ROOT / "solutions").rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for kind, body in REGION.findall(cell.source):
                if kind == "HIDDEN TESTS":
                    secrets |= {line.strip() for line in body.splitlines() if len(line.strip()) > 12}
    import coursekit

    package = Path(coursekit.__file__).parent
    text = "\n".join(p.read_text() for p in package.rglob("*.py"))
    assert secrets and [s for s in secrets if s in text] == []


@pytest.mark.claim("readme.validate-self-study")
@pytest.mark.notebook
def test_validate_in_a_real_kernel_fails_a_wrong_answer_in_self_study_only(tmp_path):
    """nbgrader's Validate (a real kernel): in the repository's layout (exercises/ beside solutions/) a
    wrong quiz answer fails validation, with its misconception; the same notebook handed out alone
    (a class release) validates, since correctness is graded later."""
    import shutil
    import subprocess

    from support.nbgrader_course import fill_answers

    notebook = fill_answers(release("quiz/quiz"), {"q1_answer": 'q1_answer = "D"',
                                                   "q2_answer": 'q2_answer = {"A", "C", "E"}',
                                                   "q1_explain": "It gives a probability.",
                                                   "q2_explain": "The loss is minimised."})
    repo = tmp_path / "repo"
    (repo / "exercises/quiz").mkdir(parents=True)
    shutil.copytree(ROOT / "solutions/quiz", repo / "solutions/quiz")
    nbformat.write(notebook, repo / "exercises/quiz/quiz.ipynb")
    (tmp_path / "class").mkdir()
    nbformat.write(notebook, tmp_path / "class/quiz.ipynb")
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    self_study = subprocess.run([nbgrader, "validate", str(repo / "exercises/quiz/quiz.ipynb")],
                                capture_output=True, text=True, timeout=300)
    class_copy = subprocess.run([nbgrader, "validate", str(tmp_path / "class/quiz.ipynb")],
                                capture_output=True, text=True, timeout=300)
    assert "VALIDATION FAILED ON 1 CELL" in self_study.stdout and "choosing the threshold" in self_study.stdout, \
        self_study.stdout[-2000:]
    assert "Success!" in class_copy.stdout, class_copy.stdout[-2000:]
