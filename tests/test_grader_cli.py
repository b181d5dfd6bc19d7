"""What an instructor sees while a batch runs: which notebooks run and for how long, and what Ctrl-C does."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from support.nbgrader_course import fill_answers

CLI = str(Path(sys.executable).with_name("course-grader"))
RIGHT = {"q1_answer": 'q1_answer = "B"', "q2_answer": 'q2_answer = {"A", "C", "E"}'}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("cli") / "ws"
    for args in (["init", workspace], ["release", "quiz", "--workspace", workspace]):
        subprocess.run([CLI, *map(str, args)], check=True, capture_output=True)
    release = nbformat.read(workspace / "release/quiz/quiz.ipynb", as_version=4)
    for student in ("a-fast", "b-slow", "c-slow", "d-slow", "e-slow"):
        notebook = fill_answers(release, RIGHT)
        if student.endswith("slow"):
            notebook.cells.insert(1, nbformat.v4.new_code_cell("import time\ntime.sleep(6)"))
        (workspace / "submitted" / student / "quiz").mkdir(parents=True)
        nbformat.write(notebook, workspace / "submitted" / student / "quiz" / "quiz.ipynb")
    return workspace


def test_the_progress_line_names_what_runs_and_for_how_long(workspace):
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}  # rich draws its live display as on a terminal
    result = subprocess.run([CLI, "autograde", "quiz", "--workers", "1", "--workspace", str(workspace)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "running: b-slow/quiz" in result.stdout
    seconds = [int(part.split()[0]) for part in result.stdout.split("running: b-slow/quiz ")[1:]]
    assert max(seconds) >= 4, "the running notebook's time did not grow"


def test_ctrl_c_keeps_what_was_graded_and_says_how_to_resume(workspace):
    state = workspace / "autograde-state" / "quiz"
    for old in state.glob("*.json"):
        old.unlink()  # a fresh batch: nothing recorded as graded
    process = subprocess.Popen([CLI, "autograde", "quiz", "--workers", "1", "--workspace", str(workspace)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not list(state.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.1)  # wait until the first student is graded and recorded
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (out, err)
    graded = len(list(state.glob("*.json")))
    assert 1 <= graded < 5
    assert f"interrupted: {graded} students were graded" in err and "--resume" in err, err
    resumed = subprocess.run([CLI, "autograde", "quiz", "--resume", "--workspace", str(workspace)],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipped {graded} already graded" in resumed.stdout and f"graded {5 - graded} submissions" in resumed.stdout
