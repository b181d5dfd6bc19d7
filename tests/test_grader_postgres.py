"""The grader writes into nbgrader's real gradebook on PostgreSQL exactly what it writes on SQLite.

A real PostgreSQL server is started by the test itself (tests/support/postgres_server.py), on a
free port of 127.0.0.1, and stopped and deleted at the end. One batch of quiz submissions (right,
wrong, partial, unanswered, broken, cheating, an empty file) goes through the whole instructor
workflow on the command line — init, roster, release, collect, autograde, export — twice: into a
workspace whose gradebook is a PostgreSQL database (``init --db postgresql+psycopg://...``) and
into one with the default SQLite gradebook. Both gradebooks must hold the same scores for every
grade cell, and those scores must be the points each answer deserves.

Only the quiz is graded (no TensorFlow): each notebook takes a second or two.
"""

import csv
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from grader.workspace import Workspace
from support.nbgrader_course import fill_answers
from support.notebooks import ROOT

COURSE_GRADER = str(Path(sys.executable).with_name("course-grader"))
ASSIGNMENT = "quiz"
NOTEBOOK = "quiz"
AUTOGRADED = ("q1_points", "q2_points_ab", "q2_points_cd", "q2_points_ef")
FULL = {"q1_points": 2, "q2_points_ab": 1, "q2_points_cd": 1, "q2_points_ef": 1}

# student -> (answers by grade_id, or a raw file's bytes; expected points of each autograded cell)
SUBMISSIONS = {
    "alice": ({}, FULL),
    "bob": ({"q1_answer": 'q1_answer = "A"', "q2_answer": 'q2_answer = {"A", "B", "C", "E"}'},
            {"q1_points": 0, "q2_points_ab": 0, "q2_points_cd": 1, "q2_points_ef": 1}),
    "carol": ({"q1_answer": "q1_answer = 'b.'", "q2_answer": 'q2_answer = "A"'},
              {"q1_points": 2, "q2_points_ab": 1, "q2_points_cd": 0, "q2_points_ef": 0}),
    "dave": (None, dict.fromkeys(AUTOGRADED, 0)),  # the release as it is: nothing answered
    "erin": ({"q1_answer": "q1_answer = 'B"},  # a syntax error in one answer
             {"q1_points": 0, "q2_points_ab": 1, "q2_points_cd": 1, "q2_points_ef": 1}),
    "frank": ({"q2_answer": "q2_answer = set('ACE') / 0"},  # an exception in one answer
              {"q1_points": 2, "q2_points_ab": 0, "q2_points_cd": 0, "q2_points_ef": 0}),
    "grace": ({"q1_answer": 'q1_answer = "C"', "q1_points": "print('all tests passed')"},  # a cheat
              {"q1_points": 0, "q2_points_ab": 1, "q2_points_cd": 1, "q2_points_ef": 1}),
    "heidi": (b"", dict.fromkeys(AUTOGRADED, 0)),  # an empty file
}
ROSTER_ONLY = "ivan"  # in the roster, submits nothing


def course_grader(*args, cwd=None):
    result = subprocess.run([COURSE_GRADER, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, "COLUMNS": "200"}, timeout=600)
    assert result.returncode == 0, f"course-grader {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def fill(release, solution, answers):
    """The release notebook with the solution's code in every answer cell but those in ``answers``."""
    solution_code = {cell.metadata.nbgrader["grade_id"]: cell.source for cell in solution.cells
                     if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")}
    return fill_answers(nbformat.from_dict(release), {**solution_code, **answers})


def write_lms_export(folder, release_path):
    """A plain LMS export (student/quiz.ipynb), with one fixed modification time."""
    release = nbformat.read(release_path, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    for student, (answers, _) in SUBMISSIONS.items():
        target = folder / student / f"{NOTEBOOK}.ipynb"
        target.parent.mkdir(parents=True)
        if isinstance(answers, bytes):
            target.write_bytes(answers)
        else:
            nbformat.write(release if answers is None else fill(release, solution, answers), target)
        os.utime(target, (1_750_000_000, 1_750_000_000))
    return folder


def write_roster(path):
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "first_name", "last_name", "email"])
        for student in [*SUBMISSIONS, ROSTER_ONLY]:
            writer.writerow([student, student.title(), "Test", f"{student}@example.org"])
    return path


def snapshot(workspace):
    """Everything the batch wrote into the gradebook, as plain values (no ids, no timestamps)."""
    ws = Workspace(workspace)
    with ws.gradebook() as gradebook:
        students = sorted((s.id, s.first_name, s.last_name, s.email) for s in gradebook.students)
        assignment = gradebook.find_assignment(ASSIGNMENT)
        source_cells = sorted((c.name, c.cell_type, c.locked, c.checksum)
                              for n in assignment.notebooks for c in n.source_cells)
        grade_cells = sorted((c.name, c.cell_type, float(c.max_score))
                             for n in assignment.notebooks for c in n.grade_cells)
        grades = {}
        totals = {}
        for submission in assignment.submissions:
            student = submission.student.id
            totals[student] = (float(submission.score), float(submission.max_score),
                               submission.needs_manual_grade, submission.late_submission_penalty)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grades[(student, notebook.name, grade.name)] = (
                        grade.auto_score, grade.manual_score, float(grade.score), float(grade.max_score),
                        grade.needs_manual_grade)
    return {"students": students, "source_cells": source_cells, "grade_cells": grade_cells,
            "grades": grades, "totals": totals}


def grade_on_both(postgres, root):
    """The batch through the whole workflow into a PostgreSQL and a SQLite workspace, side by side."""
    roster = write_roster(root / "roster.csv")
    workspaces = {"postgres": root / "ws-postgres", "sqlite": root / "ws-sqlite"}
    databases = {"postgres": postgres.create_database("gradebook"), "sqlite": None}

    def set_up(name):
        init = ["init", workspaces[name]] + (["--db", databases[name]] if databases[name] else [])
        course_grader(*init)
        course_grader("roster", roster, "--workspace", workspaces[name])
        course_grader("release", ASSIGNMENT, "--workspace", workspaces[name])

    def grade(name):
        course_grader("collect", export, "--assignment", ASSIGNMENT, "--workspace", workspaces[name])
        run = course_grader("autograde", ASSIGNMENT, "--workspace", workspaces[name])
        course_grader("export", "--workspace", workspaces[name])
        return run

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(set_up, workspaces))
        # The students got nbgrader's own release notebook (the PostgreSQL workspace's).
        export = write_lms_export(root / "lms-export",
                                  workspaces["postgres"] / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
        runs = dict(zip(workspaces, pool.map(grade, workspaces)))
    return {"db_url": databases["postgres"], **workspaces, "runs": runs}


def check_the_workspace_uses_the_postgresql_database(graded):
    assert Workspace(graded["postgres"]).db_url == graded["db_url"]
    assert graded["db_url"].startswith("postgresql+psycopg://")
    assert not (graded["postgres"] / "gradebook.db").exists()
    assert Workspace(graded["sqlite"]).db_url.startswith("sqlite:///")


def check_postgresql_gradebook_holds_exactly_what_sqlite_holds(graded):
    on_postgres, on_sqlite = snapshot(graded["postgres"]), snapshot(graded["sqlite"])
    assert set(on_postgres["grades"]) == set(on_sqlite["grades"])
    differences = {key: (on_postgres["grades"][key], on_sqlite["grades"][key]) for key in on_postgres["grades"]
                   if on_postgres["grades"][key] != on_sqlite["grades"][key]}
    assert differences == {}, "grades that differ (PostgreSQL, SQLite)"
    assert on_postgres == on_sqlite


def check_every_answer_gets_the_points_it_deserves(graded):
    grades = snapshot(graded["postgres"])["grades"]
    wrong = []
    for student, (_, expected) in SUBMISSIONS.items():
        for grade_id, points in expected.items():
            got = grades.get((student, NOTEBOOK, grade_id), (None,))[0]
            if got != points:
                wrong.append(f"{student} {grade_id}: got {got}, expected {points}")
    assert wrong == []


def check_totals_are_the_autograded_points_out_of_nine(graded):
    totals = snapshot(graded["postgres"])["totals"]
    assert set(totals) == set(SUBMISSIONS), "every submission, and only those, is in the gradebook"
    for student, (_, expected) in SUBMISSIONS.items():
        score, max_score, _, penalty = totals[student]
        # 5 autograded points + 4 points of written explanations, graded by hand later
        assert (score, max_score, penalty) == (sum(expected.values()), 9.0, 0.0), student


def check_broken_files_are_reported_not_fatal(graded):
    output = graded["runs"]["postgres"].stdout
    assert f"graded {len(SUBMISSIONS)} submissions" in output
    assert "heidi" in output and "empty file" in output


def check_exported_grades_are_the_same_on_both_databases(graded):
    exported = {}
    for name in ("postgres", "sqlite"):
        with open(graded[name] / "reports" / "grades.csv", newline="") as rows:
            exported[name] = sorted(tuple(sorted(row.items())) for row in csv.DictReader(rows))
    assert exported["postgres"] == exported["sqlite"]
    rows = {dict(row)["student_id"]: dict(row) for row in exported["postgres"]}
    scores = {student: float(row["raw_score"]) for student, row in rows.items() if row["raw_score"] != ""}
    assert scores == {s: float(sum(e.values())) for s, (_, e) in SUBMISSIONS.items()}
    # A student who submitted nothing has no grade from us: blank, not 0.
    assert (rows[ROSTER_ONLY]["status"], rows[ROSTER_ONLY]["score"]) == ("not submitted", "")


def check_grading_again_on_postgresql_changes_nothing(graded):
    before = snapshot(graded["postgres"])
    course_grader("autograde", ASSIGNMENT, "--student", "bob", "--student", "heidi", "--workspace", graded["postgres"])
    assert snapshot(graded["postgres"]) == before


CHECKS = [check_the_workspace_uses_the_postgresql_database, check_postgresql_gradebook_holds_exactly_what_sqlite_holds,
          check_every_answer_gets_the_points_it_deserves, check_totals_are_the_autograded_points_out_of_nine,
          check_broken_files_are_reported_not_fatal, check_exported_grades_are_the_same_on_both_databases,
          check_grading_again_on_postgresql_changes_nothing]


@pytest.mark.claim("readme.dask")
def test_one_batch_graded_into_postgresql_and_sqlite(postgres, tmp_path):
    # One test (not one per check) so that pytest-xdist never grades the batch twice.
    graded = grade_on_both(postgres, tmp_path)
    failed = []
    for check in CHECKS:
        try:
            check(graded)
        except AssertionError as error:
            failed.append(f"{check.__name__}: {error}")
    assert failed == [], "\n\n".join(failed)


def test_an_unreachable_database_is_a_clear_error(postgres, tmp_path):
    closed = f"postgresql+psycopg://grader@127.0.0.1:{postgres.port}/no_such_database"
    result = subprocess.run([COURSE_GRADER, "init", str(tmp_path / "ws"), "--db", closed],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "could not create the gradebook" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "ws" / "nbgrader_config.py").exists(), "a failed init must leave no workspace behind"
