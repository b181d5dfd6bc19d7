"""Collect submissions from a folder or a zip as an LMS exports them, into nbgrader's submitted/.

Recognised layouts (the student is found by a roster id, LMS user id or e-mail appearing as a
token of the path; the notebook by its name in the file name, with an LMS's "-1" resubmission
suffix allowed):

* Canvas:   ``doejane_12345_67890_quiz-1.ipynb``  (name_userid_submissionid_filename)
* Moodle:   ``Jane Doe_12345_assignsubmission_file_/quiz.ipynb``
* plain:    ``jdoe/quiz.ipynb`` or ``jdoe/quiz/quiz.ipynb``

Files are copied, never moved: the source folder or zip is only read. A file that matches no
student or no notebook, or matches several, is copied to ``unmatched/<batch>/`` and reported;
when a student has several files for one notebook, the newest is graded and the others kept in
``unmatched/<batch>/superseded/``. A submission collected earlier is kept there too before it is
replaced. Nothing is dropped.
"""

import re
import shutil
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from grader.roster import roster_students

TOKEN_SPLIT = re.compile(r"[\\/_\s]+")


@dataclass
class Item:
    name: str        # path inside the folder or zip
    modified: datetime
    read: callable


@dataclass
class CollectResult:
    collected: list = field(default_factory=list)   # (student, notebook, source name)
    unmatched: list = field(default_factory=list)   # (source name, reason)
    superseded: list = field(default_factory=list)  # (source name, reason)
    batch: Path = None


def items_in(source):
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"no folder or zip at {source}")
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            yield Item(str(path.relative_to(source)), datetime.fromtimestamp(path.stat().st_mtime, timezone.utc),
                       path.read_bytes)
        return
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise ValueError(f"{source} is neither a folder nor a readable zip file") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            modified = datetime(*info.date_time, tzinfo=timezone.utc)
            yield Item(info.filename, modified, lambda info=info: archive.read(info))


def match_student(name, students):
    tokens = {t.lower() for t in TOKEN_SPLIT.split(name) if t}
    # A whole path component may be an id too (plain layout, e-mail addresses).
    tokens |= {part.lower() for part in PurePosixPath(name.replace("\\", "/")).parts}
    return sorted(student for student, keys in students.items() if keys & tokens)


def match_notebook(name, notebooks):
    base = PurePosixPath(name.replace("\\", "/")).name.lower()
    if not base.endswith(".ipynb"):
        return []
    stem = base[: -len(".ipynb")]
    found = []
    for notebook in notebooks:
        pattern = rf"(^|[_\s]){re.escape(notebook.lower())}(-\d+)?$"
        if re.search(pattern, stem):
            found.append(notebook)
    return found


def collect(workspace, source, assignment, now=None):
    now = now or datetime.now(timezone.utc)
    with workspace.gradebook() as gradebook:
        notebooks = [n.name for n in gradebook.find_assignment(assignment).notebooks]
    students = roster_students(workspace)
    if not students:
        raise ValueError("the gradebook has no students: import a roster first (course-grader roster ROSTER.csv)")
    batch = workspace.root / "unmatched" / now.strftime("%Y%m%d-%H%M%S-%f")
    result = CollectResult(batch=batch)
    chosen = {}  # (student, notebook) -> Item
    for item in items_in(source):
        if PurePosixPath(item.name).name.startswith(".") or "__MACOSX" in item.name:
            continue
        who = match_student(item.name, students)
        which = match_notebook(item.name, notebooks)
        reason = None
        if len(who) != 1:
            reason = "matches no student in the roster" if not who else f"matches several students: {', '.join(who)}"
        elif len(which) != 1:
            reason = (f"matches no notebook of '{assignment}' ({', '.join(n + '.ipynb' for n in notebooks)})"
                      if not which else f"matches several notebooks: {', '.join(which)}")
        if reason:
            _keep(batch, item, item.name)
            result.unmatched.append((item.name, reason))
            continue
        key = (who[0], which[0])
        if key in chosen:
            older, newer = sorted([chosen[key], item], key=lambda i: (i.modified, i.name))
            _keep(batch / "superseded", older, older.name)
            result.superseded.append((older.name, f"a newer file for {key[0]}/{key[1]} was collected: {newer.name}"))
            chosen[key] = newer
        else:
            chosen[key] = item
    latest = {}
    for (student, _), item in chosen.items():
        latest[student] = max(latest.get(student, item.modified), item.modified)
    for (student, notebook), item in sorted(chosen.items()):
        folder = workspace.root / "submitted" / student / assignment
        target = folder / f"{notebook}.ipynb"
        if target.exists():
            _keep(batch / "previous" / student / assignment, None, f"{notebook}.ipynb", data=target.read_bytes())
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.read())
        (folder / "timestamp.txt").write_text(latest[student].strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        result.collected.append((student, notebook, item.name))
    return result


def _keep(folder, item, name, data=None):
    # Names come from an archive: keep only plain parts, so nothing lands outside `folder`.
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    target = folder.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(item.read() if data is None else data)
