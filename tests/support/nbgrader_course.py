"""A throw-away nbgrader course built from the repository, for tests that grade for real.

Everything goes through nbgrader's own command-line apps (generate_assignment, autograde,
generate_feedback) and its Gradebook API, exactly as an instructor would run them; this module
only arranges folders and reads results.
"""

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from support.notebooks import ROOT

NBGRADER = str(Path(sys.executable).with_name("nbgrader"))
# nbgrader runs `alembic` (its database migrations) from PATH: put the environment's bin first.
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def fill_answers(notebook, answers):
    """A copy of ``notebook`` whose cells with a grade_id in ``answers`` hold that source."""
    filled = copy.deepcopy(notebook)
    for cell in filled.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return filled


# The course's nbgrader_config.py makes every autograde run in course-grader's sandbox and judge
# (grader.preprocessors.SandboxedExecute). "Stock nbgrader" — the tests run in the student's own
# kernel, as nbgrader's Validate and a course without course-grader do — puts nbgrader's own
# autograde preprocessors back.
STOCK_AUTOGRADE = """
from nbgrader.converters import Autograde
c.Autograde.autograde_preprocessors = Autograde.class_traits()["autograde_preprocessors"].default()
"""
STOCK_CONFIG = """
c = get_config()  # noqa: F821
load_subconfig("course_config.py")  # noqa: F821
""" + STOCK_AUTOGRADE


class Course:
    def __init__(self, root, stock=True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if stock:
            shutil.copy(ROOT / "nbgrader_config.py", self.root / "course_config.py")
            (self.root / "nbgrader_config.py").write_text(STOCK_CONFIG)
        else:
            shutil.copy(ROOT / "nbgrader_config.py", self.root)
        shutil.copytree(ROOT / "solutions", self.root / "solutions")
        self.db_url = f"sqlite:///{self.root / 'gradebook.db'}"

    def nbgrader(self, *args, check=True):
        result = subprocess.run([NBGRADER, *args, f"--CourseDirectory.root={self.root}",
                                 f"--CourseDirectory.db_url={self.db_url}"],
                                cwd=self.root, capture_output=True, text=True, env=ENV)
        if check and result.returncode != 0:
            raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def release(self, assignment):
        self.nbgrader("generate_assignment", assignment, "--force")
        return self.root / "exercises" / assignment

    def source(self, assignment, notebook):
        return nbformat.read(self.root / "solutions" / assignment / f"{notebook}.ipynb", as_version=4)

    def released(self, assignment, notebook):
        return nbformat.read(self.root / "exercises" / assignment / f"{notebook}.ipynb", as_version=4)

    def submit(self, student, assignment, notebook, answers):
        """Submit the release notebook with every answer cell holding the solution's code,
        except the cells in ``answers`` (grade_id -> source), which get the given source."""
        solution_code = {cell.metadata.nbgrader["grade_id"]: cell.source
                         for cell in self.source(assignment, notebook).cells
                         if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code"}
        submission = self.released(assignment, notebook)
        seen = set()
        for cell in submission.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in answers:
                cell.source = answers[grade_id]
                seen.add(grade_id)
            elif grade_id in solution_code:
                cell.source = solution_code[grade_id]
        missing = set(answers) - seen
        assert not missing, f"no cells with grade_id {missing} in {assignment}/{notebook}"
        folder = self.root / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(submission, folder / f"{notebook}.ipynb")
        return folder / f"{notebook}.ipynb"

    def autograde(self, assignment, notebook=None):
        args = ["autograde", assignment, "--create", "--force"]
        if notebook:
            args.append(f"--notebook={notebook}")
        return self.nbgrader(*args)

    def autograde_with_course_grader(self, assignment):
        """The same submissions graded by `course-grader` (sandboxes, judge) in a workspace of its
        own; its gradebook is the one ``autograded_scores`` reads from then on."""
        workspace = self.root / "course-grader-workspace"
        grader = str(Path(sys.executable).with_name("course-grader"))
        for args in (["init", str(workspace), "--solutions", str(self.root / "solutions")],
                     ["release", assignment, "--workspace", str(workspace)]):
            subprocess.run([grader, *args], check=True, capture_output=True, env=ENV)
        shutil.copytree(self.root / "submitted", workspace / "submitted", dirs_exist_ok=True)
        result = subprocess.run([grader, "autograde", assignment, "--workspace", str(workspace)],
                                capture_output=True, text=True, env=ENV)
        if result.returncode != 0:
            raise AssertionError(f"course-grader autograde failed:\n{result.stdout}\n{result.stderr}")
        self.db_url = f"sqlite:///{workspace / 'gradebook.db'}"
        return result

    def autograded_scores(self, student, assignment, notebook):
        """grade_id -> auto score of every autograded test cell of one submitted notebook."""
        with Gradebook(self.db_url) as gradebook:
            submitted = gradebook.find_submission_notebook(notebook, assignment, student)
            return {grade.name: grade.auto_score for grade in submitted.grades
                    if grade.cell_type == "code" and not _is_solution_cell(grade)}

    def max_scores(self, assignment, notebook):
        """grade_id -> points of every autograded test cell, from the source notebook."""
        return {cell.metadata.nbgrader["grade_id"]: float(cell.metadata.nbgrader["points"])
                for cell in self.source(assignment, notebook).cells
                if cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata.nbgrader.get("solution")}


def _is_solution_cell(grade):
    return bool(getattr(grade.cell, "solution", False)) if hasattr(grade, "cell") else False
