"""A class of 60 from Canvas's exports to Canvas's gradebook, through the real CLI, graded for real.

One batch of the quiz (cheap: no TensorFlow) holds every case an instructor meets: late files, a resubmission
whose blank first upload is younger in the zip, a renamed notebook, an unknown student, an empty file, students
who wrote explanations (answers for a human) and two who handed in the same text; plus two students whose
nbgrader timestamps sit exactly at the due second and one second after it. The workspace's late policy is
nbgrader's 'zero'.
"""

import csv
import io
import random
from datetime import datetime, timedelta

import nbformat
import pytest
from nbgrader.api import Gradebook

from support.grading_workspace import grader, new_workspace, release_notebook
from support.lms_exports import CanvasExport, canvas_gradebook_csv, make_class
from support.nbgrader_course import fill_answers

# One worker runs this module's tests: they share an expensive module fixture.
pytestmark = pytest.mark.xdist_group("lms")

DUE = datetime(2026, 3, 1, 23, 59, 0)
LIMITS = ["--cell-timeout", "20", "--timeout", "60", "--memory", "2048"]
RIGHT = {"q1_answer": 'q1_answer = "B"', "q2_answer": 'q2_answer = {"A", "C", "E"}'}
COPIED_TEXT = {"q1_explain": "The sigmoid squashes the output neuron's value into (0, 1) so that it reads as the "
                             "probability of class 1, which is what binary cross-entropy needs to take its logarithms.",
               "q2_explain": "The optimizer follows the gradients of the loss; metrics are only computed and reported "
                             "in the training log and by evaluate, they never change the weights."}


WORDS = ("sigmoid output probability range zero one class loss metric gradient optimizer weights reported "
         "minimised training accuracy cross entropy logits neuron dense layer binary squashes value because "
         "therefore model fit evaluate history epoch step update differentiable human readable").split()


def answers_of(index):
    """Varied answers: question 1 right for two thirds, question 2's statements right or not in turn; every third
    student explains in words (those answers wait for a human)."""
    answers = {"q1_answer": f'q1_answer = "{"BBC"[index % 3]}"',
               "q2_answer": ['q2_answer = {"A", "C", "E"}', 'q2_answer = {"A", "B"}', 'q2_answer = "C, E"'][index % 3 - 1]}
    if index % 3 == 0:  # explanations in each student's own words (random words: no two alike)
        rng = random.Random(index)
        answers["q1_explain"] = " ".join(rng.choices(WORDS, k=18)) + "."
        answers["q2_explain"] = " ".join(rng.choices(WORDS, k=18)) + "."
    return answers


@pytest.fixture(scope="session")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    people = make_class(60, seed=15)
    workspace = new_workspace(root / "ws", assignments=())  # every assignment: quiz and compile-and-train
    with open(workspace / "nbgrader_config.py", "a") as config:
        config.write('c.LateSubmissionPlugin.penalty_method = "zero"\nc.CourseGrader.timezone = "UTC"\n')
    due = grader("release", "quiz", "--due", "2026-03-01 23:59", workspace=workspace).stdout
    (root / "canvas-gradebook.csv").write_text(canvas_gradebook_csv(people))
    grader("roster", root / "canvas-gradebook.csv", workspace=workspace)
    (root / "extra.csv").write_text("id,first_name,last_name,email\nontime,On,Time,on@uni.example\n"
                                    "onesecondlate,One,Late,one@uni.example\n")
    grader("roster", root / "extra.csv", workspace=workspace)

    release = release_notebook(workspace)

    def notebook(answers):
        return nbformat.writes(fill_answers(release, answers)).encode()

    roles = {"late": people[1], "on time": people[2], "graded by hand": people[3], "resubmitted": people[4],
             "renamed": people[5], "empty": people[6], "not submitted": people[7], "copy 1": people[9],
             "copy 2": people[12], "pending": people[0]}
    export = CanvasExport()
    for index, person in enumerate(people):
        if person is roles["not submitted"]:
            continue
        if person is roles["renamed"]:
            export.add(person, "quiz_final.ipynb", notebook(RIGHT))
        elif person is roles["empty"]:
            export.add(person, "quiz.ipynb", b"")
        elif person is roles["resubmitted"]:
            # the blank first upload is 2 s younger in the zip than the resubmission
            export.add(person, "quiz.ipynb", notebook({}), zip_time=(2026, 3, 1, 12, 0, 2))
            export.add(person, "quiz-1.ipynb", notebook(RIGHT), zip_time=(2026, 3, 1, 12, 0, 0))
        elif person in (roles["late"], roles["on time"]):
            export.add(person, "quiz.ipynb", notebook(RIGHT), late=person is roles["late"])
        elif person in (roles["copy 1"], roles["copy 2"]):
            export.add(person, "quiz.ipynb", notebook({**RIGHT, **COPIED_TEXT}))
        else:
            export.add(person, "quiz.ipynb", notebook(answers_of(index)))
    export.add_unknown("studenttest", 99999, "quiz.ipynb", notebook(RIGHT))
    archive = export.write_zip(root / "canvas-submissions.zip")
    collected = grader("collect", archive, "--assignment", "quiz", workspace=workspace).stdout

    plain = root / "exchange"
    for student, stamp in (("ontime", DUE), ("onesecondlate", DUE + timedelta(seconds=1))):
        (plain / student / "quiz").mkdir(parents=True)
        (plain / student / "quiz" / "quiz.ipynb").write_bytes(notebook(RIGHT))
        (plain / student / "quiz" / "timestamp.txt").write_text(f"{stamp:%Y-%m-%d %H:%M:%S} UTC")
    grader("collect", plain, "--assignment", "quiz", workspace=workspace)
    graded = grader("autograde", "quiz", *LIMITS, workspace=workspace, timeout=1200)
    return dict(workspace=workspace, people=people, roles=roles, export=export, collected=collected, due=due,
                autograde=graded)


def scores(workspace):
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gradebook:
        return {s.student.id: (s.score, s.late_submission_penalty or 0.0, s.needs_manual_grade)
                for s in gradebook.find_assignment("quiz").submissions}


def read_csv(path):
    return list(csv.reader(io.StringIO(path.read_text())))


def test_the_zip_itself_is_collected(batch):
    collected = sum(1 for person in batch["people"]
                    if person not in (batch["roles"]["not submitted"], batch["roles"]["renamed"]))
    assert f"collected {collected} notebooks from {collected} students" in batch["collected"]
    assert "1 marked late by the LMS" in batch["collected"]
    assert "quiz_final.ipynb" in batch["collected"] and "--match" in batch["collected"]
    assert "Canvas user 99999" in batch["collected"]


def test_no_library_warnings_in_normal_output(batch):
    for output in (batch["autograde"].stdout + batch["autograde"].stderr, batch["collected"], batch["due"]):
        assert "Warning" not in output, output


@pytest.mark.claim("readme.release", "suite.lms-path")
def test_late_resubmitted_and_boundary_files_get_the_grades_they_deserve(batch):
    roles, got = batch["roles"], scores(batch["workspace"])
    assert got[roles["on time"].sis_id] == (5.0, 0.0, False)      # 5 autograded points; explanations left blank
    assert got[roles["late"].sis_id] == (5.0, 5.0, False)         # Canvas's LATE: nbgrader's 'zero' penalty
    assert got[roles["resubmitted"].sis_id] == (5.0, 0.0, False)  # the -1 resubmission, not the blank upload
    assert got[roles["empty"].sis_id][0] == 0.0
    assert got["ontime"] == (5.0, 0.0, False)                     # at the due second: on time
    assert got["onesecondlate"] == (5.0, 5.0, False)              # one second after: late
    assert roles["renamed"].sis_id not in got and roles["not submitted"].sis_id not in got


@pytest.mark.claim("readme.export", "suite.lms-path")
def test_canvas_export_is_what_canvas_imports(batch):
    workspace, roles = batch["workspace"], batch["roles"]
    out = grader("export", "--format", "canvas", workspace=workspace).stdout
    rows = read_csv(workspace / "reports" / "canvas-grades.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Compile and train (5002)",
                       "Quiz (5001)"]
    assert rows[1][0] == "    Points Possible" and rows[1][6] == "9"
    by_id = {row[1]: row for row in rows[2:]}
    assert len(rows) == 2 + 62 and "99999" not in by_id  # the class and the two extra students; no test student
    for person in batch["people"]:
        row = by_id[str(person.canvas_id)]
        assert row[:5] == [person.sortable, str(person.canvas_id), person.sis_id, person.email, person.section]
        assert row[5] == ""  # compile-and-train: nobody graded, so blank, not 0
    assert by_id[str(roles["on time"].canvas_id)][6] == "5"
    assert by_id[str(roles["late"].canvas_id)][6] == "0"
    assert by_id[str(roles["empty"].canvas_id)][6] == "0"
    assert by_id[str(roles["not submitted"].canvas_id)][6] == by_id[str(roles["renamed"].canvas_id)][6] == ""
    assert by_id[str(roles["pending"].canvas_id)][6] == ""  # written answers not graded yet: provisional, left blank
    assert "grades are provisional" in out and "left blank" in out

    grader("export", "--format", "canvas", "--provisional", "--out", "all.csv", workspace=workspace)
    with_provisional = {row[1]: row for row in read_csv(workspace / "all.csv")[2:]}
    assert with_provisional[str(roles["pending"].canvas_id)][6] != ""


@pytest.mark.claim("readme.export")
def test_moodle_export_maps_rows_by_email(batch):
    workspace = batch["workspace"]
    grader("export", "--format", "moodle", "--assignment", "quiz", workspace=workspace)
    rows = read_csv(workspace / "reports" / "moodle-grades.csv")
    assert rows[0] == ["First name", "Last name", "ID number", "Email address", "quiz"]
    person = batch["roles"]["on time"]
    assert [person.first, person.last, str(person.canvas_id), person.email, "5"] in rows


@pytest.mark.claim("readme.feedback")
def test_feedback_waits_for_the_human_grades(batch):
    workspace, roles = batch["workspace"], batch["roles"]
    out = grader("feedback", "quiz", workspace=workspace).stdout
    assert (workspace / "feedback" / roles["on time"].sis_id / "quiz" / "quiz.html").is_file()
    assert not (workspace / "feedback" / roles["pending"].sis_id).exists()
    assert "not graded yet" in out and roles["pending"].sis_id in out
    html = (workspace / "feedback" / roles["on time"].sis_id / "quiz" / "quiz.html").read_text()
    assert "Score: 5.0 / 9.0" in html


@pytest.mark.claim("readme.report")
def test_report_shows_questions_pending_answers_and_the_copied_pair(batch):
    workspace, roles = batch["workspace"], batch["roles"]
    out = grader("report", "quiz", workspace=workspace).stdout
    assert "PROVISIONAL" in out
    # the judge's verdicts (WORKSPACE/verdicts/): which option each student chose, and its misconception
    assert "quiz:q1_answer = C" in out and "make the decision boundary curved" in out
    assert "quiz:q1_points        wrong_choice" in out
    html = (workspace / "reports" / "quiz-report.html").read_text()
    assert 'id="provisional"' in html and 'id="items"' in html
    pairs = html[html.index('id="pairs"'):]
    pair = sorted([roles["copy 1"].sis_id, roles["copy 2"].sis_id])
    assert f"<td>{pair[0]}</td><td>{pair[1]}</td>" in pairs
    assert pairs.count("<tr>") == 2  # the header and that one pair: the other explanations differ
    assert (workspace / "reports" / "quiz-report.png").stat().st_size > 10_000


@pytest.mark.claim("readme.export")
def test_hand_grades_make_a_provisional_grade_final(batch):
    workspace, student = batch["workspace"], batch["roles"]["graded by hand"].sis_id
    grader("export", workspace=workspace)
    before = {row[0]: row for row in read_csv(workspace / "reports" / "grades.csv")[1:] if row[5] == "quiz"}
    assert before[student][6:8] == ["provisional", before[student][7]] and before[student][11] == "2"
    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gradebook:  # what Formgrader does
        for grade_id, points in (("q1_explain", 2), ("q2_explain", 1.5)):
            grade = gradebook.find_grade(grade_id, "quiz", "quiz", student)
            grade.manual_score = points
            grade.needs_manual_grade = False
        gradebook.db.commit()
    grader("export", workspace=workspace)
    after = {row[0]: row for row in read_csv(workspace / "reports" / "grades.csv")[1:] if row[5] == "quiz"}
    assert after[student][6] == "final" and after[student][11] == "0"
    assert float(after[student][7]) == float(before[student][7]) + 3.5
