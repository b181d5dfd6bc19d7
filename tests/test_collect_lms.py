"""collect and roster against generated Canvas and Moodle exports (zip and folder), through the real CLI.

Nothing is graded here (tests/test_grader_lms.py grades a class end to end): these check which file of which
student lands where, with which nbgrader timestamp, and what the instructor is told about the rest.
"""

import copy
import io
import json
import zipfile
from datetime import datetime, timedelta

import nbformat
import pytest
from nbgrader.coursedir import CourseDirectory

from support.grading_workspace import copy_workspace, grader, new_workspace, release_notebook, tree_digest
from support.lms_exports import (CanvasExport, MoodleExport, canvas_gradebook_csv, make_class, moodle_gradebook_csv,
                                 moodle_worksheet)
from support.nbgrader_course import fill_answers

# One worker runs this module's tests: they share an expensive module fixture.
pytestmark = pytest.mark.xdist_group("collect")

DUE = "2026-03-01 23:59:00+00:00"


@pytest.fixture(scope="session")
def people():
    return make_class(8, seed=3)


@pytest.fixture(scope="session")
def template(tmp_path_factory, people):
    """init + release quiz + the class from Canvas's gradebook export (with its test student)."""
    workspace = new_workspace(tmp_path_factory.mktemp("template") / "ws")
    with open(workspace / "nbgrader_config.py", "a") as config:
        config.write('c.CourseGrader.timezone = "UTC"\n')  # Moodle's worksheet times are local times
    roster = workspace.parent / "canvas-gradebook.csv"
    roster.write_text(canvas_gradebook_csv(people))
    grader("roster", roster, workspace=workspace)
    return workspace


@pytest.fixture
def workspace(template, tmp_path):
    return copy_workspace(template, tmp_path / "ws")


def quiz(workspace, q1="B"):
    return nbformat.writes(fill_answers(release_notebook(workspace), {"q1_answer": f'q1_answer = "{q1}"'})).encode()


def submitted(workspace, person, name="quiz.ipynb"):
    return workspace / "submitted" / person.sis_id / "quiz" / name


@pytest.mark.claim("readme.roster")
def test_canvas_gradebook_export_is_the_roster(template, people):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{template / 'gradebook.db'}") as gradebook:
        students = {s.id: s for s in gradebook.students}
    assert sorted(students) == sorted(p.sis_id for p in people)  # the test student is not imported
    first = students[people[0].sis_id]
    assert (first.first_name, first.last_name, first.email, first.lms_user_id) == (
        people[0].first, people[0].last, people[0].email, str(people[0].canvas_id))
    record = json.loads((template / "lms.json").read_text())
    assert record["columns"]["quiz"] == {"canvas": "Quiz (5001)"}
    assert record["students"][people[0].sis_id]["fields"]["Section"] == people[0].section


@pytest.mark.claim("readme.roster")
def test_roster_reports_the_test_student_and_bad_files(template, tmp_path, people):
    roster = tmp_path / "gradebook.csv"
    roster.write_text(canvas_gradebook_csv(people[:2]))
    out = grader("roster", roster, workspace=copy_workspace(template, tmp_path / "ws")).stdout
    assert "imported 2 students (canvas roster)" in out and "test student" in out
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'ws' / 'gradebook.db'}") as gradebook:
        assert len(gradebook.students) == len(people)  # importing again updates, and removes nobody
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text(moodle_worksheet(people[:2], {}))
    result = grader("roster", worksheet, workspace=tmp_path / "ws", check=False)
    assert result.returncode == 2 and "--worksheet" in result.stderr


@pytest.mark.claim("readme.collect")
def test_canvas_zip_is_collected_from_the_zip_itself_and_from_its_folder(workspace, tmp_path, people):
    export = CanvasExport()
    for person in people[:5]:
        export.add(person, "quiz.ipynb", quiz(workspace, "ABCDE"[people.index(person) % 5]))
    archive = export.write_zip(tmp_path / "submissions.zip")
    folder = export.write_folder(tmp_path / "unzipped")
    before = tree_digest(tmp_path / "unzipped"), archive.read_bytes()
    twin = copy_workspace(workspace, tmp_path / "twin")

    out = grader("collect", archive, "--assignment", "quiz", workspace=workspace).stdout
    assert "collected 5 notebooks from 5 students" in out
    grader("collect", folder, "--assignment", "quiz", workspace=twin)
    assert tree_digest(workspace / "submitted") == tree_digest(twin / "submitted")
    assert submitted(workspace, people[2]).read_bytes() == export.uploads[2].data
    assert (tree_digest(tmp_path / "unzipped"), archive.read_bytes()) == before  # the export is only read


@pytest.mark.claim("readme.collect-canvas")
def test_newest_upload_is_the_largest_canvas_attachment_never_the_zip_entry_time(workspace, tmp_path, people):
    first, second = people[0], people[1]
    export = CanvasExport()
    blank = nbformat.writes(release_notebook(workspace)).encode()
    # A careless collector takes the blank first upload: its zip entry is 2 s younger than the resubmission's.
    export.add(first, "quiz.ipynb", blank, attachment=3001, zip_time=(2026, 3, 2, 9, 0, 2))
    export.add(first, "quiz-1.ipynb", quiz(workspace), attachment=3050, zip_time=(2026, 3, 2, 9, 0, 0))
    # Attachment ids decide before the -N suffix: this quiz.ipynb was uploaded after quiz-1.ipynb.
    export.add(second, "quiz-1.ipynb", blank, attachment=3060)
    export.add(second, "quiz.ipynb", quiz(workspace, "C"), attachment=3070)
    out = grader("collect", export.write_zip(tmp_path / "export.zip"), "-a", "quiz", workspace=workspace).stdout
    assert submitted(workspace, first).read_bytes() == export.uploads[1].data
    assert submitted(workspace, second).read_bytes() == export.uploads[3].data
    superseded = sorted(p.name for p in (workspace / "unmatched").glob("*/superseded/*"))
    assert superseded == sorted([export.uploads[0].name, export.uploads[2].name])
    assert "older uploads, not graded" in out


@pytest.mark.claim("readme.collect-canvas")
def test_canvas_late_marker_becomes_nbgrader_timestamp_at_the_due_second(workspace, tmp_path, people):
    on_time, late = people[0], people[1]
    export = CanvasExport()
    export.add(on_time, "quiz.ipynb", quiz(workspace))
    export.add(late, "quiz.ipynb", quiz(workspace), late=True)
    archive = export.write_zip(tmp_path / "export.zip")

    out = grader("collect", archive, "-a", "quiz", workspace=workspace).stdout
    assert "1 marked late" in out and "no due date" in out  # without a due date nothing can be recorded
    assert not (submitted(workspace, late).parent / "timestamp.txt").exists()

    grader("release", "quiz", "--due", DUE, workspace=workspace)
    grader("collect", archive, "-a", "quiz", workspace=workspace)
    due = datetime(2026, 3, 1, 23, 59)
    coursedir = CourseDirectory()
    seconds_late = {person.sis_id: (coursedir.get_existing_timestamp(str(submitted(workspace, person).parent)) - due)
                    for person in (on_time, late)}
    assert seconds_late == {on_time.sis_id: timedelta(0), late.sis_id: timedelta(seconds=1)}


@pytest.mark.claim("readme.collect")
def test_unmatched_files_are_kept_with_a_suggestion_that_match_accepts(workspace, tmp_path, people):
    renamed, copied, zipped, unknown = people[0], people[1], people[2], people[3]
    export = CanvasExport()
    export.add(renamed, "quiz_final.ipynb", quiz(workspace, "A"))
    export.add(copied, "quiz (1).ipynb", quiz(workspace, "C"))
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("my work/quiz.ipynb", quiz(workspace, "D"))
    export.add(zipped, "submission.zip", inner.getvalue())
    export.add_unknown("studenttest", 99999, "quiz.ipynb", quiz(workspace))
    export.add(unknown, "notes.pdf", b"%PDF-1.4")
    export.add(people[4], "quiz.ipynb", b"")
    archive = export.write_zip(tmp_path / "export.zip")

    result = grader("collect", archive, "-a", "quiz", workspace=workspace)
    out = result.stdout
    assert "collected 1 notebooks" in out and "empty file" in out  # the empty one is collected, and said so
    batch = next((workspace / "unmatched").iterdir())
    assert sorted(p.name for p in batch.iterdir()) == sorted(u.name for u in export.uploads[:5])
    assert "is not in the roster" in out
    commands = [line.strip() for line in out.splitlines() if line.strip().startswith("course-grader collect")]
    assert len(commands) == 3, out
    matches = [part for line in commands for part in line.split(" --match ")[1:]]
    assert any("::my work/quiz.ipynb=quiz" in m for m in matches)

    args = [arg for m in matches for arg in ("--match", m.strip("'"))]
    out = grader("collect", archive, "-a", "quiz", *args, workspace=workspace).stdout
    assert "collected 4 notebooks from 4 students" in out
    assert submitted(workspace, renamed).read_bytes() == export.uploads[0].data
    assert submitted(workspace, zipped).read_bytes() == quiz(workspace, "D")


@pytest.mark.claim("readme.collect")
def test_match_names_must_exist(workspace, tmp_path, people):
    export = CanvasExport()
    export.add(people[0], "quiz.ipynb", quiz(workspace))
    archive = export.write_zip(tmp_path / "export.zip")
    result = grader("collect", archive, "-a", "quiz", "--match", "nothing.ipynb=quiz", workspace=workspace, check=False)
    assert result.returncode == 2 and "not a file of" in result.stderr
    assert not (workspace / "submitted" / people[0].sis_id).exists()
    not_a_zip = tmp_path / "broken.zip"
    not_a_zip.write_bytes(b"PK\x03\x04 truncated")
    result = grader("collect", not_a_zip, "-a", "quiz", workspace=workspace, check=False)
    assert result.returncode == 2 and "neither a folder nor a readable zip" in result.stderr


@pytest.mark.claim("readme.collect-moodle", "suite.lms-path")
@pytest.mark.parametrize("layout", ["folders", "folders-4.1", "flat"])
def test_moodle_download_with_its_grading_worksheet(template, tmp_path, people, layout):
    workspace = copy_workspace(template, tmp_path / "ws")
    roster = tmp_path / "moodle-gradebook.csv"
    people = copy.deepcopy(people)
    twins = [people[0], people[1]]
    twins[1].first, twins[1].last = twins[0].first, twins[0].last  # two students with one name
    roster.write_text(moodle_gradebook_csv(people[:3]))
    grader("roster", roster, workspace=workspace)
    grader("release", "quiz", "--due", DUE, workspace=workspace)
    export = MoodleExport(folders=layout != "flat")
    for person in people[:3]:
        name = export.add(person, "quiz.ipynb", quiz(workspace, "ABC"[people.index(person)]))
        if layout == "folders-4.1":  # Moodle 4.1+: no underscore after the plugin's name
            export.uploads[-1].name = name.replace("_file_/", "_file/")
    archive = export.write_zip(tmp_path / "moodle.zip")

    out = grader("collect", archive, "-a", "quiz", workspace=workspace).stdout
    assert "collected 1 notebooks" in out and "2 roster students are named" in out

    worksheet = tmp_path / "worksheet.csv"
    # Moodle shows minutes: the first is on time at the due minute, the second a minute late, the third did not say.
    worksheet.write_text(moodle_worksheet(people[:3], {people[0].canvas_id: "Sunday, 1 March 2026, 11:59 PM",
                                                        people[1].canvas_id: "Monday, 2 March 2026, 12:00 AM"}))
    out = grader("collect", archive, "-a", "quiz", "--worksheet", worksheet, workspace=workspace).stdout
    assert "collected 3 notebooks from 3 students" in out
    for person, letter in zip(people[:3], "ABC"):
        assert submitted(workspace, person).read_bytes() == quiz(workspace, letter)
    coursedir = CourseDirectory()
    stamps = [coursedir.get_existing_timestamp(str(submitted(workspace, p).parent)) for p in people[:2]]
    assert stamps == [datetime(2026, 3, 1, 23, 59), datetime(2026, 3, 2, 0, 0)]


@pytest.mark.claim("readme.collect-folders")
def test_plain_folders_keep_nbgrader_timestamps(workspace, tmp_path, people):
    export = tmp_path / "exchange"
    for person, stamp in ((people[0], "2026-03-01 23:59:00.000000 UTC"), (people[1], None)):
        folder = export / person.sis_id / "quiz"
        folder.mkdir(parents=True)
        (folder / "quiz.ipynb").write_bytes(quiz(workspace))
        if stamp:
            (folder / "timestamp.txt").write_text(stamp)
    grader("collect", export, "-a", "quiz", workspace=workspace)
    assert (submitted(workspace, people[0]).parent / "timestamp.txt").read_text() == "2026-03-01 23:59:00.000000 UTC"
    assert submitted(workspace, people[1]).exists()
    assert not (submitted(workspace, people[1]).parent / "timestamp.txt").exists()


@pytest.mark.claim("readme.collect")
def test_collecting_again_keeps_what_it_replaces(workspace, tmp_path, people):
    first = CanvasExport()
    first.add(people[0], "quiz.ipynb", quiz(workspace, "A"))
    grader("collect", first.write_zip(tmp_path / "first.zip"), "-a", "quiz", workspace=workspace)
    second = CanvasExport()
    second.add(people[0], "quiz.ipynb", quiz(workspace, "B"))
    grader("collect", second.write_zip(tmp_path / "second.zip"), "-a", "quiz", workspace=workspace)
    assert submitted(workspace, people[0]).read_bytes() == quiz(workspace, "B")
    kept = list((workspace / "unmatched").glob(f"*/previous/{people[0].sis_id}/quiz/quiz.ipynb"))
    assert [p.read_bytes() for p in kept] == [quiz(workspace, "A")]


@pytest.mark.claim("readme.release")
def test_due_dates_from_the_workspace_config_in_its_time_zone(workspace):
    with open(workspace / "nbgrader_config.py", "a") as config:
        config.write('c.CourseGrader.timezone = "Europe/Berlin"\nc.CourseGrader.due_dates = {"quiz": "2026-03-01 23:59"}\n')
    out = grader("release", "quiz", workspace=workspace).stdout
    assert "due 2026-03-01 23:59:00 CET (2026-03-01 22:59:00 UTC)" in out
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{workspace / 'gradebook.db'}") as gradebook:
        assert gradebook.find_assignment("quiz").duedate == datetime(2026, 3, 1, 22, 59)
    result = grader("release", "quiz", "--due", "soon", workspace=workspace, check=False)
    assert result.returncode == 2 and "cannot read 'soon' as a date" in result.stderr


@pytest.mark.claim("readme.roster")
def test_a_students_id_is_the_sis_id_else_the_login_else_the_email_else_the_lms_id(tmp_path):
    """README's rule for a student's id in the gradebook, row by row of a Canvas gradebook export."""
    from grader.lms import read_roster

    export = tmp_path / "canvas.csv"
    export.write_text("Student,ID,SIS User ID,SIS Login ID,Section,Quiz (5001)\n"
                      "    Points Possible,,,,,9.00\n"
                      "\"Doe, Jane\",1001,S-17,jdoe@uni.example,A,\n"     # the SIS User ID
                      "\"Roe, Rick\",1002,,rroe,A,\n"                      # else the login
                      "\"Poe, Pia\",1003,,pia.poe@uni.example,A,\n"       # else the e-mail's local part
                      "\"Moe, Max\",1004,,,A,\n")                         # else Canvas's user id
    roster = read_roster(export)
    assert [(s.id, s.lms_user_id) for s in roster.students] == [
        ("S-17", "1001"), ("rroe", "1002"), ("pia.poe", "1003"), ("1004", "1004")]
    moodle = tmp_path / "moodle.csv"
    moodle.write_text("First name,Last name,ID number,Email address\nJane,Doe,M-9,jdoe@uni.example\n"
                      "Rick,Roe,,rroe@uni.example\n")
    assert [s.id for s in read_roster(moodle).students] == ["M-9", "rroe"]  # Moodle: ID number, else the e-mail's
