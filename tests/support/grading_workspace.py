"""A course-grader workspace for tests, through the real CLI; copies of one are cheap (no second release)."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

CLI = str(Path(sys.executable).with_name("course-grader"))
# As an instructor who did not activate the environment: only the system's PATH.
ENV = {**os.environ, "PATH": "/usr/local/bin:/usr/bin:/bin", "COLUMNS": "250"}  # rich wraps at COLUMNS


def grader(*args, workspace=None, check=True, timeout=900):
    command = [CLI, *map(str, args)] + (["--workspace", str(workspace)] if workspace else [])
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV)
    if check:
        assert result.returncode == 0, f"course-grader {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def new_workspace(path, assignments=("quiz",)):
    grader("init", path)
    grader("release", *assignments, workspace=path)
    return Path(path)


def copy_workspace(template, path):
    """A copy of a workspace whose config and gradebook point at the copy."""
    shutil.copytree(template, path)
    config = Path(path) / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(template), str(path)))
    return Path(path)


def release_notebook(workspace, assignment="quiz", notebook="quiz"):
    return nbformat.read(Path(workspace) / "release" / assignment / f"{notebook}.ipynb", as_version=4)


def tree_digest(folder):
    digest = hashlib.sha256()
    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
