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

# One worker runs this module's tests: they share an expensive module fixture.
pytestmark = pytest.mark.xdist_group("grader-cli")

CLI = str(Path(sys.executable).with_name("course-grader"))
RIGHT = {"q1_answer": 'q1_answer = "B"', "q2_answer": 'q2_answer = {"A", "C", "E"}'}


@pytest.fixture(scope="session")
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


@pytest.mark.claim("readme.progress")
def test_the_progress_line_names_what_runs_and_for_how_long(workspace):
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}  # rich draws its live display as on a terminal
    result = subprocess.run([CLI, "autograde", "quiz", "--workers", "1", "--workspace", str(workspace)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "running: b-slow/quiz" in result.stdout
    seconds = [int(part.split()[0]) for part in result.stdout.split("running: b-slow/quiz ")[1:]]
    assert max(seconds) >= 4, "the running notebook's time did not grow"


@pytest.mark.claim("readme.progress")
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


@pytest.mark.claim("readme.course-grader")
def test_every_command_has_help():
    commands = ["init", "roster", "release", "collect", "autograde", "formgrader", "feedback", "export", "report"]
    main = subprocess.run([CLI, "--help"], capture_output=True, text=True, timeout=60)
    assert main.returncode == 0 and all(command in main.stdout for command in commands)
    for command in commands:
        result = subprocess.run([CLI, command, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "Usage:" in result.stdout and "--help" in result.stdout, command


@pytest.mark.claim("readme.bubblewrap")
def test_without_bubblewrap_autograde_says_how_to_install_it(workspace, tmp_path):
    """A PATH without bwrap (a machine where it is not installed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {**os.environ, "PATH": str(bin_dir)}
    result = subprocess.run([CLI, "autograde", "quiz", "--workspace", str(workspace)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2
    assert "bubblewrap" in result.stderr and "apt-get install bubblewrap" in result.stderr, result.stderr


@pytest.mark.claim("readme.resume")
def test_resume_grades_again_after_a_changed_test_or_limit(workspace):
    """--resume skips a student only if the submitted files, the tests and the limits are what they were."""
    grade = lambda *extra: subprocess.run(  # noqa: E731
        [CLI, "autograde", "quiz", "--student", "a-fast", "--resume", "--workspace", str(workspace), *extra],
        capture_output=True, text=True, timeout=600)
    first = grade()
    assert first.returncode == 0, first.stderr
    assert "skipped 1 already graded" in grade().stdout
    changed_limit = grade("--cell-timeout", "30")
    assert "graded 1 submissions" in changed_limit.stdout, "another cell limit must regrade"
    from grader.workspace import Workspace

    with Workspace(workspace).gradebook() as gradebook:  # an instructor fixes a test: the gradebook's source changes
        cell = gradebook.find_source_cell("q1_points", "quiz", "quiz")
        cell.source = cell.source + "\n# fixed"
        gradebook.db.commit()
    changed_test = grade("--cell-timeout", "30")
    assert "graded 1 submissions" in changed_test.stdout, "a changed test must regrade"
