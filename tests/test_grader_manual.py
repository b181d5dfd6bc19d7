"""Hand grades survive a regrade: an instructor grades the quiz's written answers (as Formgrader does,
through nbgrader's Gradebook), then the batch is autograded again. An answer that did not change keeps
its hand grade and its "graded" state; a changed (resubmitted) answer goes back to the queue."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.workspace import Workspace
from support.nbgrader_course import fill_answers

# One worker runs this module's tests: they share an expensive module fixture.
pytestmark = pytest.mark.xdist_group("manual")

CLI = str(Path(sys.executable).with_name("course-grader"))
ANSWERS = {"q1_answer": 'q1_answer = "B"', "q2_answer": 'q2_answer = {"A", "C", "E"}',
           "q1_explain": "The sigmoid maps the output into (0, 1), a probability.",
           "q2_explain": "The loss is minimised; metrics are only reported."}


def grader(*args):
    result = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def written_grades(workspace, student):
    with Workspace(workspace).gradebook() as gradebook:
        notebook = gradebook.find_submission_notebook("quiz", "quiz", student)
        return {g.name: (g.manual_score, g.needs_manual_grade) for g in notebook.grades
                if g.name in ("q1_explain", "q2_explain")}


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("manual") / "ws"
    grader("init", workspace)
    grader("release", "quiz", "--workspace", workspace)
    release = nbformat.read(workspace / "release/quiz/quiz.ipynb", as_version=4)
    for student in ("ada", "ben"):
        folder = workspace / "submitted" / student / "quiz"
        folder.mkdir(parents=True)
        nbformat.write(fill_answers(release, ANSWERS), folder / "quiz.ipynb")
    grader("autograde", "quiz", "--workspace", workspace)
    with Workspace(workspace).gradebook() as gradebook:  # what Formgrader does when a grader saves a score
        for student in ("ada", "ben"):
            for grade in gradebook.find_submission_notebook("quiz", "quiz", student).grades:
                if grade.name in ("q1_explain", "q2_explain"):
                    grade.manual_score = 1.5
                    grade.needs_manual_grade = False
        gradebook.db.commit()
    # ben resubmits a changed explanation; ada changes nothing
    changed = fill_answers(release, {**ANSWERS, "q1_explain": "Because of the loss."})
    nbformat.write(changed, workspace / "submitted/ben/quiz/quiz.ipynb")
    return workspace


@pytest.mark.claim("readme.hand-grades")
def test_written_answers_need_a_human_after_autograding(tmp_path):
    workspace = tmp_path / "ws"
    grader("init", workspace)
    grader("release", "quiz", "--workspace", workspace)
    release = nbformat.read(workspace / "release/quiz/quiz.ipynb", as_version=4)
    (workspace / "submitted/cy/quiz").mkdir(parents=True)
    nbformat.write(fill_answers(release, ANSWERS), workspace / "submitted/cy/quiz/quiz.ipynb")
    grader("autograde", "quiz", "--workspace", workspace)
    assert written_grades(workspace, "cy") == {"q1_explain": (None, True), "q2_explain": (None, True)}


@pytest.mark.claim("readme.hand-grades")
def test_a_regrade_keeps_hand_grades_of_unchanged_answers(workspace):
    grader("autograde", "quiz", "--workspace", workspace)
    assert written_grades(workspace, "ada") == {"q1_explain": (1.5, False), "q2_explain": (1.5, False)}
    grades = written_grades(workspace, "ben")
    assert grades["q1_explain"] == (1.5, True), "a changed answer goes back to the grading queue"
    assert grades["q2_explain"] == (1.5, False)


@pytest.mark.claim("readme.same-path")
def test_formgrader_s_autograde_keeps_them_too(workspace):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(workspace)).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    assert api.autograde("quiz", "ada")["success"]
    assert written_grades(workspace, "ada") == {"q1_explain": (1.5, False), "q2_explain": (1.5, False)}
