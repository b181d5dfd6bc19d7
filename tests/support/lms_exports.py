"""Generated Canvas and Moodle exports, in their documented conventions (see grader/lms.py).

A class is a list of ``Person``; ``CanvasExport`` and ``MoodleExport`` collect uploads and write them as the
LMS does — a zip (entry times chosen by the test, to prove they are never used) or the folder it unpacks to.
The roster files are the LMSs' gradebook exports.
"""

import csv
import io
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

FIRST = ["Jane", "Omar", "Li", "Ana", "Kofi", "Mia", "Ravi", "Eva", "Noah", "Sara", "Ivan", "Yuki", "Lena", "Tom",
         "Zoe", "Amir", "Ines", "Paul", "Nia", "Karl"]
LAST = ["Doe", "Haddad", "Chen", "Silva", "Mensah", "Berg", "Patel", "Novak", "Kim", "Costa", "Petrov", "Sato",
        "Weber", "Brown", "Okafor", "Rossi", "Lund", "Dubois", "Ito", "Moreau"]


@dataclass
class Person:
    first: str
    last: str
    canvas_id: int
    sis_id: str
    email: str
    section: str = "Section A"
    participant: int = 0  # Moodle participant id for the assignment

    @property
    def sortable(self):
        return f"{self.last}, {self.first}"

    @property
    def canvas_key(self):
        return f"{self.last}{self.first}".lower()

    @property
    def full_name(self):
        return f"{self.first} {self.last}"


def make_class(n, seed=0):
    """n people with distinct names (past 400, a middle initial tells them apart)."""
    rng = random.Random(seed)
    people, names = [], set()
    while len(people) < n:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if len(names) >= len(FIRST) * len(LAST):
            first = f"{first} {chr(65 + len(people) % 26)}."
        if (first, last) in names:
            continue
        names.add((first, last))
        index = len(people)
        people.append(Person(first, last, 1000 + index, f"s{20260000 + index}",
                             f"{first.lower()}.{last.lower()}@uni.example", "Section " + "AB"[index % 2],
                             participant=600000 + rng.randrange(1000, 9999) * 10 + index % 10))
    return people


def canvas_gradebook_csv(people, assignments=(("Quiz", 5001), ("Compile and train", 5002)), test_student=True):
    """Canvas's gradebook export: header, Points Possible row, students, then the test student."""
    out = io.StringIO()
    writer = csv.writer(out)
    titles = [f"{name} ({canvas_id})" for name, canvas_id in assignments]
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *titles, "Current Points",
                     "Final Points", "Current Score", "Unposted Current Score", "Final Score", "Unposted Final Score"])
    writer.writerow(["    Points Possible", "", "", "", "", *["9.00"] * len(titles), *["(read only)"] * 6])
    for person in people:
        writer.writerow([person.sortable, person.canvas_id, person.sis_id, person.email, person.section,
                         *[""] * len(titles), "0.00", "0.00", "", "", "0.00", "0.00"])
    if test_student:
        writer.writerow(["Student, Test", 99999, "", "", "Section A", *[""] * len(titles), "", "", "", "", "", ""])
    return out.getvalue()


def moodle_gradebook_csv(people):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["First name", "Last name", "ID number", "Institution", "Department", "Email address",
                     "Assignment: Quiz (Real)", "Course total (Real)", "Last downloaded from this course"])
    for person in people:
        writer.writerow([person.first, person.last, person.sis_id, "Uni", "CS", person.email, "-", "-", "1700000000"])
    return out.getvalue()


def moodle_worksheet(people, submitted):
    """Moodle's grading worksheet; ``submitted``: person -> text of 'Last modified (submission)' or None."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                     "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"])
    for person in people:
        when = submitted.get(person.canvas_id)
        writer.writerow([f"Participant {person.participant}", person.full_name, person.email,
                         "Submitted for grading" if when else "No submission", "", "9.00", "Yes", when or "-", "-", ""])
    return out.getvalue()


@dataclass
class Upload:
    name: str          # path in the export
    data: bytes
    zip_time: tuple    # the zip entry's time: what a careless collector would sort by


@dataclass
class Export:
    uploads: list = field(default_factory=list)
    _clock: int = 0

    def _time(self, zip_time):
        if zip_time:
            return zip_time
        self._clock += 1
        return (2026, 3, 2, 9, 0, self._clock % 60)

    def write_zip(self, path):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for upload in self.uploads:
                archive.writestr(zipfile.ZipInfo(upload.name, date_time=upload.zip_time), upload.data)
        return Path(path)

    def write_folder(self, path):
        for upload in self.uploads:
            target = Path(path) / upload.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(upload.data)
        return Path(path)


class CanvasExport(Export):
    _attachment = 2000

    def add(self, person, filename, data, late=False, attachment=None, zip_time=None):
        CanvasExport._attachment += 1
        attachment = attachment or CanvasExport._attachment
        name = f"{person.canvas_key}{'_LATE' if late else ''}_{person.canvas_id}_{attachment}_{filename}"
        self.uploads.append(Upload(name, data, self._time(zip_time)))
        return name

    def add_unknown(self, canvas_key, canvas_id, filename, data):
        CanvasExport._attachment += 1
        name = f"{canvas_key}_{canvas_id}_{CanvasExport._attachment}_{filename}"
        self.uploads.append(Upload(name, data, self._time(None)))
        return name


class MoodleExport(Export):
    def __init__(self, folders=True):
        super().__init__()
        self.folders = folders

    def add(self, person, filename, data, zip_time=None):
        prefix = f"{person.full_name}_{person.participant}_assignsubmission_file_"
        name = f"{prefix}/{filename}" if self.folders else f"{prefix}{filename}"
        self.uploads.append(Upload(name, data, self._time(zip_time)))
        return name
