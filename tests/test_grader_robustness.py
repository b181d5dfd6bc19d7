"""The grader against broken and hostile submissions: every case has a defined outcome, the
batch always finishes, no other grade changes, and nothing under submitted/ is touched.

One batch of the quiz (no TensorFlow, so it is quick) holds one student per case; it is graded
twice through the real CLI, and the gradebook must hold the same scores both times.
"""

import copy
import csv
import hashlib
import io
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from support.nbgrader_course import fill_answers
from support.notebooks import ROOT

# One worker runs this module's tests: they share an expensive module fixture.
pytestmark = pytest.mark.xdist_group("robustness")

CLI = str(Path(sys.executable).with_name("course-grader"))
RIGHT = {"q1_answer": 'q1_answer = "B"', "q2_answer": 'q2_answer = {"A", "C", "E"}'}
WRONG = {"q1_answer": 'q1_answer = "A"', "q2_answer": 'q2_answer = {"B", "D", "F"}'}
FULL = {"q1_points": 2, "q2_points_ab": 1, "q2_points_cd": 1, "q2_points_ef": 1}
ZERO = dict.fromkeys(FULL, 0)
Q1_ZERO = {**FULL, "q1_points": 0}


def grader(*args, workspace=None):
    command = [CLI, *args] + (["--workspace", str(workspace)] if workspace else [])
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"course-grader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def answered(release, answers=RIGHT):
    return fill_answers(release, answers)


def cell_index(notebook, grade_id):
    return next(i for i, c in enumerate(notebook.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def as_bytes(notebook):
    return nbformat.writes(notebook).encode()


# Each case: (student id, function release -> file bytes, expected auto scores, words the reason must contain)
def _deleted_test(release):
    nb = answered(release, {**RIGHT, "q1_answer": 'q1_answer = "A"'})
    del nb.cells[cell_index(nb, "q1_points")]
    return as_bytes(nb)


def _duplicated_test(release):
    nb = answered(release, {**RIGHT, "q1_answer": 'q1_answer = "A"'})
    test = copy.deepcopy(nb.cells[cell_index(nb, "q2_points_ab")])
    test.source = "pass"
    nb.cells.insert(2, test)
    return as_bytes(nb)


def _reordered(release):
    nb = answered(release)
    nb.cells = list(reversed(nb.cells))
    return as_bytes(nb)


def _edited_test(release):
    nb = answered(release, {**RIGHT, "q1_answer": 'q1_answer = "C"'})
    nb.cells[cell_index(nb, "q1_points")].source = "print('all good')"
    nb.cells[cell_index(nb, "q1_points")].metadata["nbgrader"]["points"] = 100
    return as_bytes(nb)


def _changed_metadata(release):
    nb = answered(release)
    cell = nb.cells[cell_index(nb, "q2_answer")]
    cell.metadata["nbgrader"]["grade_id"] = "something_else"
    for c in nb.cells:
        c.id = "same-id"  # duplicated cell ids too
    return json.dumps(nb).encode()  # written raw: nbformat would refuse the duplicated ids


def _with_code(code, answers=RIGHT):
    def make(release):
        nb = answered(release, answers)
        nb.cells.insert(cell_index(nb, "q1_answer") + 1, nbformat.v4.new_code_cell(code))
        return as_bytes(nb)
    return make


def _raw(data):
    return lambda release: data


def _copies_answer_from(path):
    """A cheat that answers question 1 right only if it can read ``path``."""
    return _with_code(f"try:\n    if 'q1_answer' in open({str(path)!r}).read():\n        q1_answer = 'B'\n"
                      "except OSError as error:\n    print('cannot read it:', error)",
                      {**RIGHT, "q1_answer": 'q1_answer = "A"'})


def _answers_if_readable(path):
    """A cheat that answers question 1 right if it can open ``path`` at all."""
    return _with_code(f"try:\n    open({str(path)!r}).read(1)\n    q1_answer = 'B'\n"
                      "except OSError as error:\n    print('cannot read it:', error)",
                      {**RIGHT, "q1_answer": 'q1_answer = "A"'})


# Rewrites the answer from the constant a test compares it with, as soon as the kernel runs a
# test cell: full marks under stock nbgrader, where test cells run in the student's kernel.
_TRANSFORMER = (
    "import re\n"
    "def steal(lines):\n"
    "    for line in lines:\n"
    "        found = re.search(r'== \"([A-E])\"', line)\n"
    "        if found and 'q1_answer' in line:\n"
    "            globals()['q1_answer'] = found.group(1)\n"
    "    return lines\n"
    "get_ipython().input_transformers_post.append(steal)")


def _re_reports_at_the_end(release):
    nb = answered(release, WRONG)
    nb.cells.append(nbformat.v4.new_code_cell('q1_answer = "B"\nq2_answer = {"A", "C", "E"}'))
    return as_bytes(nb)


def _startup_file_writer(release):
    # Tries to plant an IPython startup file that would answer question 1 for whoever runs next.
    code = ("import os\n"
            "for home in [os.path.expanduser('~'), '/root', '/tmp']:\n"
            "    try:\n"
            "        d = os.path.join(home, '.ipython/profile_default/startup')\n"
            "        os.makedirs(d, exist_ok=True)\n"
            "        open(os.path.join(d, '00-cheat.py'), 'w').write('q1_answer = \"B\"\\n')\n"
            "    except OSError:\n"
            "        pass\n"
            "import atexit\natexit.register(lambda: open('/tmp/left-behind', 'w').write('x'))")
    return _with_code(code)(release)


CASES = [
    ("right", lambda r: as_bytes(answered(r)), FULL, None),
    ("unanswered", lambda r: as_bytes(r), ZERO, None),
    ("deleted-test-cell", _deleted_test, Q1_ZERO, None),
    ("duplicated-test-cell", _duplicated_test, Q1_ZERO, None),
    ("reordered-cells", _reordered, FULL, None),
    ("edited-test-cell", _edited_test, Q1_ZERO, None),
    # The answer cell lost its nbgrader id: its code still runs (as the student's own cell), the
    # tests are the release's, and the report says the answer cell was not found.
    ("changed-metadata", _changed_metadata, FULL, "not found"),
    ("infinite-loop", _with_code("while True:\n    pass"), FULL, "ran longer than"),
    ("memory-bomb", _with_code("hog = bytearray(6 * 2**30)"), FULL, None),
    # three children of 1.5 GiB each: over the notebook's 2048 MiB together, so one is killed
    ("children-memory-bomb", _with_code(
        "import os, time\nkids = []\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
        "        hog = bytearray(1536 * 2**20)\n        time.sleep(3)\n        os._exit(0)\n    kids.append(pid)\n"
        "for pid in kids:\n    os.waitpid(pid, 0)"), FULL, "memory cap"),
    ("fork-bomb", _with_code(
        "import os, time\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(3)\n"
        "            os._exit(0)\nexcept OSError as error:\n    print('refused:', error)"), FULL, "process cap"),
    ("input-transformer", _with_code(_TRANSFORMER, {**RIGHT, "q1_answer": 'q1_answer = "A"'}), Q1_ZERO, None),
    ("re-reports-at-the-end", _re_reports_at_the_end, ZERO, None),
    ("reads-etc-shadow", _answers_if_readable("/etc/shadow"), Q1_ZERO, None),
    ("sys-exit", _with_code("import sys\nsys.exit(1)"), FULL, None),
    ("os-exit", _with_code("import os\nos._exit(0)"), ZERO, "kernel died"),
    ("killed-kernel", _with_code("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"), ZERO, "kernel died"),
    ("syntax-error", lambda r: as_bytes(answered(r, {**RIGHT, "q1_answer": 'q1_answer = "B'})), Q1_ZERO, None),
    ("not-json", _raw(b"this is not a notebook"), ZERO, "not valid JSON"),
    ("empty-file", _raw(b""), ZERO, "empty file"),
    ("truncated", lambda r: as_bytes(answered(r))[:700], ZERO, "not valid JSON"),
    ("huge-output", _with_code("print('x' * 50_000_000)"), FULL, None),
    ("reads-solutions", _copies_answer_from(ROOT / "solutions/quiz/quiz.ipynb"), Q1_ZERO, None),
    ("fakes-equality", lambda r: as_bytes(answered(r, {**RIGHT, "q1_answer":
        "class Same(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__\n"
        "q1_answer = Same('A')"})), Q1_ZERO, None),
    ("plants-startup-file", _startup_file_writer, FULL, None),
    # Wrong answers, and the kernel's own tests made to pass: the checks replaced, or every error
    # hidden from IPython's display. Verdicts come from the judge, which never ran this code.
    ("patches-the-checks", _with_code(
        "import coursekit.grading as g\n"
        "g.verdict = lambda ok, message: print('right.')\n"
        "g.choice = lambda value, options, name='answer': 'B'\n"
        "g.choices = lambda value, options, name='answer': frozenset('ACE')", WRONG), ZERO, None),
    ("hides-errors", _with_code(
        "get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)",
        WRONG), ZERO, None),
]
# Runs after the startup-file planter in the same batch: must not be answered by the planted file.
CASES.append(("unanswered-after-planter", lambda r: as_bytes(r), ZERO, None))
# Leaves a process behind on purpose; the marker argument makes it findable afterwards.
LEFTOVER_MARKER = "317.0731"
CASES.append(("spawns-background-process", _with_code(
    f"import subprocess\nsubprocess.Popen(['sleep', '{LEFTOVER_MARKER}'], start_new_session=True)"), FULL, None))


@pytest.fixture(scope="session")
def listener():
    """A TCP server on the host's loopback; a submission that reaches it leaves a mark."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    reached = []

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            reached.append(connection.recv(100))
            connection.close()

    stop = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], reached
    stop.set()
    thread.join()
    server.close()


def tree_digest(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def graded(tmp_path_factory, listener):
    port, _ = listener
    workspace = tmp_path_factory.mktemp("robust") / "ws"
    planted = ROOT.parent / f"planted-{secrets.token_hex(6)}.txt"  # beside the repository: another course, say
    planted.write_text("another course's files")
    cases = CASES + [
        ("reads-other-submission", _copies_answer_from(workspace / "submitted/right/quiz/quiz.ipynb"), Q1_ZERO, None),
        ("reads-gradebook", _copies_answer_from(workspace / "gradebook.db"), Q1_ZERO, None),
        ("reads-planted-file", _answers_if_readable(planted), Q1_ZERO, None),
        ("opens-network", _with_code(
        f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'leak')\n"
        "except OSError as error:\n    print('no network:', error)"), FULL, None)]
    grader("init", str(workspace))
    grader("release", "quiz", workspace=workspace)
    release = nbformat.read(workspace / "release/quiz/quiz.ipynb", as_version=4)
    for student, make, _, _ in cases:
        folder = workspace / "submitted" / student / "quiz"
        folder.mkdir(parents=True)
        (folder / "quiz.ipynb").write_bytes(make(release))
    (workspace / "submitted/wrong-name/quiz").mkdir(parents=True)
    (workspace / "submitted/wrong-name/quiz/Quiz (1).ipynb").write_bytes(as_bytes(answered(release)))
    before = tree_digest(workspace / "submitted")
    limits = ["--cell-timeout", "8", "--timeout", "60", "--memory", "2048", "--processes", "128"]
    try:
        first_output = grader("autograde", "quiz", *limits, workspace=workspace)
        first = scores(workspace)
        grader("autograde", "quiz", *limits, workspace=workspace)
        second = scores(workspace)
    finally:
        planted.unlink()
    problems = (workspace / "reports/quiz-autograde-problems.csv").read_text()
    return dict(cases=cases, first=first, second=second, output=first_output, problems=problems,
                unchanged=before == tree_digest(workspace / "submitted"), workspace=workspace)


def scores(workspace):
    db = f"sqlite:///{workspace / 'gradebook.db'}"
    with Gradebook(db) as gradebook:
        result = {}
        for submission in gradebook.find_assignment("quiz").submissions:
            notebook = submission.notebooks[0]
            result[submission.student.id] = {g.name: g.auto_score for g in notebook.grades if g.name in FULL}
        return result


@pytest.mark.claim("readme.judged-outside", "readme.no-eq-cheat", "readme.rebuilt", "readme.sandbox")
def test_every_case_gets_its_defined_score(graded):
    wrong = []
    for student, _, expected, _ in graded["cases"]:
        got = graded["first"].get(student)
        if got != {k: float(v) for k, v in expected.items()}:
            wrong.append(f"{student}: got {got}, expected {expected}")
    assert wrong == [], "\n".join(wrong)


def problem_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.claim("readme.caps", "readme.failures")
def test_failures_are_explained(graded):
    rows = problem_rows(graded["problems"])
    for student, _, _, reason in graded["cases"]:
        if reason:
            mine = [row["reason"] for row in rows if row["student"] == student]
            assert any(reason in row for row in mine), f"{student}: no reason containing {reason!r} in {mine}"
    assert any(row["student"] == "wrong-name" and row["file"] == "Quiz (1).ipynb" for row in rows)
    assert graded["first"]["wrong-name"] == {k: 0.0 for k in FULL}


@pytest.mark.claim("readme.caps")
def test_a_single_allocation_over_the_process_cap_raises_memory_error(graded):
    """The per-process address-space cap (RLIMIT_AS) turns a 6 GiB allocation into a MemoryError in
    the student's cell; the kernel lives on and the answers are graded."""
    executed = nbformat.read(graded["workspace"] / "autograded/memory-bomb/quiz/quiz.ipynb", as_version=4)
    enames = [o.ename for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert "MemoryError" in enames
    from grader.limits import Limits

    assert Limits().address_space_mib == 4096, "README: each process has at most 4 GiB of address space"


@pytest.mark.claim("readme.caps")
def test_the_first_line_of_output_names_the_cgroups(graded):
    """'The first line of output says which cgroups are used' — and the caps they hold."""
    first = " ".join(graded["output"].split("; time limits")[0].split())  # the console wraps at 80 columns
    assert first.startswith("grading on this machine with"), first
    assert re.search(r"; cgroup v[12] \([a-z, ]*memory[a-z, ]*pids[a-z, ]*\): 2048 MiB and 128 processes per notebook$",
                     first), first


@pytest.mark.claim("readme.same-path")
def test_formgrader_autograde_button_judges_like_the_cli(graded):
    """Formgrader's Autograde button calls nbgrader's API, whose Autograde converter runs the workspace's
    preprocessors: the same sandbox and judge (grader.preprocessors.SandboxedExecute)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    workspace = graded["workspace"]
    config = PyFileConfigLoader("nbgrader_config.py", path=str(workspace)).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    for student in ("patches-the-checks", "hides-errors", "input-transformer", "right"):
        result = api.autograde("quiz", student)
        assert result["success"], result.get("error")
    after = scores(workspace)
    for student in ("patches-the-checks", "hides-errors", "input-transformer", "right"):
        assert after[student] == graded["first"][student], student


@pytest.mark.claim("readme.failures")
def test_a_one_student_regrade_keeps_the_batch_s_problem_rows(graded):
    workspace = graded["workspace"]
    before = problem_rows(graded["problems"])
    grader("autograde", "quiz", "--student", "infinite-loop", "--cell-timeout", "8", "--timeout", "60",
           "--memory", "2048", workspace=workspace)
    after = problem_rows((workspace / "reports/quiz-autograde-problems.csv").read_text())
    others = lambda rows: [r for r in rows if r["student"] != "infinite-loop"]  # noqa: E731
    assert others(after) == others(before) and others(before)
    assert [r for r in after if r["student"] == "infinite-loop"], "the regraded student's own rows are there again"


@pytest.mark.claim("readme.failures")
def test_grading_twice_gives_the_same_scores(graded):
    assert graded["first"] == graded["second"]


def test_submitted_folder_is_never_modified(graded):
    assert graded["unchanged"]


@pytest.mark.claim("readme.sandbox")
def test_no_network_from_a_submission(graded, listener):
    _, reached = listener
    assert reached == []


@pytest.mark.claim("readme.caps")
def test_nothing_outlives_a_submission(graded):
    leftovers = subprocess.run(["pgrep", "-af", f"sleep {LEFTOVER_MARKER}"], capture_output=True, text=True).stdout
    assert [line for line in leftovers.splitlines() if "pgrep" not in line] == []


@pytest.mark.claim("readme.caps")
def test_without_cgroups_grading_is_refused_with_the_reason_unless_asked(graded):
    """No per-notebook caps (a machine without usable cgroups, made here by pointing the grader at an
    empty cgroup root): autograde refuses before the batch and says why; --no-cgroups grades anyway."""
    workspace = graded["workspace"]
    env = {**os.environ, "COURSE_GRADER_CGROUP_ROOT": str(workspace / "no-cgroups-here")}
    argv = [CLI, "autograde", "quiz", "--student", "right", "--workspace", str(workspace)]
    refused = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 2 and "--no-cgroups" in refused.stderr and "caps" in refused.stderr, refused.stderr
    allowed = subprocess.run(argv + ["--no-cgroups"], capture_output=True, text=True, env=env, timeout=600)
    assert allowed.returncode == 0, allowed.stderr
    assert "no per-notebook caps (--no-cgroups)" in allowed.stdout
    assert scores(workspace)["right"] == {k: float(v) for k, v in FULL.items()}
