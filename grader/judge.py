"""Inside a worker's sandbox, after the student's kernel is gone: judge the notebook's test cells.

The kernel ran the whole notebook, but student code could have changed anything in it, the
checks included, so its test cells' outputs decide nothing. This process is forked from the
zygote, which has never run student code; it runs each autograded test cell again, with
``coursekit.grading`` replaying the answers the kernel recorded (``grading.replay_from``), and
writes one verdict per test cell. The coordinator puts the verdicts into the executed notebook
before nbgrader scores it (``grader.autograde.apply_verdicts``).

Test cells get the student's answers only through ``check.answered(name)``; they run in a fresh
namespace holding ``check`` (``coursekit.grading``), as the exercises' test cells are written.
"""

import contextlib
import io
import json
import os
import signal


def is_autograded_test(cell):
    """An nbgrader test cell scored automatically (a dict from JSON or an nbformat cell)."""
    grading = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(grading.get("grade")) and not grading.get("solution")


class _TimeUp(Exception):
    pass


def _stop(signum, frame):
    raise _TimeUp()


def judge(tests, answers, cell_seconds):
    """``tests``: [(grade_id, source)]; returns [{grade_id, passed, output, error}]."""
    from coursekit import grading

    grading.replay_from(answers)
    signal.signal(signal.SIGALRM, _stop)
    verdicts = []
    for grade_id, source in tests:
        printed, error = io.StringIO(), None
        signal.setitimer(signal.ITIMER_REAL, cell_seconds)
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                exec(compile(source, f"<test {grade_id}>", "exec"), {"__name__": "__main__", "check": grading})
        except grading.CheckFailed as failure:
            error = ["CheckFailed", str(failure), failure._render_traceback_()]
        except _TimeUp:
            error = ["CellTimeoutError", f"the test ran longer than {cell_seconds:g} s",
                     [f"CellTimeoutError: the test ran longer than {cell_seconds:g} s"]]
        except BaseException as failure:  # the checks' own errors, on whatever the kernel recorded
            message = str(failure).strip().splitlines()[0][:500] if str(failure).strip() else ""
            error = [type(failure).__name__, message, [f"{type(failure).__name__}: {message}"]]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        verdicts.append({"grade_id": grade_id, "passed": error is None, "output": printed.getvalue()[:20_000],
                         "error": error})
    return verdicts


def main(tests, folder, cell_seconds):
    verdicts = judge(tests, folder / ".answers", cell_seconds)
    temporary = folder / f".verdicts-{os.getpid()}.json"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "w") as file:
        json.dump(verdicts, file)
    os.replace(temporary, folder / "verdicts.json")
