"""The autograder on a real Dask cluster, into a real PostgreSQL gradebook, against local grading.

One module-scoped run (tests/support/dask_cluster.py, tests/support/postgres_server.py): a
``dask scheduler`` and two ``dask worker`` processes (Dask's own command line, one thread each) on
127.0.0.1, and a PostgreSQL server. One batch of quiz submissions (no TensorFlow: quick) goes
into two workspaces whose gradebooks are two databases of that server:

* **Dask** (``course-grader autograde --scheduler``): while a slow submission (a cell sleeps 8 s)
  runs, the test SIGKILLs the worker process running it; the nanny starts a new one, the
  scheduler gives the submission to a worker again, and it is graded once, with full marks. A
  "poison" submission kills every worker that grades it (through the test seam of
  grader.distributed: the workers' environment names a marker, and a notebook containing it
  makes the worker process exit), so after ``allowed-failures`` + 1 dead workers (2 + 1 here) it
  is scored 0 with the reason, not retried forever. A second run with ``--resume`` grades nothing
  again; a resubmission is the only thing a third ``--resume`` run grades.
* **local** (``course-grader autograde``): interrupted by SIGKILL after a few students are scored,
  then restarted with ``--resume``: it keeps what was graded and grades only the rest.

Every score of the Dask run must equal the local one (the poison submission aside, which only
kills Dask workers) and the points the answer deserves.
"""

import copy
import csv
import io
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cloudpickle
import nbformat
import pytest

from grader.workspace import Workspace
from support.dask_cluster import DaskCluster
from support.postgres_server import alive

pytestmark = pytest.mark.xdist_group("dask")
# Functions of this module that the tests run on the workers travel by value (workers cannot import tests/).
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLI = str(Path(sys.executable).with_name("course-grader"))
MARKER = f"kill-the-worker-{secrets.token_hex(8)}"
ALLOWED_FAILURES = 2
RIGHT = {"q1_answer": 'q1_answer = "B"', "q2_answer": 'q2_answer = {"A", "C", "E"}'}
FULL = {"q1_points": 2, "q2_points_ab": 1, "q2_points_cd": 1, "q2_points_ef": 1}
ZERO = dict.fromkeys(FULL, 0)
LIMITS = ["--cell-timeout", "20", "--timeout", "60", "--memory", "2048"]
IDLE = 6  # seconds after which a worker gives its idle sandbox back (COURSE_GRADER_IDLE_SECONDS)


def answered(release, answers=RIGHT, extra=None):
    notebook = copy.deepcopy(release)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    if extra:
        index = next(i for i, c in enumerate(notebook.cells)
                     if c.metadata.get("nbgrader", {}).get("grade_id") == "q1_answer")
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(extra))
    return nbformat.writes(notebook).encode()


# student -> (release -> file bytes, expected points on Dask)
SUBMISSIONS = {
    "right": (lambda r: answered(r), FULL),
    "wrong": (lambda r: answered(r, {"q1_answer": 'q1_answer = "A"', "q2_answer": 'q2_answer = {"A", "B", "C", "E"}'}),
              {"q1_points": 0, "q2_points_ab": 0, "q2_points_cd": 1, "q2_points_ef": 1}),
    "syntax-error": (lambda r: answered(r, {**RIGHT, "q1_answer": 'q1_answer = "B'}), {**FULL, "q1_points": 0}),
    "kernel-dies": (lambda r: answered(r, extra="import os\nos._exit(0)"), ZERO),
    "empty-file": (lambda r: b"", ZERO),
    "slow": (lambda r: answered(r, extra="import time\ntime.sleep(8)"), FULL),
    "poison": (lambda r: answered(r, extra=f"# {MARKER}"), ZERO),
}
WRONG_THEN_RIGHT = "wrong"  # resubmitted with the right answers before the third Dask run


def grader(*args, check=True):
    result = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "COLUMNS": "250"})
    if check:
        assert result.returncode == 0, f"course-grader {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def scores(workspace):
    with Workspace(workspace).gradebook() as gradebook:
        return {submission.student.id: {g.name: g.auto_score for g in submission.notebooks[0].grades if g.name in FULL}
                for submission in gradebook.find_assignment("quiz").submissions}


def expected(student):
    return {k: float(v) for k, v in SUBMISSIONS[student][1].items()}


def _sandbox_memory(dask_worker):
    """(sandboxes of this worker, their cgroups' memory, what Dask counts as this worker's memory
    minus the worker process's own RSS)."""
    import psutil

    from grader import forkserver

    counted = dask_worker.monitor.get_process_memory() - psutil.Process().memory_info().rss
    return len(forkserver._all), forkserver.memory_bytes(), counted


def _warm_sandbox_memory(dask_worker):
    """Start a sandbox on this worker, as a task would, and measure."""
    from grader import forkserver

    server = forkserver.acquire()
    server.wait_ready()
    forkserver.release(server)
    return _sandbox_memory(dask_worker)


def kill_worker_running(cluster, student, stop, killed, settle=2.0):
    """SIGKILL the worker process that is running ``student``'s notebook, once, mid-notebook."""
    with cluster.client() as client:
        while not stop.is_set():
            try:
                running = client.run(lambda dask_worker: (os.getpid(), [str(ts.key) for ts in dask_worker.state.executing]))
            except Exception:  # a worker just died (the poison) or is starting again
                time.sleep(0.2)
                continue
            pid = next((pid for pid, keys in running.values() if any(f"'{student}'" in key for key in keys)), None)
            if pid:
                time.sleep(settle)  # well inside the 8 s sleep: the sandbox and kernel are running
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.2)


@pytest.fixture(scope="session")
def graded(tmp_path_factory, postgres):
    root = tmp_path_factory.mktemp("dask")
    workspaces = {"dask": root / "ws-dask", "local": root / "ws-local"}
    result = {"workspaces": workspaces}

    def set_up(name):
        grader("init", workspaces[name], "--db", postgres.create_database(f"gradebook_{name}"))
        grader("release", "quiz", "--workspace", workspaces[name])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(set_up, workspaces))
    release = nbformat.read(workspaces["dask"] / "release/quiz/quiz.ipynb", as_version=4)
    for workspace in workspaces.values():
        for student, (make, _) in SUBMISSIONS.items():
            folder = workspace / "submitted" / student / "quiz"
            folder.mkdir(parents=True)
            (folder / "quiz.ipynb").write_bytes(make(release))

    cluster = DaskCluster(workers=2, threads=1, worker_env={"COURSE_GRADER_TEST_KILL_WORKER_MARKER": MARKER,
                                                            "COURSE_GRADER_IDLE_SECONDS": str(IDLE)},
                          scheduler_env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES),
                                         "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"})
    try:
        cluster.start()
        dask = ["autograde", "quiz", *LIMITS, "--workspace", workspaces["dask"], "--scheduler", cluster.address]
        # 1. the whole batch, with the slow submission's worker killed under it
        stop, killed = threading.Event(), []
        watcher = threading.Thread(target=kill_worker_running, args=(cluster, "slow", stop, killed))
        watcher.start()
        with cluster.client() as client:
            client.get_task_stream()  # the scheduler records finished tasks from now on
        started, wall_started = time.monotonic(), time.time()
        try:
            result["dask_run"] = grader(*dask)
        finally:
            stop.set()
            watcher.join()
        result["dask_seconds"] = time.monotonic() - started
        result["killed"] = killed
        result["dask"] = scores(workspaces["dask"])
        result["problems"] = (workspaces["dask"] / "reports/quiz-autograde-problems.csv").read_text()
        cluster.wait_for_workers(2, timeout=60)  # the nannies brought every killed worker back
        with cluster.client() as client:
            result["workers_after"] = len(client.scheduler_info()["workers"])
            # every notebook's task finished exactly once, the killed and retried one included
            result["finished_tasks"] = [str(record["key"]) for record in client.get_task_stream(start=wall_started)]
            result["memory_now"] = client.run(_warm_sandbox_memory)
            time.sleep(IDLE * 2.5)
            result["memory_idle"] = client.run(_sandbox_memory)
        # 2. again, resuming: everything is already graded
        result["resume_run"] = grader(*dask, "--resume")
        result["resume_problems"] = (workspaces["dask"] / "reports/quiz-autograde-problems.csv").read_text()
        result["dask_after_resume"] = scores(workspaces["dask"])
        # 3. a resubmission: only that one is graded again
        (workspaces["dask"] / "submitted" / WRONG_THEN_RIGHT / "quiz/quiz.ipynb").write_bytes(answered(release))
        result["resubmission_run"] = grader(*dask, "--resume")
        result["dask_after_resubmission"] = scores(workspaces["dask"])
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
        cluster.cleanup()

    # 4. locally: interrupted after a few students are scored, then resumed
    local = ["autograde", "quiz", *LIMITS, "--workers", "2", "--workspace", workspaces["local"]]
    state = workspaces["local"] / "autograde-state" / "quiz"
    process = subprocess.Popen([CLI, *map(str, local)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(list(state.glob("*.json"))) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    result["recorded_before_interrupt"] = len(list(state.glob("*.json")))
    result["local_resumed_run"] = grader(*local, "--resume")
    result["local"] = scores(workspaces["local"])
    return result


@pytest.mark.claim("readme.dask")
def test_dask_scores_are_the_points_each_answer_deserves(graded):
    wrong = [f"{student}: got {graded['dask'].get(student)}, expected {expected(student)}"
             for student in SUBMISSIONS if graded["dask"].get(student) != expected(student)]
    assert wrong == [], "\n".join(wrong)


@pytest.mark.claim("readme.dask")
def test_dask_and_local_grading_give_identical_scores(graded):
    local = {student: s for student, s in graded["local"].items() if student != "poison"}
    dask = {student: s for student, s in graded["dask"].items() if student != "poison"}
    assert dask == local
    assert graded["local"]["poison"] == expected("right"), "locally the marker is a plain comment"


def problem_rows(text, student):
    return [row for row in csv.DictReader(io.StringIO(text)) if row["student"] == student]


@pytest.mark.claim("readme.dask-failures")
def test_a_killed_worker_costs_nothing(graded):
    assert len(graded["killed"]) == 1, "the watcher did not find the slow submission running"
    assert not alive(graded["killed"][0])
    assert problem_rows(graded["problems"], "slow") == [], f"the retried submission is reported:\n{graded['problems']}"
    assert graded["dask"]["slow"] == expected("slow")
    assert graded["workers_after"] == 2


@pytest.mark.claim("readme.dask-failures")
def test_every_notebook_is_graded_once(graded):
    """The killed worker's notebook ran again elsewhere and finished; the poison never finished. (Dask may
    run a task again when a busy worker misses its heartbeat; the coordinator still takes one result per
    notebook, and scores each student once: the summary line counts them.)"""
    finished = [key for key in graded["finished_tasks"] if "course-grader-notebook" in key]
    per_student = {student: sum(f"'{student}'" in key for key in finished) for student in SUBMISSIONS}
    runnable = set(SUBMISSIONS) - {"empty-file", "poison"}
    assert all(per_student[s] >= 1 for s in runnable) and per_student["poison"] == 0, per_student
    assert f"graded {len(SUBMISSIONS)} submissions" in graded["dask_run"].stdout


@pytest.mark.claim("readme.dask-workers")
def test_workers_count_their_sandboxes_memory_and_give_it_back_when_idle(graded):
    now = graded["memory_now"].values()
    assert any(count >= 1 and memory > 100 * 2**20 and counted >= memory * 0.9 for count, memory, counted in now), now
    assert all(count == 0 and memory == 0 for count, memory, _ in graded["memory_idle"].values()), \
        graded["memory_idle"]


@pytest.mark.claim("readme.dask-failures")
def test_a_submission_that_kills_workers_is_failed_with_the_reason(graded):
    rows = problem_rows(graded["problems"], "poison")
    assert len(rows) == 1 and f"killed {ALLOWED_FAILURES + 1} workers" in rows[0]["reason"], rows
    import dask
    import distributed  # noqa: F401  (its defaults: README says "default 4" workers)

    assert dask.config.get("distributed.scheduler.allowed-failures") + 1 == 4
    assert graded["dask"]["poison"] == expected("poison")


@pytest.mark.claim("readme.dask-workers")
def test_the_dask_run_prints_the_cluster_and_its_dashboard(graded):
    output = graded["dask_run"].stdout
    assert "2 workers, 2 threads" in output and "dashboard: http://127.0.0.1:" in output
    assert f"graded {len(SUBMISSIONS)} submissions" in output
    assert "autograding" in output and "ETA" in output


@pytest.mark.claim("readme.resume")
def test_resume_skips_what_is_graded_and_grades_what_changed(graded):
    assert f"skipped {len(SUBMISSIONS)} already graded" in graded["resume_run"].stdout
    assert "graded 0 submissions" in graded["resume_run"].stdout
    assert graded["dask_after_resume"] == graded["dask"]
    assert graded["resume_problems"] == graded["problems"], "the failure table is kept for skipped students"
    assert "graded 1 submissions" in graded["resubmission_run"].stdout
    assert f"skipped {len(SUBMISSIONS) - 1} already graded" in graded["resubmission_run"].stdout
    assert graded["dask_after_resubmission"] == {**graded["dask"], WRONG_THEN_RIGHT: expected("right")}


@pytest.mark.claim("readme.resume")
def test_an_interrupted_local_run_resumes(graded):
    recorded = graded["recorded_before_interrupt"]
    assert 3 <= recorded < len(SUBMISSIONS), "the interruption came after every student was graded"
    output = graded["local_resumed_run"].stdout
    assert f"skipped {recorded} already graded" in output
    assert f"graded {len(SUBMISSIONS) - recorded} submissions" in output
    assert set(graded["local"]) == set(SUBMISSIONS)



@pytest.mark.claim("readme.dask-workers")
def test_a_worker_that_cannot_cap_notebooks_is_refused_before_the_batch(graded, tmp_path):
    """The grader checks every worker (grader.distributed.check_worker) before sending any notebook: a worker
    without usable cgroups (made here by pointing it at an empty cgroup root) stops the batch with the reason."""
    cluster = DaskCluster(workers=1, threads=1, worker_env={"COURSE_GRADER_CGROUP_ROOT": str(tmp_path / "none")},
                          dashboard=False)
    try:
        cluster.start()
        result = grader("autograde", "quiz", *LIMITS, "--workspace", graded["workspaces"]["dask"], "--scheduler",
                        cluster.address, check=False)
    finally:
        cluster.stop()
        cluster.cleanup()
    assert result.returncode == 2
    assert "workers that cannot grade" in result.stderr and "no per-notebook caps" in result.stderr, result.stderr
