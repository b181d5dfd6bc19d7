"""An instructor grades a written answer in Formgrader, started by `course-grader formgrader` on a workspace.

The course environment turns nbgrader's instructor panels and the formgrader server extension off for students.
The test puts that configuration in a Jupyter config folder on ``JUPYTER_CONFIG_PATH``, which Jupyter reads before
the user's and the environment's folders: the worst place it could be. The panels appear only if
``course-grader formgrader``'s own config is read before it and re-enables them. Then it clicks through Nbgrader → Formgrader →
Manual Grading to one submission, types the points of both written answers, and checks that the export turns
from provisional to final.
"""

import csv
import io
import json
import subprocess
import time

import nbformat
import pytest
from playwright.sync_api import expect

from browser.jupyterlab import BrowserPage, menu, open_lab
from browser.lab_server import JupyterServerProcess, free_port
from support.grading_workspace import CLI, ENV, grader, new_workspace, release_notebook
from support.nbgrader_course import fill_answers

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
PANELS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:assignment-list",
          "@jupyter/nbgrader:course-list"]


class FormgraderServer(JupyterServerProcess):
    def __init__(self, workspace, scratch):
        course_env = scratch / "course-environment-config"
        (course_env / "labconfig").mkdir(parents=True)
        (course_env / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {panel: True for panel in PANELS}}))
        (course_env / "jupyter_server_config.json").write_text(json.dumps(
            {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": False}}}))
        self.port, self.token = free_port(), "formgrader-test"
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**ENV, "JUPYTER_CONFIG_PATH": str(course_env), "JUPYTER_DATA_DIR": str(scratch / "data"),
               "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "lab"),
               "PYTHONNOUSERSITE": "1"}
        env.pop("JUPYTER_CONFIG_DIR", None)
        self._start([CLI, "formgrader", "--workspace", str(workspace), "--port", str(self.port),
                     f"--IdentityProvider.token={self.token}", "--ServerApp.port_retries=0"],
                    env, scratch / "formgrader.log", timeout=120)

    def lab_url(self, path=""):
        return f"{self.url}/lab?token={self.token}"


def quiz_status(workspace):
    grader("export", workspace=workspace)
    rows = list(csv.DictReader(io.StringIO((workspace / "reports" / "grades.csv").read_text())))
    (row,) = [r for r in rows if r["student_id"] == "jdoe" and r["assignment"] == "quiz"]
    return row["status"], float(row["score"]), int(row["answers_to_grade_by_hand"])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("formgrader")
    workspace = new_workspace(root / "ws")
    (root / "roster.csv").write_text("id,first_name,last_name,email\njdoe,Jane,Doe,jane@uni.example\n")
    grader("roster", root / "roster.csv", workspace=workspace)
    answers = {"q1_answer": 'q1_answer = "B"', "q2_answer": 'q2_answer = {"A", "C", "E"}',
               "q1_explain": "The sigmoid maps the output into (0, 1): a probability for binary cross-entropy.",
               "q2_explain": "The loss is minimised through its gradients; metrics are only reported."}
    (root / "export" / "jdoe" / "quiz").mkdir(parents=True)
    nbformat.write(fill_answers(release_notebook(workspace), answers), root / "export" / "jdoe" / "quiz" / "quiz.ipynb")
    grader("collect", root / "export", "--assignment", "quiz", workspace=workspace)
    grader("autograde", "quiz", "--cell-timeout", "20", "--timeout", "60", workspace=workspace)
    server = FormgraderServer(workspace, root)
    try:
        yield workspace, server
    finally:
        server.stop()


@pytest.mark.claim("readme.hand-grades", "suite.lms-path")
@pytest.mark.timeout(300)
def test_a_written_answer_graded_in_formgrader_makes_the_export_final(graded, chromium):
    workspace, server = graded
    assert quiz_status(workspace) == ("provisional", 5.0, 2)
    session = BrowserPage(chromium, "formgrader")
    try:
        page = session.page
        open_lab(session, server)
        menu(page, "Nbgrader", "Formgrader")
        formgrader = page.frame_locator('iframe[src$="/formgrader"]')
        formgrader.locator("a", has_text="Manual Grading").first.click()
        formgrader.locator("a", has_text="quiz").first.click()                  # the assignment
        formgrader.locator("#main-table a", has_text="quiz").first.click()      # its notebook
        formgrader.locator("a", has_text="Submission #1").first.click()
        for grade_id, points in (("q1_explain", "2"), ("q2_explain", "1.5")):
            score = formgrader.locator(f"input.score#{grade_id}")
            expect(score).to_have_class("score tabbable needs_manual_grade", timeout=30_000)
            score.fill(points)
            score.press("Tab")  # Formgrader saves on change
            expect(score).not_to_have_class("score tabbable needs_manual_grade", timeout=15_000)
        deadline = time.monotonic() + 20
        while quiz_status(workspace)[0] != "final" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert quiz_status(workspace) == ("final", 8.5, 0)
        # nbgrader's grading page loads MathJax from a CDN, which this machine cannot reach (no internet); its
        # written answers still show, as plain text.
        errors = session.errors(harmless=[r"MathJax is not defined"])
        assert [e for e in errors if not ("ERR_NAME_NOT_RESOLVED" in e and "/mathjax/" in e)] == []
    finally:
        session.close()
