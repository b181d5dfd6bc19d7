"""Import a class roster into nbgrader's gradebook: Canvas's or Moodle's gradebook export, or a plain CSV.

The gradebook keeps each student's id, names, e-mail and LMS user id (nbgrader's ``Student``); the LMS's other
identity columns (Canvas's SIS ids and section, Moodle's ID number…) and the LMS's column of each assignment go
to ``WORKSPACE/lms.json`` (``grader.lms.LmsRecord``), from which ``export`` writes a file the LMS imports.
Importing again updates students; nobody is removed.
"""

from dataclasses import dataclass

from grader.lms import LmsRecord, read_roster


@dataclass
class RosterResult:
    lms: str
    imported: list         # student ids
    rejected: list         # (line number, reason)
    columns: dict          # assignment -> the LMS's column for it


def import_roster(workspace, path):
    roster = read_roster(path)
    with workspace.gradebook() as gradebook:
        for student in roster.students:
            gradebook.update_or_create_student(
                student.id, **{key: value for key, value in (
                    ("first_name", student.first_name), ("last_name", student.last_name), ("email", student.email),
                    ("lms_user_id", student.lms_user_id)) if value})
    record = LmsRecord.load(workspace.root)
    columns = record.add(roster, workspace.assignments())
    record.save(workspace.root)
    return RosterResult(roster.lms.value, [s.id for s in roster.students], roster.rejected, columns)
